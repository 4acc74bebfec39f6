"""Environment configuration: the guide's HILSerlRobotEnvConfig, EnvWrapperConfig and
EEActionSpaceConfig (field names and defaults of LeRobot's v0.3 `configs.py`), plus RobotConfig.

Frozen dataclasses, loaded from JSON by the strict loader of `hiljax.config` (unknown or
ill-typed fields raise `ConfigError` naming the field); values are checked when built.

    cfg = load_env_config("configs/env_sim.json", ["wrapper.control_time_s=5"])
    env = make_robot_env(cfg)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from hiljax.config import FrozenMapping, load_config, require
from hiljax.envs.robot_types import ROBOT_TYPES as ROBOT_TYPE_REGISTRY
from hiljax.hardware.cameras import CameraConfig
from hiljax.kinematics import ROBOT_LINK_ORIGINS

ROBOT_TYPES = tuple(ROBOT_TYPE_REGISTRY)
KINEMATICS_TABLES = tuple(ROBOT_LINK_ORIGINS)
LEADER_TYPES = ("so100_leader", "so101_leader", "koch_leader")
INTERVENTION_KEY_MODES = ("toggle", "hold")  # hiljax.control.leader's
# Keys the leader's keyboard already uses (success / failure / rerecord, quit).
LEADER_RESERVED_KEYS = ("s", "f", "r", "escape")
GRIPPER_MOTOR = "gripper"
# "leader" / "leader_automatic" are the reference's leader-arm modes (no leader arm here);
# "sim_operator" is hiljax's scripted person for the simulator (hiljax.envs.sim.operator).
CONTROL_MODES = ("gamepad", "gamepad_hid", "keyboard", "leader", "leader_automatic",
                 "sim_operator")
REWARD_CLASSIFIER_MODES = ("override", "max")
ENV_MODES = ("record", "replay")
# The sim's cube start area (hiljax.envs.sim.task.CubeSpawn's defaults: the easy task). Kept here,
# MuJoCo-free, so a config can be checked without loading the simulator.
DEFAULT_CUBE_X_RANGE = (0.16, 0.22)
DEFAULT_CUBE_Y_RANGE = (-0.06, 0.06)
DEFAULT_CUBE_YAW_DEG = 0.0


@dataclasses.dataclass(frozen=True)
class RobotConfig:
    """Which robot HILSerlRobotEnv drives (hiljax's; LeRobot picks a robot by its own config)."""

    # sim_so100: the MuJoCo so100 (hiljax.envs.sim); fake: the test stand-in (no hardware);
    # gym_hil: LeRobot's PandaPickCube sim; so100 / so101 / moss / koch: a real arm on its servo
    # bus (hiljax.hardware). The registry is hiljax.envs.robot_types.
    type: str = "sim_so100"
    # Simulated robots: camera names (empty: state-only, no rendering at all). A real arm: LeRobot's
    # mapping name -> camera settings ({"front": {"type": "opencv", "index_or_path": 0,
    # "width": 640, "height": 480, "fps": 30}}; types opencv, intelrealsense, file).
    cameras: tuple[str, ...] | dict[str, CameraConfig] = ("front", "wrist")
    image_size: int = 128  # sim / fake frames are image_size x image_size
    seed: int = 0
    # The arm table of hiljax.kinematics for the EE wrappers; null: the type's own.
    kinematics: str | None = None
    # A real arm (LeRobot's follower config fields): the servo bus' serial port, the arm's id
    # (names its calibration file), where calibration files live (null: LeRobot's own place),
    # the largest change of a goal per step (degrees; gripper percent), and torque off when the
    # env closes or fails. use_degrees must stay true: the env's joints are degrees.
    port: str | None = None
    id: str | None = None
    calibration_dir: str | None = None
    max_relative_target: float | None = None
    disable_torque_on_disconnect: bool = True
    use_degrees: bool = True
    # A real arm: motor name -> [min, max] in the arm's units (degrees; the gripper 0..100)
    # that goals are clipped to, inside the calibration's range (python -m
    # hiljax.find_ee_bounds --write fills it from the ranges it saw). null: the calibration's.
    joint_limits: dict[str, tuple[float, ...]] | None = None
    # Simulated robots only (a SimulatedTask): reward 1 + terminate on task success, and the
    # cube position as observation.environment_state (as gym-hil).
    task_reward: bool = True
    add_environment_state: bool = True
    # Hold each step to 1 / fps of wall time. None: yes for a real arm, no for a simulator.
    realtime: bool | None = None
    # gym_hil only: gym-hil's random_block_position (the cube anywhere in a 20 x 30 cm area).
    # Off (gym-hil's default, and LeRobot's tutorial): the cube always starts at (0.5, 0).
    random_block_position: bool = False
    # sim_so100 only: where the cube starts (metres, world frame: base at the origin, +x
    # forward), drawn uniformly at every reset, and its yaw: facing the base (square to a gripper
    # with no wrist roll) plus uniform +-cube_yaw_deg. A yaw needs roll to grasp squarely
    # (ee_action_space_params.roll_step_size); the cube is symmetric, so 45 is the hardest.
    cube_x_range: tuple[float, float] = DEFAULT_CUBE_X_RANGE
    cube_y_range: tuple[float, float] = DEFAULT_CUBE_Y_RANGE
    cube_yaw_deg: float = DEFAULT_CUBE_YAW_DEG

    def __post_init__(self):
        require(self.type in ROBOT_TYPES,
                 f"robot.type must be one of {ROBOT_TYPES}, got {self.type!r}")
        require(self.image_size >= 8, f"robot.image_size must be >= 8, got {self.image_size}")
        require(len(set(self.cameras)) == len(self.cameras), "robot.cameras has duplicates")
        self._check_cameras()
        if self.is_real:
            require(bool(self.port), f"robot.type {self.type!r} is a real arm: set robot.port "
                    "(e.g. /dev/ttyACM0; python -m hiljax.virtual_robot makes one to try)")
            require(self.use_degrees, "robot.use_degrees must be true: HILSerlRobotEnv and its "
                    "EE wrappers work in degrees")
        require(self.max_relative_target is None or self.max_relative_target > 0,
                "robot.max_relative_target must be > 0 or null")
        if self.joint_limits is not None:
            object.__setattr__(self, "joint_limits", self._checked_joint_limits())
        require(self.kinematics is None or self.kinematics in KINEMATICS_TABLES,
                f"robot.kinematics must be one of {KINEMATICS_TABLES} or null")
        for name in ("cube_x_range", "cube_y_range"):
            value = tuple(getattr(self, name))
            require(len(value) == 2 and value[0] <= value[1],
                    f"robot.{name} must be [low, high] metres with low <= high, got {value}")
            object.__setattr__(self, name, value)
        require(0.0 <= self.cube_yaw_deg <= 180.0,
                f"robot.cube_yaw_deg must be in [0, 180] degrees, got {self.cube_yaw_deg}")

    def _check_cameras(self) -> None:
        """Names for a simulator, device settings for a real arm (frozen either way)."""
        if isinstance(self.cameras, dict):
            require(self.is_real, f"robot.type {self.type!r} renders its own cameras: give "
                    "robot.cameras as a list of names")
            for name, camera in self.cameras.items():
                require(camera.width and camera.height and camera.fps,
                        f"robot.cameras.{name}: a real arm's camera needs width, height and fps "
                        "(the env's observation shapes come from them)")
                require(camera.type != "sim", f"robot.cameras.{name}: type 'sim' frames come "
                        "from a simulator's renderer, not from a real arm")
            object.__setattr__(self, "cameras", FrozenMapping(self.cameras))
        else:
            object.__setattr__(self, "cameras", tuple(self.cameras))
            require(not (self.is_real and self.cameras), "a real arm's robot.cameras name "
                    "their devices: {\"front\": {\"type\": \"opencv\", \"index_or_path\": 0, "
                    "\"width\": 640, \"height\": 480, \"fps\": 30}}")

    def _checked_joint_limits(self) -> FrozenMapping:
        """{motor: (min, max)}: finite numbers, min < max, the gripper inside 0..100, and
        for a real arm only its motors' names."""
        limits = self.joint_limits
        require(isinstance(limits, dict), f"robot.joint_limits must be an object {{motor: [min, "
                f"max]}}, got {limits!r}")
        if self.is_real:
            from hiljax.hardware.robots.arms import MOTOR_NAMES  # serial code: only when set

            unknown = sorted(set(limits) - set(MOTOR_NAMES))
            require(not unknown, f"robot.joint_limits: unknown motors {unknown}; the arm's are "
                    f"{list(MOTOR_NAMES)}")
        out = {}
        for name, value in limits.items():
            require(isinstance(value, (list, tuple)) and len(value) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v) for v in value),
                    f"robot.joint_limits.{name} must be [min, max], two finite numbers, got "
                    f"{value!r}")
            low, high = (float(v) for v in value)
            require(low < high, f"robot.joint_limits.{name}: need min < max, got {[low, high]}")
            if name == GRIPPER_MOTOR:
                require(0.0 <= low and high <= 100.0, f"robot.joint_limits.gripper reads 0 "
                        f"(closed) .. 100 (open), got {[low, high]}")
            out[name] = (low, high)
        return FrozenMapping(out)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.cameras)

    @property
    def is_real(self) -> bool:
        return ROBOT_TYPE_REGISTRY[self.type].real

    @property
    def kinematics_table(self) -> str | None:
        """The kinematics table the EE wrappers use: the configured one, else the type's."""
        return self.kinematics or ROBOT_TYPE_REGISTRY[self.type].kinematics


