"""Find the end-effector bounds of a real arm's workspace (LeRobot's `lerobot-find-joint-limits`,
over SSH, without a URDF: FK of the env config's kinematics table).

    python -m hiljax.find_ee_bounds --config ENV_CONFIG [--teleop none|leader] [--duration S]
                                    [--warmup S] [--leader-port PORT] [--leader-id ID]
                                    [--margin M] [--write] [--output PATH] [--set key=value ...]

Connects the follower of the env config (not its cameras) and, while a person moves it over the
workspace the policy may use, shows a live table of the gripper tip's current / min / max
position (metres) and of each joint (degrees). --teleop none: the follower's torque goes off and
the person moves it by hand. --teleop leader: the follower follows the leader arm of the config's
`teleop` block (--leader-port / --leader-id set or override its port and id) joint for joint,
each leader reading sent as the follower's goal (the calibration's limits and
`robot.max_relative_target` apply); nothing is recorded during the first --warmup seconds
(LeRobot's 5 s), while the follower catches up with the leader. ENTER stops (or --duration
seconds after the warm-up; with --duration the input may be closed, e.g. `< /dev/null`). Prints
the bounds, and with --write (or --output) puts `wrapper.ee_action_space_params.bounds`, widened
by --margin metres, into the env config (or a copy at PATH), keeping every other field. Both arms
are left limp at the end, on errors and on Ctrl-C (which prints what was seen and writes nothing).
Exit: 0 done; 1 hardware / bounds failure; 2 bad arguments or config; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import numpy as np

from hiljax.config import ConfigError
from hiljax.envs.configs import HILSerlRobotEnvConfig, TeleopConfig, load_env_config
from hiljax.envs.factory import make_robot
from hiljax.hardware.motors import CalibrationError, MotorBusError
from hiljax.hardware.robots import ServoArm, ServoArmConfig
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
WARMUP_S = 5.0  # LeRobot's warmup_time_s: the follower catches up with the leader first
DEFAULT_LEADERS = {"so100": "so100_leader"}  # else so101_leader (the same arm, LeRobot's name)


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


def record_workspace(read_joints: Callable[[], np.ndarray], motor_names: Sequence[str],
                     kinematics: RobotKinematics, console: Console, duration_s: float | None,
                     warmup_s: float = 0.0) -> WorkspaceTracker:
    """Sample `read_joints()` (the follower's joints) until ENTER, `duration_s` or Ctrl-C
    (LeRobot's way to stop, so what was seen is still shown; the tracker says it was
    interrupted). The first `warmup_s` seconds are read (a leader drives the follower) but not
    recorded."""
    tracker = WorkspaceTracker(motor_names)
    try:
        _warm_up(read_joints, warmup_s, console)
        _sample_until_stopped(read_joints, kinematics, console, duration_s, tracker)
    except KeyboardInterrupt:
        tracker.interrupted = True
    if tracker.samples:
        console.table(HEADER, tracker.rows())
    console.end_table()
    return tracker


def _warm_up(read_joints: Callable[[], np.ndarray], warmup_s: float, console: Console) -> None:
    if warmup_s <= 0:
        return
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        read_joints()
        time.sleep(1.0 / SAMPLE_HZ)
    console.say("Recording.")


def _sample_until_stopped(read_joints: Callable[[], np.ndarray], kinematics: RobotKinematics,
                          console: Console, duration_s: float | None,
                          tracker: WorkspaceTracker) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    redraw_s = REDRAW_EVERY_S if console.stdout.isatty() else PLAIN_REDRAW_EVERY_S
    listening, next_redraw = True, 0.0
    while deadline is None or time.monotonic() < deadline:
        joints = np.asarray(read_joints(), np.float64)
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


def connect_follower(cfg: HILSerlRobotEnvConfig):
    """The config's follower, connected without its cameras: the tool takes no picture, so a
    camera left unplugged must not stop it."""
    robot = make_robot(dataclasses.replace(cfg.robot, cameras=()), cfg.fps)
    robot.connect()
    return robot


def run_by_hand(cfg: HILSerlRobotEnvConfig, console: Console, args: argparse.Namespace
                ) -> WorkspaceTracker:
    """Connect the follower, torque off, record; the arm is limp again whatever happens."""
    robot = connect_follower(cfg)
    try:
        robot.bus.disable_torque()  # a follower is stiff after connect
        console.say("Torque is off. Move the arm by hand over the whole workspace the gripper "
                    "tip may reach" + (f" ({args.duration:g} s)" if args.duration else "")
                    + "; press ENTER to stop.")
        return record_workspace(robot.read_joint_positions, robot.motor_names,
                                RobotKinematics(cfg.robot.kinematics_table), console,
                                args.duration)
    finally:
        _leave_limp(robot)


def _leave_limp(robot) -> None:
    try:
        robot.bus.disable_torque(num_retry=2)
    except MotorBusError as error:  # the disconnect below tries once more, motor by motor
        log.error("torque off failed: %s", error)
    finally:
        robot.bus.disconnect(disable_torque=True)


def leader_config(cfg: HILSerlRobotEnvConfig, port: str | None, arm_id: str | None
                  ) -> TeleopConfig:
    """The config's `teleop` leader with --leader-port / --leader-id applied."""
    teleop = cfg.teleop
    if teleop is None:
        if port is None:
            raise ConfigError("--teleop leader needs the leader arm: a teleop block in the env "
                              'config ({"type": "so101_leader", "port": "/dev/ttyACM1", "id": '
                              '"my_leader"}) or --leader-port PORT --leader-id ID')
        teleop = TeleopConfig(type=DEFAULT_LEADERS.get(cfg.robot.type, "so101_leader"),
                              port=port)
    changes = {"port": port, "id": arm_id}
    return dataclasses.replace(teleop, **{k: v for k, v in changes.items() if v is not None})


def follow_leader(follower: ServoArm, leader: ServoArm) -> Callable[[], np.ndarray]:
    """One tick of joint-space teleoperation (LeRobot's leader -> follower action): read the
    follower (what is recorded: where it really is), then send the leader's joints as its goals
    (send_joint_targets clips them to the follower's limits and max_relative_target)."""
    def tick() -> np.ndarray:
        joints = follower.read_joint_positions()  # also what allows the next goal to be sent
        follower.send_joint_targets(leader.read_joint_positions())
        return joints

    return tick


def run_with_leader(cfg: HILSerlRobotEnvConfig, console: Console, args: argparse.Namespace
                    ) -> WorkspaceTracker:
    """The follower follows the leader; record after the warm-up; both arms end limp."""
    teleop = leader_config(cfg, args.leader_port, args.leader_id)
    leader = ServoArm(ServoArmConfig(type=teleop.type, port=teleop.port, id=teleop.id,
                                     calibration_dir=teleop.calibration_dir))
    robot = connect_follower(cfg)
    try:
        leader.connect()  # limp: the person moves it
        console.say("The follower now moves to the leader and follows it. Move the leader "
                    "over the whole workspace the gripper tip may reach"
                    + (f" ({args.duration:g} s)" if args.duration else "")
                    + f"; press ENTER to stop. Recording starts after {args.warmup:g} s.")
        return record_workspace(follow_leader(robot, leader), robot.motor_names,
                                RobotKinematics(cfg.robot.kinematics_table), console,
                                args.duration, args.warmup)
    finally:
        try:
            _leave_limp(robot)  # the follower first: it is the one with torque on
        finally:
            leader.disconnect()


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
                        help="none: torque off, move the arm by hand; leader: the follower "
                             "follows the leader arm of the config's teleop block")
    parser.add_argument("--duration", type=float,
                        help="stop after this many seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=WARMUP_S,
                        help="--teleop leader: seconds before recording starts")
    parser.add_argument("--leader-port", help="--teleop leader: the leader's serial port")
    parser.add_argument("--leader-id", help="--teleop leader: the leader's id (calibration)")
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
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.teleop != "leader" and (args.leader_port or args.leader_id):
        parser.error("--leader-port / --leader-id go with --teleop leader")
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
        tracker = TELEOPS[args.teleop](cfg, console, args)
    except ConfigError as error:
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
