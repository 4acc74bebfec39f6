"""LeaderArmController: a person takes over by moving a leader arm (LeRobot's `control_mode`
"leader" / "leader_automatic": its pre-0.4 GearedLeaderControlWrapper and automatic variant).

    leader = ServoArmConfig(type="so101_leader", port="/dev/ttyACM1", id="my_leader")
    controller = make_leader_controller(leader, step_sizes=(0.02,) * 3, kinematics="so100")
    env = make_robot_env(cfg, controller=controller)   # InterventionWrapper drives it

Leaders: SO-100 / SO-101 (follower so100 / so101 / moss) and Koch (follower koch). While the
policy acts, the leader is "geared" to the follower (`LeaderSettings.follow`): torque on
with low gains (Feetech P=4 I=0 D=4; Dynamixel Position P/I/D = 50/0/0, the same 1/8 of the
factory P) and each update writes the follower's joints as its goals, so it stays where the
follower is and the person can take over without a jump. When the person takes over, the
leader's torque goes off and the action is the tip of the leader minus the tip of the follower
(zero inside a 1 mm deadband), divided by the EE step sizes and clipped to [-1, 1]: the policy's
own action space, which EEActionWrapper turns back into "go to the leader's tip" (at most one
step size per axis per step). With a roll action (`roll_step_deg`, the env's roll_step_size)
the wrist roll follows the leader's the same way: the roll gap over the roll step, clipped.
Both arms use the follower's kinematics (a leader has its follower's geometry: the SO-100/101
leader the SO arm's, the Koch leader the Koch's; other pairs are refused).
The gripper command: `leader_gripper_command`.

Take-over: the events controller's intervention flag. The default is the keyboard (a small
pygame window to keep focused): `LeaderSettings.intervention_keys` ("space" and "i") toggle a
take-over (`intervention_key_mode` "toggle", LeRobot's leader guide), or, with "hold", take
over while held - KEYDOWN starts, KEYUP ends it: a USB foot pedal that sends a key
(configure the pedal's key, e.g. "b" or "page down", pygame's spelling). `s` / `f` / `r`
success / failure / rerecord; `escape` quits (LeRobot's guide ends a failed episode with
`esc`, which quits here). With `automatic`, also when the person pushes the leader more than
`takeover_threshold_deg` from the follower on any arm joint; that take-over ends by itself once
the leader has been held still with the follower's tip on the leader's for `release_steps`
updates. A key take-over during it replaces it (lasting until the key is pressed again, or
released with "hold"). The automatic trigger is armed only after the leader has come within
half the threshold of the follower, so a leader still travelling to the follower (at start,
after a reset or a take-over) does not fire.

The controller owns the leader: start() connects it, stop() leaves it limp and disconnects it.
Leader joints must read in degrees. LeRobot's Koch leader reads its arm joints in -100..100 of
its calibrated range; `leader_arm` (used for a ServoArmConfig) reads them in degrees instead,
from the same LeRobot calibration file: (raw - middle of the range) * 360 / 4095, the Koch
follower's own degrees. Its gripper (0..100) is geared and freed like the others; with
follow=False it keeps LeRobot's spring-back trigger (held at 50 with torque on).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from hiljax.control.base import GRIPPER_CLOSE, GRIPPER_OPEN, GRIPPER_STAY, InputController
from hiljax.control.keyboard import KeyboardController
from hiljax.control.keymap import KeyMap
from hiljax.kinematics import ROBOT_LINK_ORIGINS, RobotKinematics

logger = logging.getLogger(__name__)

LEADER_CONTROL_MODES = ("leader", "leader_automatic")
NUM_ARM_JOINTS = 5  # then the gripper
WRIST_ROLL = 4
MAX_GRIPPER_POS = 100.0  # the gripper reads 0 (closed) .. 100 (open) on both arms

INTERVENTION_KEY_MODES = ("toggle", "hold")
DEFAULT_INTERVENTION_KEYS = ("space", "i")


def leader_keymap(intervention_keys=DEFAULT_INTERVENTION_KEYS, mode: str = "toggle") -> KeyMap:
    """The keyboard beside a leader arm: no movement keys (the arm moves the end effector);
    `intervention_keys` toggle a take-over ("toggle") or take over while held ("hold")."""
    if mode not in INTERVENTION_KEY_MODES:
        raise ValueError(f"intervention_key_mode must be one of {INTERVENTION_KEY_MODES}, got "
                         f"{mode!r}")
    keys = frozenset(intervention_keys)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError(f"intervention_keys must name at least one key, got "
                         f"{intervention_keys!r}")
    keymap = KeyMap(moves={}, gripper={})
    taken = keys & (set(keymap.episode_end) | keymap.quit)
    if taken:
        raise ValueError(f"intervention_keys {sorted(taken)} already end an episode or quit")
    if mode == "hold":
        return dataclasses.replace(keymap, toggle_intervention=frozenset(),
                                   hold_intervention=keys)
    return dataclasses.replace(keymap, toggle_intervention=keys)


LEADER_KEYMAP = leader_keymap()

# Low gains while geared to the follower, so a hand can overpower the leader (LeRobot's P_coeff
# default is 32; an XL330's Position_P_Gain 400). Feetech's gains sit in EEPROM: they are written
# with the lock on (after torque on), so they hold until power-off and are never saved.
FOLLOW_GAINS = {
    "P_Coefficient": {"P_Coefficient": 4, "I_Coefficient": 0, "D_Coefficient": 4},
    "Position_P_Gain": {"Position_P_Gain": 50, "Position_I_Gain": 0, "Position_D_Gain": 0},
}


@dataclasses.dataclass(frozen=True)
class LeaderSettings:
    # Geared leader: torque on with low gains, tracking the follower while the policy acts.
    # False: the leader stays limp (a take-over then starts from wherever it was left).
    follow: bool = True
    # Automatic mode: take over when an arm joint of the leader is this far from the follower's.
    takeover_threshold_deg: float = 15.0
    # Automatic mode: give control back after this many updates in a row with the leader still
    # and the follower's tip on the leader's; None: only the key ends a take-over.
    release_steps: int | None = 10
    release_still_deg: float = 1.0  # "still": no arm joint moved more than this since last update
    release_distance_m: float = 0.01  # "on": the two tips this close
    # No movement while the tips are this close: holding the leader still is a zero action (a
    # sub-millimetre remainder is below the servos' resolution; as an action it would only make
    # a replay of the episode creep).
    deadband_m: float = 0.001
    # Gripper: open / close when the leader's gripper is this fraction of the range more open /
    # closed than the follower's (LeRobot's 0.3).
    gripper_threshold: float = 0.3
    # Register -> value written while geared; None: FOLLOW_GAINS for the leader's bus.
    follow_gains: Mapping[str, int] | None = None
    # The default keyboard's take-over keys (pygame's names) and whether a press toggles the
    # take-over or it lasts while the key is held (a foot pedal). Ignored when `events` is given.
    intervention_key_mode: str = "toggle"
    intervention_keys: tuple[str, ...] = DEFAULT_INTERVENTION_KEYS

    def __post_init__(self):
        leader_keymap(self.intervention_keys, self.intervention_key_mode)  # checks both


def leader_gripper_command(leader: float, follower: float, last: tuple[int, float] | None,
                           threshold: float = 0.3) -> int:
    """0 close / 1 stay / 2 open from the two grippers (0..100).

    Open when the leader's gripper is `threshold` of the range more open than the follower's,
    close when that much more closed. `last` = (command, leader gripper then) of the last close /
    open sent in this take-over: a command is sent once (the env drives the gripper to the end
    of its range), and the opposite one only after the leader's own gripper moved `threshold`
    that way - else a leader held half open would open and close the follower in turn.
    (The rule of hardware_facts 6.2; LeRobot's pre-0.4 code compared the leader's gripper with
    its own reading a step before.)
    """
    difference = (leader - follower) / MAX_GRIPPER_POS
    if difference >= threshold:
        wanted = GRIPPER_OPEN
    elif difference <= -threshold:
        wanted = GRIPPER_CLOSE
    else:
        return GRIPPER_STAY
    if last is None:
        return wanted
    command, leader_then = last
    if wanted == command:
        return GRIPPER_STAY
    moved = (leader - leader_then) / MAX_GRIPPER_POS * (1.0 if wanted == GRIPPER_OPEN else -1.0)
    return wanted if moved >= threshold else GRIPPER_STAY


class LeaderArmController(InputController):
    """See the module docstring."""

    def __init__(self, leader, kinematics: RobotKinematics, step_sizes: Sequence[float],
                 use_gripper: bool = True, automatic: bool = False,
                 events: InputController | None = None,
                 settings: LeaderSettings = LeaderSettings(),
                 roll_step_deg: float | None = None):
        """leader: connect / disconnect / is_connected / read_joint_positions() (degrees, gripper
        0..100) and, to be geared, `bus` (a MotorsBus). step_sizes: the env's EE step sizes
        (x, y, z metres per unit action). events: take-over toggle and episode-end keys.
        roll_step_deg: the env's roll_step_size (degrees per unit action); None: no roll."""
        super().__init__()
        self.leader = leader
        self.kinematics = kinematics
        self.step_sizes = np.asarray(step_sizes, dtype=np.float64)
        if self.step_sizes.shape != (3,) or not np.all(self.step_sizes > 0):
            raise ValueError(f"step_sizes must be 3 positive numbers, got {step_sizes!r}")
        self.use_gripper = use_gripper
        self.roll_step_deg = roll_step_deg
        self.automatic = automatic
        if events is None:
            events = KeyboardController(keymap=leader_keymap(settings.intervention_keys,
                                                             settings.intervention_key_mode))
        self.events = events
        if automatic and not settings.follow:
            raise ValueError("automatic take-over needs the geared leader (follow=True): a limp "
                             "leader drifts from the follower and would take over by itself")
        self.settings = settings
        self.follower_joints: np.ndarray | None = None  # (6,) from the latest observation
        self.leader_joints: np.ndarray | None = None  # (6,) read at the latest update
        self.torque_on = False
        self._gains_written = False
        self._auto_active = False
        self._armed = False
        self._still_steps = 0
        self._last_gripper: tuple[int, float] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if not self.leader.is_connected:
            self.leader.connect()
        self._check_degrees()
        self.events.start()

    def stop(self) -> None:
        self.events.stop()
        if not self.leader.is_connected:
            return
        try:
            if self.torque_on:
                self._free_leader()
        finally:
            self.leader.disconnect()  # leaders go limp on disconnect too

    def reset(self) -> None:
        super().reset()
        self.events.reset()
        # The follower moves to its reset pose now: re-arm once the leader has caught up.
        self._auto_active, self._armed, self._still_steps = False, False, 0

    def observe(self, observation) -> None:
        state = np.asarray(observation["observation.state"], dtype=np.float64).reshape(-1)
        self.follower_joints = state[:NUM_ARM_JOINTS + 1].copy()

    def update(self) -> None:
        self.events.update()
        leader = np.asarray(self.leader.read_joint_positions(), dtype=np.float64).reshape(-1)
        manual = self.events.should_intervene()
        if self.automatic:
            self._update_automatic(leader, manual)
        intervening = (manual or self._auto_active) and self.follower_joints is not None
        if intervening and not self.intervention_flag:
            logger.info("leader take-over (%s)", "key" if manual else "leader pushed")
            self._last_gripper = None
        if intervening:
            if self.torque_on:
                self._free_leader()
            self._set_commands(leader)
        else:
            self._deltas, self._roll = (0.0, 0.0, 0.0), 0.0
            self.open_gripper_command = self.close_gripper_command = False
            if self.settings.follow:
                self._follow(leader)
        self.intervention_flag = intervening
        self.leader_joints = leader

    # --- the events controller's requests ----------------------------------------------------
    def get_episode_end_status(self) -> str | None:
        return self.events.get_episode_end_status()

    def should_quit(self) -> bool:
        return self.events.should_quit()

    # --- the person's action -----------------------------------------------------------------
    def tip(self, joints: np.ndarray) -> np.ndarray:
        return self.kinematics.fk_gripper_tip(joints[:NUM_ARM_JOINTS])[:3, 3]

    def _set_commands(self, leader: np.ndarray) -> None:
        follower = self.follower_joints
        gap = self.tip(leader) - self.tip(follower)
        if np.linalg.norm(gap) < self.settings.deadband_m:
            gap = np.zeros(3)
        deltas = np.clip(gap / self.step_sizes, -1.0, 1.0)
        self._deltas = tuple(float(d) + 0.0 for d in deltas)
        if self.roll_step_deg is not None:
            roll_gap = leader[WRIST_ROLL] - follower[WRIST_ROLL]
            self._roll = float(np.clip(roll_gap / self.roll_step_deg, -1.0, 1.0)) + 0.0
        command = GRIPPER_STAY
        if self.use_gripper:
            command = leader_gripper_command(leader[-1], follower[-1], self._last_gripper,
                                             self.settings.gripper_threshold)
            if command != GRIPPER_STAY:
                self._last_gripper = (command, float(leader[-1]))
        self.open_gripper_command = command == GRIPPER_OPEN
        self.close_gripper_command = command == GRIPPER_CLOSE

    def _update_automatic(self, leader: np.ndarray, manual: bool) -> None:
        if manual or self.follower_joints is None:
            self._auto_active, self._armed = False, False  # the key owns the take-over
            return
        settings = self.settings
        error = float(np.max(np.abs(leader[:NUM_ARM_JOINTS]
                                    - self.follower_joints[:NUM_ARM_JOINTS])))
        if not self._auto_active:
            if not self._armed:
                self._armed = error < 0.5 * settings.takeover_threshold_deg
            elif error > settings.takeover_threshold_deg:
                self._auto_active, self._still_steps = True, 0
            return
        if settings.release_steps is None or self.leader_joints is None:
            return
        moved = np.max(np.abs(leader[:NUM_ARM_JOINTS] - self.leader_joints[:NUM_ARM_JOINTS]))
        gap = np.linalg.norm(self.tip(leader) - self.tip(self.follower_joints))
        settled = moved <= settings.release_still_deg and gap <= settings.release_distance_m
        self._still_steps = self._still_steps + 1 if settled else 0
        if self._still_steps >= settings.release_steps:
            logger.info("leader take-over ends: the leader is still and the follower on it")
            self._auto_active, self._armed = False, False

    # --- the geared leader -------------------------------------------------------------------
    def _motor_names(self) -> tuple[str, ...]:
        return tuple(getattr(self.leader, "motor_names", None) or self.leader.bus.motors)

    def _follow(self, leader: np.ndarray) -> None:
        bus, names = self.leader.bus, self._motor_names()
        if not self.torque_on:
            # Hold where it is first: a stale goal register would make it jump at torque on.
            bus.sync_write("Goal_Position", dict(zip(names, map(float, leader))))
            bus.enable_torque()
            self.torque_on = True
            self._write_gains()
        if self.follower_joints is not None:
            goals = dict(zip(names, map(float, self.follower_joints)))
            bus.sync_write("Goal_Position", goals)

    def _free_leader(self) -> None:
        self.leader.bus.disable_torque()
        self.torque_on = False

    def _write_gains(self) -> None:
        if self._gains_written:
            return
        bus = self.leader.bus
        gains = self.settings.follow_gains
        if gains is None:
            tables = [bus.model_ctrl_table[m.model] for m in bus.motors.values()]
            gains = next((g for register, g in FOLLOW_GAINS.items()
                          if all(register in table for table in tables)), None)
            if gains is None:
                raise ValueError("the leader's servos have no known gain registers: pass "
                                 "LeaderSettings(follow_gains=...) or follow=False")
        for motor in self._motor_names():
            for register, value in gains.items():
                bus.write(register, motor, value, normalize=False)
        self._gains_written = True

    def _check_degrees(self) -> None:
        """FK needs degrees; a leader reading -100..100 would move the follower anywhere."""
        motors = getattr(getattr(self.leader, "bus", None), "motors", None) or {}
        for name, motor in list(motors.items())[:NUM_ARM_JOINTS]:
            mode = getattr(motor, "norm_mode", None)
            if mode is not None and getattr(mode, "value", mode) != "degrees":
                raise ValueError(f"leader joint {name} reads in {mode}, not degrees: the leader "
                                 "action needs degrees (use_degrees=True; build a Koch leader "
                                 "with hiljax.control.leader.leader_arm)")