def _frozen_bounds(bounds) -> FrozenMapping:
    require(isinstance(bounds, dict) and set(bounds) == {"min", "max"},
             f"ee_action_space_params.bounds needs exactly 'min' and 'max', got {bounds!r}")
    out = {}
    for key in ("min", "max"):
        value = bounds[key]
        require(isinstance(value, (list, tuple)) and len(value) == 3
                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value),
                 f"ee_action_space_params.bounds.{key} must be 3 numbers (x, y, z metres), "
                 f"got {value!r}")
        out[key] = tuple(float(v) for v in value)
    require(all(lo < hi for lo, hi in zip(out["min"], out["max"])),
             f"ee_action_space_params.bounds: need min < max on every axis, got {out}")
    return FrozenMapping(out)


@dataclasses.dataclass(frozen=True)
class EEActionSpaceConfig:
    """End-effector delta actions: [-1, 1]^3 times these step sizes (metres per step), and with
    `roll_step_size` a 4th, the wrist roll (degrees per step)."""

    x_step_size: float = 0.02
    y_step_size: float = 0.02
    z_step_size: float = 0.02
    # hiljax: degrees of wrist roll per unit of a 4th action value ([dx, dy, dz, droll,
    # (gripper)]), so the policy and the person can turn the fingers square to a cube with a
    # yaw. null: no roll dimension (LeRobot's 3-D EE action; the roll stays where it is).
    roll_step_size: float | None = None
    # Workspace of the gripper tip (metres, world frame): {"min": [x, y, z], "max": [x, y, z]}.
    # The default is the MuJoCo so100's table area in front of the arm.
    bounds: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=lambda: {
        "min": (0.12, -0.12, 0.01), "max": (0.30, 0.12, 0.16)})
    # Who can take over: gamepad | gamepad_hid | keyboard, sim_operator (a scripted person on
    # the simulator, set up by wrapper.sim_operator), or null for the policy alone.
    control_mode: str | None = "gamepad"

    def __post_init__(self):
        object.__setattr__(self, "bounds", _frozen_bounds(dict(self.bounds)))
        for axis in "xyz":
            step = getattr(self, f"{axis}_step_size")
            require(step > 0, f"ee_action_space_params.{axis}_step_size must be > 0, got {step}")
        require(self.roll_step_size is None or self.roll_step_size > 0,
                f"ee_action_space_params.roll_step_size must be > 0 or null, got "
                f"{self.roll_step_size}")
        require(self.control_mode is None or self.control_mode in CONTROL_MODES,
                 f"ee_action_space_params.control_mode must be null or one of {CONTROL_MODES}, "
                 f"got {self.control_mode!r}")


