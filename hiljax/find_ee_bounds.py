"""Find the end-effector bounds of a real arm's workspace (LeRobot's `lerobot-find-joint-limits`,
over SSH, without a URDF: FK of the env config's kinematics table).

    python -m hiljax.find_ee_bounds --config ENV_CONFIG [--teleop none|leader] [--duration S]
                                    [--margin M] [--write] [--output PATH] [--set key=value ...]

Connects the follower of the env config, switches its torque off and, while a person moves the
arm by hand over the workspace the policy may use, shows a live table of the gripper tip's
current / min / max position (metres) and of each joint (degrees). ENTER stops (or --duration
seconds; with --duration the input may be closed, e.g. `< /dev/null`). Prints the bounds, and
with --write (or --output) puts `wrapper.ee_action_space_params.bounds`, widened by --margin
metres, into the env config (or a copy at PATH), keeping every other field. The arm is left limp
at the end, on errors and on Ctrl-C (which prints what was seen and writes nothing).
Exit: 0 done; 1 hardware / bounds failure; 2 bad arguments or config; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from hiljax.config import ConfigError
from hiljax.envs.configs import HILSerlRobotEnvConfig, load_env_config
from hiljax.envs.factory import make_robot
from hiljax.hardware.motors import CalibrationError, MotorBusError
from hiljax.kinematics import RobotKinematics
from hiljax.run.setup_tools import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Console,
    update_env_config,
)

log = logging.getLogger("hiljax.find_ee_bounds")

BOUNDS_FIELD = "wrapper.ee_action_space_params.bounds"
SAMPLE_HZ = 30.0  # LeRobot's control_loop_fps for find-joint-limits
REDRAW_EVERY_S = 0.1
PLAIN_REDRAW_EVERY_S = 1.0  # stdout not a terminal (a pipe, tee, a log): a new table each time
DECIMALS = 4  # 0.1 mm: rounded outwards, so the written box still holds every visited point
# A box thinner than this along an axis is a mistake (an arm left still, a joint not moved),
# not a workspace: the EE actions step 1-2 cm.
MIN_EXTENT_M = 0.005
AXES = ("x", "y", "z")


class WorkspaceTracker:
    """Running min / max of the tip position (metres) and of every joint (degrees)."""

    def __init__(self, motor_names: Sequence[str]):
        self.motor_names = tuple(motor_names)
        self.samples = 0
        self.interrupted = False  # stopped by Ctrl-C: shown, never written
        self.tip = self.tip_min = self.tip_max = np.full(3, np.nan)
        self.joints = self.joints_min = self.joints_max = np.full(len(motor_names), np.nan)

    def add(self, joints: np.ndarray, tip: np.ndarray) -> None:
        self.joints, self.tip = np.asarray(joints, np.float64), np.asarray(tip, np.float64)
        first = self.samples == 0
        self.tip_min = self.tip if first else np.minimum(self.tip_min, self.tip)
        self.tip_max = self.tip if first else np.maximum(self.tip_max, self.tip)
        self.joints_min = self.joints if first else np.minimum(self.joints_min, self.joints)
        self.joints_max = self.joints if first else np.maximum(self.joints_max, self.joints)
        self.samples += 1

    def rows(self) -> list[tuple]:
        tip = [(f"{a} (m)", float(c), float(lo), float(hi)) for a, c, lo, hi in
               zip(AXES, self.tip, self.tip_min, self.tip_max)]
        joints = [(f"{name} ({joint_unit(name)})", *(f"{v:.1f}" for v in (c, lo, hi)))
                  for name, c, lo, hi in zip(self.motor_names, self.joints, self.joints_min,
                                             self.joints_max)]
        return tip + joints

    def bounds(self, margin: float) -> dict[str, list[float]]:
        """The box of the visited tip positions widened by `margin` metres, rounded outwards."""
        scale = 10.0 ** DECIMALS
        low = np.floor((self.tip_min - margin) * scale) / scale
        high = np.ceil((self.tip_max + margin) * scale) / scale
        flat = [axis for axis, lo, hi in zip(AXES, low, high) if not hi - lo >= MIN_EXTENT_M]
        if flat:
            raise ValueError(f"the box is thinner than {MIN_EXTENT_M * 1000:g} mm along "
                             f"{', '.join(flat)}: move the arm over the whole workspace, or "
                             "widen the box with --margin")
        return {"min": [round(float(v), DECIMALS) for v in low],
                "max": [round(float(v), DECIMALS) for v in high]}


HEADER = ("", "current", "min", "max")


def joint_unit(name: str) -> str:
    return "%" if name == "gripper" else "deg"  # the gripper reads 0 (closed) .. 100 (open)


def record_workspace(robot, kinematics: RobotKinematics, console: Console,
                     duration_s: float | None) -> WorkspaceTracker:
    """Sample the limp arm until ENTER, `duration_s` or Ctrl-C (LeRobot's way to stop, so
    what was seen is still shown; the tracker says it was interrupted)."""
    tracker = WorkspaceTracker(robot.motor_names)
    try:
        _sample_until_stopped(robot, kinematics, console, duration_s, tracker)
    except KeyboardInterrupt:
        tracker.interrupted = True
    if tracker.samples:
        console.table(HEADER, tracker.rows())
    console.end_table()
    return tracker


def _sample_until_stopped(robot, kinematics: RobotKinematics, console: Console,
                          duration_s: float | None, tracker: WorkspaceTracker) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    redraw_s = REDRAW_EVERY_S if console.stdout.isatty() else PLAIN_REDRAW_EVERY_S
    listening, next_redraw = True, 0.0
    while deadline is None or time.monotonic() < deadline:
        joints = robot.read_joint_positions().astype(np.float64)
        tracker.add(joints, kinematics.fk_gripper_tip(joints[:5])[:3, 3])
        if time.monotonic() >= next_redraw:
            console.table(HEADER, tracker.rows())
            next_redraw = time.monotonic() + redraw_s
        try:
            if listening and console.enter_pressed(1.0 / SAMPLE_HZ):
                break
        except EOFError:
            if deadline is None:  # nothing else would ever stop the recording
                raise EOFError("the input closed: press ENTER to stop, or give --duration"
                               ) from None
            listening = False
        if not listening:
            time.sleep(1.0 / SAMPLE_HZ)


def run_by_hand(cfg: HILSerlRobotEnvConfig, console: Console, duration_s: float | None
                ) -> WorkspaceTracker:
    """Connect the follower, torque off, record; the arm is limp again whatever happens."""
    robot = make_robot(cfg.robot, cfg.fps)
    robot.connect()
    try:
        robot.bus.disable_torque()  # a follower is stiff after connect
        console.say("Torque is off. Move the arm by hand over the whole workspace the gripper "
                    "tip may reach" + (f" ({duration_s:g} s)" if duration_s else "")
                    + "; press ENTER to stop.")
        return record_workspace(robot, RobotKinematics(cfg.robot.kinematics_table), console,
                                duration_s)
    finally:
        _leave_limp(robot)


def _leave_limp(robot) -> None:
    try:
        robot.bus.disable_torque(num_retry=2)
    except MotorBusError as error:  # the disconnect below tries once more, motor by motor
        log.error("torque off failed: %s", error)
    finally:
        robot.bus.disconnect(disable_torque=True)


def run_with_leader(cfg: HILSerlRobotEnvConfig, console: Console, duration_s: float | None):
    # TODO(leader arm): drive the follower from hiljax.control.leader once it exists, and
    # record the follower's joints as run_by_hand does (LeRobot warms up 5 s first).
    raise NotImplementedError("--teleop leader needs the leader-arm teleoperation "
                              "(hiljax.control.leader), which hiljax does not have yet: use "
                              "--teleop none and move the follower by hand")


TELEOPS = {"none": run_by_hand, "leader": run_with_leader}


def report(console: Console, tracker: WorkspaceTracker, margin: float) -> dict | None:
    """Print the seen ranges and the bounds; None (and a logged error) when there are none."""
    console.say(f"Samples: {tracker.samples}")
    console.say(f"min_ee (m): {np.round(tracker.tip_min, DECIMALS).tolist()}")
    console.say(f"max_ee (m): {np.round(tracker.tip_max, DECIMALS).tolist()}")
    for name, lo, hi in zip(tracker.motor_names, tracker.joints_min, tracker.joints_max):
        console.say(f"{name}: {lo:.1f} .. {hi:.1f} {joint_unit(name)}")
    try:
        bounds = tracker.bounds(margin)
    except ValueError as error:
        log.error("%s", error)
        return None
    console.say(f'"bounds": {{"min": {bounds["min"]}, "max": {bounds["max"]}}}'
                + (f"  (widened by {margin:g} m)" if margin else ""))
    return bounds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hiljax.find_ee_bounds",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the env config JSON (a real arm)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field for this run only (not written)")
    parser.add_argument("--teleop", choices=sorted(TELEOPS), default="none",
                        help="none: torque off, move the arm by hand; leader: not yet")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="widen the bounds by this many metres on every side")
    parser.add_argument("--write", action="store_true",
                        help=f"write {BOUNDS_FIELD} into the env config")
    parser.add_argument("--output", help="write the updated config here instead (implies "
                                         "--write)")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    if args.margin < 0:
        parser.error("--margin must be >= 0")
    return args


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    console = Console(stdin, stdout)
    try:
        cfg = load_env_config(args.config, args.set)
        if not cfg.robot.is_real:
            raise ConfigError(f"robot.type {cfg.robot.type!r} is not a real arm: there is "
                              "nothing to move by hand")
        tracker = TELEOPS[args.teleop](cfg, console, args.duration)
    except (ConfigError, NotImplementedError) as error:
        log.error("%s", error)
        return EXIT_USAGE
    except (MotorBusError, CalibrationError, OSError, EOFError) as error:
        log.error("%s (the arm is left limp)", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted: nothing written (the arm is left limp)")
        return EXIT_INTERRUPTED
    return _finish(args, console, tracker)


def _finish(args: argparse.Namespace, console: Console, tracker: WorkspaceTracker) -> int:
    if tracker.samples == 0:
        log.error("no reading of the arm was made (the arm is left limp)")
        return EXIT_INTERRUPTED if tracker.interrupted else EXIT_FAILED
    bounds = report(console, tracker, args.margin)
    if tracker.interrupted:
        log.error("interrupted: the bounds above were not written (the arm is left limp)")
        return EXIT_INTERRUPTED
    if bounds is None:
        return EXIT_FAILED
    if args.write or args.output:
        try:
            update_env_config(args.config, {BOUNDS_FIELD: bounds}, args.output)
        except (ConfigError, OSError) as error:
            log.error("the config was not written: %s", error)
            return EXIT_FAILED
        console.say(f"Wrote {BOUNDS_FIELD} to {args.output or args.config}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