def leader_arm(config):
    """The ServoArm of a leader config, its arm joints read in degrees.

    LeRobot's Koch leader reads its arm joints in -100..100 of the calibrated range whatever
    use_degrees says; this one's bus normalises them as DEGREES instead. The calibration file is
    the same (raw ticks: LeRobot's file, in LeRobot's place), and the two readings are one
    linear map through it: degrees = value / 100 * (range_max - range_min) / 2 * 360 / 4095,
    except that degrees do not saturate at the range's ends. Goals written to the geared leader
    are then degrees too. Other leaders: their own bus (degrees with use_degrees)."""
    from hiljax.hardware.robots import ServoArm

    spec = config.spec
    bus = None
    if spec.body_always_range:
        bus = dataclasses.replace(spec, body_always_range=False).make_bus(config.port,
                                                                          use_degrees=True)
    return ServoArm(config, bus=bus)


def is_koch(table_or_type: str) -> bool:
    return table_or_type.startswith("koch")


def check_leader_pair(leader_type: str, kinematics_table: str) -> None:
    """A leader drives a follower of its own geometry: the Koch leader a Koch, the SO-100/101
    leader an SO-100/101 or Moss (the SO-100 layout). Both arms' tips use that table."""
    if is_koch(leader_type) != is_koch(kinematics_table):
        want = "a koch follower" if is_koch(leader_type) else "an so100/so101/moss follower"
        raise ValueError(f"{leader_type} drives {want} (the tips of both arms use the "
                         f"follower's kinematics), not the {kinematics_table!r} arm")