@dataclasses.dataclass(frozen=True)
class SimOperatorConfig:
    """The scripted person of `control_mode = "sim_operator"` (hiljax.envs.sim.operator).

    Episodes are counted per env (per actor). The first `demo_episodes` are whole
    demonstrations; after them the operator watches an episode with a probability that goes
    linearly from `p_start` to `p_end` over `decay_episodes`, and takes over a watched episode
    when the policy is stuck or drifting, handing back once progress is restored. Distances are
    in metres of "task distance": tip to grasp point (+ a constant) before the grasp, the
    missing lift after it.
    """

    seed: int = 0  # the watch draws; everything else is deterministic
    demo_episodes: int = 0  # the first N episodes are full demonstrations (-> offline buffer)
    p_start: float = 1.0  # P(watch an episode) at the first episode after the demonstrations
    p_end: float = 0.1  # ... and after decay_episodes more
    decay_episodes: int = 200
    stuck_patience: int = 8  # steps without progress before taking over ("stuck")
    progress_threshold: float = 0.005  # a smaller improvement of the task distance is no progress
    drift_tolerance: float = 0.03  # the task distance this much above its best: "drifting"
    max_tip_cube_distance: float = 0.12  # the tip farther from the cube: "drifting" (out of reach)
    release_progress: float = 0.04  # task distance regained before handing back
    min_intervention_steps: int = 3
    max_intervention_steps: int = 20  # hand back after this many steps even without progress
    # The N-th takeover of an episode keeps control to its end: a person who has had to step in
    # that often finishes the task. null: every takeover hands back.
    finish_after_takeovers: int | None = 3
    # Also end the episode as "success" when the simulator's task succeeds (for runs without the
    # task reward, e.g. recording for a reward classifier). Off: the env's own reward ends it.
    report_success: bool = False

    def __post_init__(self):
        where = "wrapper.sim_operator"
        require(self.demo_episodes >= 0, f"{where}.demo_episodes must be >= 0")
        for name in ("p_start", "p_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{where}.{name} must be in [0, 1], got {value}")
        require(self.decay_episodes >= 0, f"{where}.decay_episodes must be >= 0")
        require(self.stuck_patience >= 1, f"{where}.stuck_patience must be >= 1")
        for name in ("progress_threshold", "drift_tolerance", "max_tip_cube_distance",
                     "release_progress"):
            value = getattr(self, name)
            require(value > 0, f"{where}.{name} must be > 0 (metres), got {value}")
        require(self.finish_after_takeovers is None or self.finish_after_takeovers >= 1,
                 f"{where}.finish_after_takeovers must be >= 1 or null")
        require(1 <= self.min_intervention_steps <= self.max_intervention_steps,
                 f"{where}: need 1 <= min_intervention_steps <= max_intervention_steps, got "
                 f"{self.min_intervention_steps}, {self.max_intervention_steps}")

    def watch_probability(self, episode: int) -> float:
        """P(the operator watches episode `episode`, counted from 0); 1 for a demonstration."""
        if episode < self.demo_episodes:
            return 1.0
        if self.decay_episodes == 0:
            return self.p_end
        fraction = min(1.0, (episode - self.demo_episodes) / self.decay_episodes)
        return self.p_start + fraction * (self.p_end - self.p_start)


