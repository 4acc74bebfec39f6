"""A virtual SO-100 arm on a pseudo-terminal: test servo drivers and robot code without hardware.

    python -m hiljax.virtual_robot --type so100 --link /tmp/so100 [--physics mujoco|none]
        [--calibrated] [--calibration-file FILE] [--faults drop=3,corrupt_prob=0.05]

Prints the port to open (one line on stdout), then serves six STS3215 servos (ids 1..6) until
SIGINT / SIGTERM, and removes the link on the way out. `--physics mujoco` moves the MuJoCo so100
(no rendering needed); `none` is a first-order servo model. `--calibrated` starts with EEPROMs
calibrated so LeRobot's DEGREES normalisation reads the joints' angles exactly; with
`--calibration-file` the matching LeRobot calibration JSON is written there.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from hiljax.hardware.virtual import ARM_TYPES, Faults, VirtualSO100, so100_joints

logger = logging.getLogger("hiljax.virtual_robot")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hiljax.virtual_robot",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--type", default="so100", choices=ARM_TYPES,
                        help="arm type (so100, so101 and moss share one Feetech layout)")
    parser.add_argument("--link", help="make this path a symlink to the pty (e.g. /tmp/so100)")
    parser.add_argument("--physics", default="none", choices=("none", "mujoco"),
                        help="what moves behind the servos (default: first-order model)")
    parser.add_argument("--calibrated", action="store_true",
                        help="start calibrated (EEPROM holds the arm's exact calibration)")
    parser.add_argument("--calibration-file",
                        help="write the arm's LeRobot calibration JSON here")
    parser.add_argument("--faults", default="",
                        help="comma-separated: drop=ID, drop_prob=P, corrupt=ID, "
                             "corrupt_prob=P, hang=ID, error=ID:BITS, seed=N")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        args.fault_set = Faults.parse(args.faults)
    except ValueError as error:
        parser.error(str(error))
    return args


def make_physics(kind: str):
    if kind == "none":
        return "none"
    from hiljax.envs.sim.servo_arm import MujocoServoPhysics  # MuJoCo only when asked for

    return MujocoServoPhysics(so100_joints())


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arm = VirtualSO100(physics=make_physics(args.physics), calibrated=args.calibrated,
                       faults=args.fault_set, link=args.link)
    if args.calibration_file:
        path = arm.save_calibration(args.calibration_file)
        logger.info("calibration of the virtual arm written to %s", path)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        port = arm.start()
    except OSError as error:  # e.g. --link names a file that is not a symlink
        logger.error("cannot start the virtual arm: %s", error)
        return 1
    try:
        print(f"virtual {args.type} servo bus on {port}", flush=True)
        logger.info("%s calibrated=%s physics=%s faults=%r; stop with Ctrl-C", args.type,
                    args.calibrated, args.physics, args.faults or "none")
        while not stop.wait(0.5):
            pass
    finally:
        arm.stop()
        logger.info("virtual arm stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
