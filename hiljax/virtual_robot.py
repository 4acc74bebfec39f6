"""A virtual SO-100 arm on a pseudo-terminal: test servo drivers and robot code without hardware.

    python -m hiljax.virtual_robot --type so100 --link /tmp/so100 [--physics mujoco|none]
        [--calibrated] [--calibration-file FILE] [--faults drop=3,corrupt_prob=0.05]
        [--leader-link /tmp/so100_leader [--leader-calibration-file FILE]]

Prints the port to open (one line on stdout), then serves six STS3215 servos (ids 1..6) until
SIGINT / SIGTERM, and removes the link on the way out. `--physics mujoco` moves the MuJoCo so100
(no rendering needed); `none` is a first-order servo model. `--calibrated` starts with EEPROMs
calibrated so LeRobot's DEGREES normalisation reads the joints' angles exactly; with
`--calibration-file` the matching LeRobot calibration JSON is written there.

With `--leader-link` a second arm, the leader a person holds (first-order physics, calibrated
with `--calibrated`, its calibration JSON at `--leader-calibration-file`), is served on its own
pty (a second stdout line), and lines on stdin such as `elbow_flex 30` move its joints by hand
(degrees; gripper 0..100). Hand moves hold while its torque is off; with torque on (a geared
leader following the follower) the servo pulls the joint back to its goal.
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
    parser.add_argument("--leader-link",
                        help="also serve a virtual leader arm; make this path a symlink to its pty")
    parser.add_argument("--leader-calibration-file",
                        help="write the leader's LeRobot calibration JSON here")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.leader_calibration_file and not args.leader_link:
        parser.error("--leader-calibration-file needs --leader-link")
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


def make_arms(args) -> list[tuple[str, VirtualSO100]]:
    """(label, arm): the follower, then the leader when asked for; calibration files written."""
    arms = [("", VirtualSO100(physics=make_physics(args.physics), calibrated=args.calibrated,
                              faults=args.fault_set, link=args.link))]
    if args.leader_link:
        arms.append(("leader ", VirtualSO100(calibrated=args.calibrated, link=args.leader_link)))
    files = (args.calibration_file, args.leader_calibration_file)
    for (label, arm), file in zip(arms, files):
        if file:
            logger.info("calibration of the virtual %sarm written to %s", label,
                        arm.save_calibration(file))
    return arms


def move_by_hand_from(lines, arm: VirtualSO100) -> None:
    """Each `MOTOR VALUE` line moves that joint of `arm` by hand; other lines are logged."""
    for line in lines:
        try:
            motor, value = line.split()
            arm.move_by_hand(motor, float(value))
        except (ValueError, KeyError) as error:
            logger.warning("ignored %r: expected 'MOTOR VALUE' (e.g. elbow_flex 30): %s",
                           line.strip(), error)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arms = make_arms(args)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        try:
            ports = [arm.start() for _, arm in arms]
        except OSError as error:  # e.g. --link names a file that is not a symlink
            logger.error("cannot start the virtual arm: %s", error)
            return 1
        for (label, _), port in zip(arms, ports):
            print(f"virtual {args.type} {label}servo bus on {port}", flush=True)
        if args.leader_link:  # a daemon: a blocked stdin read must not hold the exit
            threading.Thread(target=move_by_hand_from, args=(sys.stdin, arms[1][1]),
                             daemon=True).start()
        logger.info("%s calibrated=%s physics=%s faults=%r leader=%s; stop with Ctrl-C",
                    args.type, args.calibrated, args.physics, args.faults or "none",
                    args.leader_link or "none")
        while not stop.wait(0.5):
            pass
    finally:
        for _, arm in arms:
            arm.stop()
        logger.info("virtual arm stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