def _frozen_crops(crops) -> FrozenMapping | None:
    if crops is None:
        return None
    out = {}
    for key, value in dict(crops).items():
        require(len(value) == 4 and all(isinstance(v, int) and v >= 0 for v in value)
                 and value[2] > 0 and value[3] > 0,
                 f"crop_params_dict[{key!r}] must be [top, left, height, width] (pixels, "
                 f"height and width > 0), got {list(value)}")
        out[key] = tuple(value)
    return FrozenMapping(out)


@dataclasses.dataclass(frozen=True)
class EnvWrapperConfig:
    """Which wrappers make_robot_env stacks, and their settings (the guide's table)."""

    display_cameras: bool = False
    add_joint_velocity_to_observation: bool = False
    add_current_to_observation: bool = False
    add_ee_pose_to_observation: bool = False
    # camera (or observation.images.<camera>) -> [top, left, height, width] pixels.
    crop_params_dict: dict[str, tuple[int, ...]] | None = None
    resize_size: tuple[int, ...] | None = None  # [height, width]; 128 x 128 when cropping
    control_time_s: float = 20.0  # episode length (seconds at fps); ends as truncated
    # Arm joints (degrees, 5 values, optionally + gripper) the arm moves to before an episode;
    # null: a person resets the scene during reset_time_s.
    fixed_reset_joint_positions: tuple[float, ...] | None = None
    reset_time_s: float = 5.0
    joint_masking_action_space: tuple[bool, ...] | None = None  # true = the policy controls it
    ee_action_space_params: EEActionSpaceConfig = dataclasses.field(
        default_factory=EEActionSpaceConfig)
    # The scripted person of control_mode "sim_operator" (hiljax; ignored by other modes).
    sim_operator: SimOperatorConfig = dataclasses.field(default_factory=SimOperatorConfig)
    use_gripper: bool = False
    gripper_quantization_threshold: float | None = 0.8
    gripper_penalty: float | None = 0.0  # info["discrete_penalty"]; null: no penalty wrapper
    gripper_penalty_in_reward: bool = False
    open_gripper_on_reset: bool = False
    # Add a batch axis to observations (the reference always does, for torch policies);
    # hiljax's actor batches itself.
    batch_compatible: bool = False

    def __post_init__(self):
        object.__setattr__(self, "crop_params_dict", _frozen_crops(self.crop_params_dict))
        require(self.resize_size is None or (len(self.resize_size) == 2
                                              and min(self.resize_size) > 0),
                 f"resize_size must be [height, width] > 0, got {self.resize_size}")
        require(self.control_time_s > 0, f"control_time_s must be > 0, got {self.control_time_s}")
        require(self.reset_time_s >= 0, f"reset_time_s must be >= 0, got {self.reset_time_s}")
        if self.fixed_reset_joint_positions is not None:
            require(len(self.fixed_reset_joint_positions) in (5, 6),
                     "fixed_reset_joint_positions: 5 arm joints (degrees), optionally + gripper")
        if self.gripper_quantization_threshold is not None:
            require(0.0 <= self.gripper_quantization_threshold < 1.0,
                     "gripper_quantization_threshold must be in [0, 1) or null")
        if self.joint_masking_action_space is not None:
            require(any(self.joint_masking_action_space),
                     "joint_masking_action_space masks every action dimension")


