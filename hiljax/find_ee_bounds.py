"""Find the end-effector bounds of a real arm's workspace (LeRobot's `lerobot-find-joint-limits`,
over SSH, without a URDF: FK of the env config's kinematics table).

    python -m hiljax.find_ee_bounds --config ENV_CONFIG [--teleop none|leader|gamepad]
                                    [--duration S] [--warmup S] [--leader-port PORT]
                                    [--leader-id ID] [--margin M] [--joint-margin DEG]
                                    [--write] [--output PATH] [--set key=value ...]

Connects the follower of the env config (not its cameras) and, while a person moves it over the
workspace the policy may use, shows a live table of the gripper tip's current / min / max
position (metres) and of each joint (degrees). --teleop none: the follower's torque goes off and
the person moves it by hand. --teleop leader: the follower follows the leader arm of the config's
`teleop` block (--leader-port / --leader-id set or override its port and id) joint for joint,
each leader reading sent as the follower's goal (the calibration's limits and
`robot.max_relative_target` apply); nothing is recorded during the first --warmup seconds
(LeRobot's 5 s), while the follower catches up with the leader. The SO-100/101 leaders drive
SO arms, the Koch leader a Koch (read in degrees: hiljax.control.leader.leader_arm).
--teleop gamepad: the follower stays stiff and the person drives its gripper tip with a gamepad
through the env's EE action path (EEActionWrapper: FK, tip + stick * step size, IK; the gripper
through GripperActionWrapper when wrapper.use_gripper), at the env's speed (step sizes * fps per
second), inside a box of +-1 m above the base plane instead of the config's bounds; no button
needs holding. Left stick x / y, right stick z (and the wrist roll when the env has a roll
action), LT / RT close / open the gripper, B stops like ENTER.
ENTER stops (or --duration seconds after the warm-up; with --duration the input may be closed,
e.g. `< /dev/null`). Prints the bounds and the joint ranges, and with --write (or --output) puts
`wrapper.ee_action_space_params.bounds`, widened by --margin metres, and `robot.joint_limits`,
each arm joint's seen range widened by --joint-margin degrees (the gripper's percent, kept in
0..100), into the env config (or a copy at PATH), keeping every other field. A joint that moved
less than 1 degree keeps the limit the config had (none: its calibration's range). The
follower records under the config's robot.joint_limits (goals are clipped to them): to widen
them, move the arm by hand (--teleop none) or add `--set robot.joint_limits=null`. Both arms
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

import gymnasium as gym
import numpy as np

from hiljax.config import ConfigError
from hiljax.control import DeviceNotFoundError, InputController, make_controller
from hiljax.control.leader import check_leader_pair, leader_arm
from hiljax.control.teleop import controller_action
from hiljax.envs.configs import HILSerlRobotEnvConfig, TeleopConfig, load_env_config
from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.factory import action_wrappers, make_robot
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
from hiljax.run.workspace import (
    DECIMALS,
    MIN_JOINT_RANGE,
    WorkspaceTracker,
    joint_unit,
)

log = logging.getLogger("hiljax.find_ee_bounds")

BOUNDS_FIELD = "wrapper.ee_action_space_params.bounds"
JOINT_LIMITS_FIELD = "robot.joint_limits"
SAMPLE_HZ = 30.0  # LeRobot's control_loop_fps for find-joint-limits
REDRAW_EVERY_S = 0.1
PLAIN_REDRAW_EVERY_S = 1.0  # stdout not a terminal (a pipe, tee, a log): a new table each time
WARMUP_S = 5.0  # LeRobot's warmup_time_s: the follower catches up with the leader first
# else so101_leader (for so101 / moss: the SO-100's twin, LeRobot's name)
DEFAULT_LEADERS = {"so100": "so100_leader", "koch": "koch_leader"}
# --teleop gamepad: where the tip may go while exploring (metres): the config's bounds are what
# is being found, so they do not apply; only the plane of the arm's base (z = 0) does.
EXPLORE_BOUNDS = {"min": (-1.0, -1.0, 0.0), "max": (1.0, 1.0, 1.0)}


class StopRecording(Exception):
    """The person asked to stop from the device (the gamepad's B), as ENTER."""


HEADER = ("", "current", "min", "max")


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
    except StopRecording:
        pass
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
    teleop = dataclasses.replace(teleop, **{k: v for k, v in changes.items() if v is not None})
    try:
        check_leader_pair(teleop.type, cfg.robot.kinematics_table)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return teleop


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
    leader = leader_arm(ServoArmConfig(type=teleop.type, port=teleop.port, id=teleop.id,
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


def make_gamepad(speed: float) -> InputController:
    """The gamepad of --teleop gamepad (pygame; raw HID on macOS), each stick deflection
    scaled by `speed` (tests replace this with a pad of their own)."""
    return make_controller("gamepad", x_step_size=speed, y_step_size=speed, z_step_size=speed,
                           roll_step_size=speed)


def gamepad_env(cfg: HILSerlRobotEnvConfig, robot) -> gym.Env:
    """The env's EE action path over the connected follower: joint targets from
    [dx, dy, dz] (+ droll) (+ gripper command), tip clipped to EXPLORE_BOUNDS."""
    params = dataclasses.replace(cfg.wrapper.ee_action_space_params, bounds=EXPLORE_BOUNDS)
    exploring = dataclasses.replace(
        cfg, wrapper=dataclasses.replace(cfg.wrapper, ee_action_space_params=params))
    env = HILSerlRobotEnv(robot, fps=SAMPLE_HZ, realtime=False)  # the loop keeps the pace
    return action_wrappers(env, exploring, RobotKinematics(cfg.robot.kinematics_table))


def drive_with(env: gym.Env, controller: InputController, use_gripper: bool,
               use_roll: bool) -> Callable[[], np.ndarray]:
    """One tick: read the pad, step the EE env with its action (the intervention button is not
    needed), return the follower's joints after the step."""
    def tick() -> np.ndarray:
        controller.update()
        if controller.should_quit():
            raise StopRecording
        action = controller_action(controller, use_gripper, use_roll)
        observation, *_ = env.step(action)
        return observation["observation.state"]

    return tick


def run_with_gamepad(cfg: HILSerlRobotEnvConfig, console: Console, args: argparse.Namespace
                     ) -> WorkspaceTracker:
    """The person drives the follower's tip with a gamepad; record; the arm ends limp."""
    params = cfg.wrapper.ee_action_space_params
    # One tick per SAMPLE_HZ: the tip moves step sizes * fps per second, as in the env.
    controller = make_gamepad(min(1.0, cfg.fps / SAMPLE_HZ))
    controller.start()  # no pad: nothing is connected yet
    try:
        robot = connect_follower(cfg)  # stiff: the gamepad moves it
        try:
            env = gamepad_env(cfg, robot)
            env.reset()
            console.say("Drive the gripper tip with the gamepad over the whole workspace it may "
                        "reach (left stick x/y, right stick z, LT/RT gripper)"
                        + (f" ({args.duration:g} s)" if args.duration else "")
                        + "; press ENTER (or B) to stop.")
            tick = drive_with(env, controller, cfg.wrapper.use_gripper,
                              params.roll_step_size is not None)
            return record_workspace(tick, robot.motor_names,
                                    RobotKinematics(cfg.robot.kinematics_table), console,
                                    args.duration)
        finally:
            _leave_limp(robot)
    finally:
        controller.stop()


TELEOPS = {"none": run_by_hand, "leader": run_with_leader, "gamepad": run_with_gamepad}


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
                             "follows the leader arm of the config's teleop block; gamepad: "
                             "drive the follower's tip with a gamepad")
    parser.add_argument("--duration", type=float,
                        help="stop after this many seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=WARMUP_S,
                        help="--teleop leader: seconds before recording starts")
    parser.add_argument("--leader-port", help="--teleop leader: the leader's serial port")
    parser.add_argument("--leader-id", help="--teleop leader: the leader's id (calibration)")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="widen the bounds by this many metres on every side")
    parser.add_argument("--joint-margin", type=float, default=0.0,
                        help="widen the written joint limits by this many degrees (gripper: "
                             "percent) on both ends")
    parser.add_argument("--write", action="store_true",
                        help=f"write {BOUNDS_FIELD} and {JOINT_LIMITS_FIELD} into the env "
                             "config")
    parser.add_argument("--output", help="write the updated config here instead (implies "
                                         "--write)")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    if args.margin < 0:
        parser.error("--margin must be >= 0")
    if not args.joint_margin >= 0:
        parser.error("--joint-margin must be >= 0")
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
    except DeviceNotFoundError as error:
        log.error("%s", error)
        return EXIT_FAILED
    except (MotorBusError, CalibrationError, OSError, EOFError) as error:
        log.error("%s (the arm is left limp)", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted: nothing written (the arm is left limp)")
        return EXIT_INTERRUPTED
    return _finish(args, console, tracker, cfg)


def new_joint_limits(cfg: HILSerlRobotEnvConfig, tracker: WorkspaceTracker, margin: float,
                     console: Console) -> dict[str, list[float]] | None:
    """robot.joint_limits to write: the seen ranges, and the config's limits of the joints that
    did not move (null when there are none). Warns when the reset pose lies outside them."""
    seen, still = tracker.joint_limits(margin)
    old = cfg.robot.joint_limits or {}
    limits = {name: list(old[name]) if name in old and name not in seen else seen.get(name)
              for name in tracker.motor_names if name in seen or name in old}
    console.say(f'"joint_limits": {limits}' + (f"  (widened by {margin:g})" if margin else ""))
    if still:
        console.say(f"Not limited (moved less than {MIN_JOINT_RANGE:g}): {', '.join(still)}"
                    + (" (the config's limits kept)" if set(still) & set(old) else ""))
    reset = cfg.wrapper.fixed_reset_joint_positions
    if reset is not None:
        outside = [name for name, value in zip(tracker.motor_names, reset)
                   if name in limits and not limits[name][0] <= value <= limits[name][1]]
        if outside:
            log.warning("wrapper.fixed_reset_joint_positions lies outside the joint limits on "
                        "%s: the arm will stop at the limits on reset (move the arm through the "
                        "reset pose too, or widen them with --joint-margin)", ", ".join(outside))
    return limits or None


def _finish(args: argparse.Namespace, console: Console, tracker: WorkspaceTracker,
            cfg: HILSerlRobotEnvConfig) -> int:
    if tracker.samples == 0:
        log.error("no reading of the arm was made (the arm is left limp)")
        return EXIT_INTERRUPTED if tracker.interrupted else EXIT_FAILED
    bounds = report(console, tracker, args.margin)
    if tracker.interrupted:
        log.error("interrupted: the bounds above were not written (the arm is left limp)")
        return EXIT_INTERRUPTED
    if bounds is None:
        return EXIT_FAILED
    limits = new_joint_limits(cfg, tracker, args.joint_margin, console)
    if args.write or args.output:
        values = {BOUNDS_FIELD: bounds}
        if limits is not None:
            values[JOINT_LIMITS_FIELD] = limits
        try:
            update_env_config(args.config, values, args.output)
        except (ConfigError, OSError) as error:
            log.error("the config was not written: %s", error)
            return EXIT_FAILED
        console.say(f"Wrote {' and '.join(values)} to {args.output or args.config}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