def make_leader_controller(leader, *, step_sizes: Sequence[float], use_gripper: bool = True,
                           control_mode: str = "leader",
                           kinematics: str | RobotKinematics = "so100",
                           events: InputController | None = None,
                           settings: LeaderSettings = LeaderSettings(),
                           roll_step_deg: float | None = None) -> LeaderArmController:
    """The controller of `control_mode` "leader" / "leader_automatic".

    leader: a `ServoArmConfig` of a leader type (built into a ServoArm, connected by start()) or
    a ready arm object. kinematics: the follower's kinematics table (the env's
    `robot.kinematics_table`) or a RobotKinematics; a leader config must suit it
    (`check_leader_pair`). step_sizes: ee_action_space_params' x/y/z.
    """
    from hiljax.hardware.robots import ServoArmConfig

    if control_mode not in LEADER_CONTROL_MODES:
        raise ValueError(f"control_mode {control_mode!r} is not one of {LEADER_CONTROL_MODES}")
    if isinstance(leader, ServoArmConfig):
        if not leader.spec.is_leader:
            raise ValueError(f"{leader.type} is not a leader arm (e.g. so101_leader)")
        table = kinematics if isinstance(kinematics, str) else kinematics.robot_type
        if table in ROBOT_LINK_ORIGINS:  # a custom geometry is the caller's business
            check_leader_pair(leader.type, table)
        leader = leader_arm(leader)
    if isinstance(kinematics, str):
        kinematics = RobotKinematics(kinematics)
    return LeaderArmController(leader, kinematics, step_sizes, use_gripper=use_gripper,
                               automatic=control_mode == "leader_automatic", events=events,
                               settings=settings, roll_step_deg=roll_step_deg)