@dataclasses.dataclass(frozen=True)
class TeleopConfig:
    """The leader arm of control_mode "leader" / "leader_automatic" (LeRobot's `env.teleop`;
    hiljax.control.leader). The follower's gripper and EE follow the leader while the person
    has taken over (`intervention_keys` toggle it, or hold it with "hold"; automatic mode also
    when the leader is pushed away)."""

    # so100_leader | so101_leader (robot so100 / so101 / moss) | koch_leader (robot koch)
    type: str = "so101_leader"
    port: str | None = None
    id: str | None = None
    calibration_dir: str | None = None
    # While the policy acts the leader follows the follower with low gains (LeRobot's geared
    # leader), so a take-over starts where the robot is; false: the leader stays limp.
    follow: bool = True
    takeover_threshold_deg: float = 15.0  # automatic: take over beyond this leader-follower gap
    release_steps: int | None = 10  # automatic: give back after this many still, aligned steps
    release_still_deg: float = 1.0
    release_distance_m: float = 0.01
    deadband_m: float = 0.001  # tips this close: a zero action (below the servos' resolution)
    gripper_threshold: float = 0.3  # open / close at this fraction of the range apart
    # The take-over keys of the leader's keyboard window (pygame's key names) and how they act:
    # "toggle" - a press starts, the next ends it (LeRobot's leader guide: space); "hold" - the
    # take-over lasts while a key is held (a USB foot pedal sending e.g. "b" or "page down").
    intervention_key_mode: str = "toggle"
    intervention_keys: tuple[str, ...] = ("space", "i")

    def __post_init__(self):
        require(self.type in LEADER_TYPES, f"teleop.type must be one of {LEADER_TYPES}, got "
                f"{self.type!r}")
        require(bool(self.port), "teleop.port: the leader arm's serial port (python -m "
                "hiljax.find_port finds it)")
        require(self.takeover_threshold_deg > 0 and self.deadband_m >= 0
                and 0 < self.gripper_threshold < 1, "teleop: thresholds must be positive "
                "(gripper_threshold in (0, 1))")
        require(self.intervention_key_mode in INTERVENTION_KEY_MODES,
                f"teleop.intervention_key_mode must be one of {INTERVENTION_KEY_MODES}, got "
                f"{self.intervention_key_mode!r}")
        keys = tuple(self.intervention_keys)
        require(bool(keys) and all(isinstance(k, str) and k for k in keys),
                f"teleop.intervention_keys must name at least one key, got {keys!r}")
        taken = sorted(set(keys) & set(LEADER_RESERVED_KEYS))
        require(not taken, f"teleop.intervention_keys {taken}: these keys already end an "
                "episode (s / f / r) or quit (escape)")
        object.__setattr__(self, "intervention_keys", keys)


@dataclasses.dataclass(frozen=True)
class HILSerlRobotEnvConfig:
    """The environment of a HIL-SERL run (the guide's table, LeRobot v0.3 defaults)."""

    robot: RobotConfig = dataclasses.field(default_factory=RobotConfig)
    wrapper: EnvWrapperConfig = dataclasses.field(default_factory=EnvWrapperConfig)
    teleop: TeleopConfig | None = None  # the leader arm of the leader control modes
    fps: int = 10  # control frequency (Hz)
    name: str = "real_robot"
    mode: str | None = None  # "record", "replay" or null (training)
    task: str = ""  # gym_hil: the env id after "gym_hil/", e.g. "PandaPickCubeBase-v0"
    device: str = "cuda"  # the reference's torch device; hiljax envs are numpy (unused)
    reward_classifier_pretrained_path: str | None = None
    # hiljax: how the classifier's P(success) becomes the reward (see RewardWrapper).
    reward_classifier_threshold: float = 0.7
    reward_classifier_mode: str = "override"  # override | max (keep the sim's task reward)
    # Recording (the reference's fields; used by the recording script).
    repo_id: str | None = None
    dataset_root: str | None = None
    num_episodes: int = 10
    episode: int = 0  # mode "replay": the episode to play back
    # The reference uploads after recording; hiljax never uploads (no network at run time) and
    # says how to when this is set.
    push_to_hub: bool = False
    video: bool = True  # cameras as AV1 MP4 (LeRobot's default); false: PNG frames in parquet
    pretrained_policy_name_or_path: str | None = None
    number_of_steps_after_success: int = 0

    def __post_init__(self):
        require(self.fps > 0, f"fps must be > 0, got {self.fps}")
        require(self.mode is None or self.mode in ENV_MODES,
                 f"mode must be null or one of {ENV_MODES}, got {self.mode!r}")
        require(0.0 <= self.reward_classifier_threshold <= 1.0,
                 "reward_classifier_threshold must be in [0, 1]")
        require(self.reward_classifier_mode in REWARD_CLASSIFIER_MODES,
                 f"reward_classifier_mode must be one of {REWARD_CLASSIFIER_MODES}")
        require(self.num_episodes >= 0 and self.number_of_steps_after_success >= 0,
                 "num_episodes and number_of_steps_after_success must be >= 0")
        if self.wrapper.ee_action_space_params.control_mode in ("leader", "leader_automatic"):
            require(self.teleop is not None, "control_mode leader needs teleop: the leader arm "
                    '({"type": "so101_leader", "port": "/dev/ttyACM1", "id": "my_leader"})')
        if self.teleop is not None and self.robot.is_real:
            # A leader drives an arm of its own kind (both tips use the follower's kinematics).
            allowed = tuple(t for t in LEADER_TYPES
                            if (t == "koch_leader") == (self.robot.type == "koch"))
            require(self.teleop.type in allowed, f"teleop.type must be one of {allowed} for "
                    f"robot.type {self.robot.type!r} (a leader drives an arm of its own kind), "
                    f"got {self.teleop.type!r}")
        if self.robot.type == "gym_hil":
            require(self.task.startswith("Panda"),
                     f"robot.type gym_hil needs task = a gym_hil env id such as "
                     f"'PandaPickCubeBase-v0', got {self.task!r}")
            require(self.wrapper.ee_action_space_params.roll_step_size is None,
                    "robot.type gym_hil has gym-hil's own 3-D EE action: set "
                    "ee_action_space_params.roll_step_size to null")
        if self.robot.type == "sim_so100":
            self._check_cube_area_in_bounds()

    def _check_cube_area_in_bounds(self) -> None:
        """The tip must be allowed over every cube start, or some cubes cannot be picked."""
        bounds = self.wrapper.ee_action_space_params.bounds
        for axis, (low, high) in enumerate((self.robot.cube_x_range, self.robot.cube_y_range)):
            require(bounds["min"][axis] <= low and high <= bounds["max"][axis],
                    f"the cube area robot.cube_{'xy'[axis]}_range [{low}, {high}] must lie "
                    f"inside ee_action_space_params.bounds on {'xy'[axis]} "
                    f"[{bounds['min'][axis]}, {bounds['max'][axis]}]")

    @property
    def max_episode_steps(self) -> int:
        return max(1, round(self.wrapper.control_time_s * self.fps))


def without_interventions(cfg: HILSerlRobotEnvConfig) -> HILSerlRobotEnvConfig:
    """The same env with no intervention wrapper: nobody may override the actions (evaluation,
    replay)."""
    params = dataclasses.replace(cfg.wrapper.ee_action_space_params, control_mode=None)
    return dataclasses.replace(cfg, wrapper=dataclasses.replace(
        cfg.wrapper, ee_action_space_params=params))


def load_env_config(path: str | Path | None = None, overrides: list[str] = ()
                    ) -> HILSerlRobotEnvConfig:
    """HILSerlRobotEnvConfig from a JSON file (or the defaults) plus `a.b=value` overrides;
    `--env.wrapper.fps=...` style (LeRobot's prefix) works too."""
    return load_config(HILSerlRobotEnvConfig, path, overrides, prefix_alias="env")
