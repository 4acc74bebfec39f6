"""HILSerlRobotEnv: a gymnasium env over any `Robot` (real arm, MuJoCo arm or fake bus).

Action: absolute joint targets, in the robot's units (arm joints in degrees, gripper in
[0, 100]); the EE and gripper wrappers turn a policy's action into this. Observation (already
under LeRobot's key names, so the reference's wrapper order works unchanged):

    observation.state              (num_motors,) float32 joint positions
    observation.images.<camera>    (H, W, 3) uint8 RGB, one per camera
    observation.environment_state  (k,) float32, for a `SimulatedTask` robot when asked

For a `SimulatedTask` robot the env also re-randomises the scene at reset and, with
`task_reward`, gives reward 1.0 and terminates when the task succeeds (what gym-hil does).
With `realtime`, a step lasts at least 1 / fps (a real arm); a simulator steps as fast as it can.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gymnasium as gym
import numpy as np

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN, Robot, SimulatedTask
from hiljax.envs.wrappers._spaces import ENV_STATE_KEY, IMAGES_PREFIX, STATE_KEY
from hiljax.envs.wrappers.display import CameraDisplay

logger = logging.getLogger(__name__)

OVERRUN_LOG_INTERVAL_S = 10.0
JOINT_RANGE_DEG = 360.0  # servos turn a full turn either way; the robot clips to its own limits


def image_key(camera: str) -> str:
    return f"{IMAGES_PREFIX}{camera}"


class HILSerlRobotEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["human"]}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(
        self,
        robot: Robot,
        display_cameras: bool = False,
        fps: float = 10.0,
        realtime: bool = False,
        task_reward: bool = True,
        add_environment_state: bool = True,
    ):
        super().__init__()
        self.robot = robot
        self.fps = float(fps)
        self.realtime = realtime
        if not robot.is_connected:
            robot.connect()
        self.is_simulated_task = isinstance(robot, SimulatedTask)
        self.task_reward = task_reward and self.is_simulated_task
        self.add_environment_state = add_environment_state and self.is_simulated_task
        self.display = CameraDisplay() if display_cameras else None
        self.current_step = 0
        self._last_step_time: float | None = None
        self._observed_joints: np.ndarray | None = None
        self.overruns = 0  # real-time steps that took longer than 1 / fps
        self._last_overrun_log = -float("inf")
        self.observation_space = self._observation_space(self._observe())
        self.action_space = self._action_space(len(robot.motor_names))

    # --- spaces ---------------------------------------------------------------------------
    @staticmethod
    def _joint_bounds(num_motors: int) -> tuple[np.ndarray, np.ndarray]:
        """Arm joints within a turn either way; the gripper (last) in [0, 100]."""
        low = np.full(num_motors, -JOINT_RANGE_DEG, dtype=np.float32)
        high = np.full(num_motors, JOINT_RANGE_DEG, dtype=np.float32)
        low[-1], high[-1] = GRIPPER_CLOSED, GRIPPER_OPEN
        return low, high

    def _observation_space(self, example: dict[str, np.ndarray]) -> gym.spaces.Dict:
        spaces: dict[str, gym.spaces.Space] = {}
        low, high = self._joint_bounds(len(self.robot.motor_names))
        spaces[STATE_KEY] = gym.spaces.Box(low, high, dtype=np.float32)
        for key, value in example.items():
            if key.startswith(IMAGES_PREFIX):
                spaces[key] = gym.spaces.Box(0, 255, value.shape, dtype=np.uint8)
        if ENV_STATE_KEY in example:
            spaces[ENV_STATE_KEY] = gym.spaces.Box(
                -np.inf, np.inf, example[ENV_STATE_KEY].shape, dtype=np.float32)
        return gym.spaces.Dict(spaces)

    def _action_space(self, num_motors: int) -> gym.spaces.Box:
        low, high = self._joint_bounds(num_motors)
        return gym.spaces.Box(low, high, dtype=np.float32)

    # --- observation ----------------------------------------------------------------------
    def observed_joint_positions(self) -> np.ndarray:
        """The joints of the latest observation (what the policy saw): the wrappers use these
        instead of reading the bus again, so a step reads a real arm once, and the EE pose
        and `observation.state` come from the same read."""
        if self._observed_joints is None:
            self._observed_joints = np.asarray(self.robot.read_joint_positions(), np.float32)
        return self._observed_joints.copy()

    def _observe(self) -> dict[str, np.ndarray]:
        self._observed_joints = np.asarray(self.robot.read_joint_positions(), np.float32)
        observation = {STATE_KEY: self._observed_joints.copy()}
        for camera, frame in self.robot.read_cameras().items():
            observation[image_key(camera)] = frame
        if self.add_environment_state:
            observation[ENV_STATE_KEY] = np.asarray(self.robot.environment_state(), np.float32)
        return observation

    # --- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed, options=options)
        if self.is_simulated_task:
            self.robot.reset_scene(self.np_random)
        self.current_step = 0
        self._last_step_time = time.perf_counter()
        observation = self._observe()
        self._show(observation)
        return observation, {"is_intervention": False}

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        targets = np.asarray(action, dtype=np.float32).reshape(-1)
        if targets.shape != self.action_space.shape:
            raise ValueError(f"joint targets must have shape {self.action_space.shape} "
                             f"({', '.join(self.robot.motor_names)}), got {targets.shape}")
        self.robot.send_joint_targets(targets)
        self._hold_rate_or_make_safe()
        observation = self._observe()
        self._show(observation)
        self.current_step += 1
        reward, terminated, info = 0.0, False, {"is_intervention": False}
        if self.task_reward and self.robot.task_success():
            reward, terminated = 1.0, True
            info["next.success"] = True
        return observation, reward, terminated, False, info

    def _hold_rate_or_make_safe(self) -> None:
        """Most of a real step is this wait, outside any bus call: a Ctrl-C (or any exception)
        landing here makes the arm safe at once, not only when someone closes the env."""
        try:
            self._hold_rate()
        except BaseException:
            make_safe = getattr(self.robot, "make_safe", None)
            if make_safe is not None:
                make_safe()
            raise

    def _hold_rate(self) -> None:
        """A real arm gets one command per control period; the sim needs no waiting. A step
        that overran its period is counted and reported (at most every 10 s)."""
        if self.realtime and self._last_step_time is not None:
            period = 1.0 / self.fps
            elapsed = time.perf_counter() - self._last_step_time
            if elapsed < period:
                time.sleep(period - elapsed)
            else:
                self._report_overrun(elapsed, period)
        self._last_step_time = time.perf_counter()

    def _report_overrun(self, elapsed: float, period: float) -> None:
        self.overruns += 1
        now = time.monotonic()
        if now - self._last_overrun_log >= OVERRUN_LOG_INTERVAL_S:
            self._last_overrun_log = now
            logger.warning("the control loop cannot keep up: a step took %.0f ms, the period "
                           "at %g fps is %.0f ms (%d late steps so far)", 1000 * elapsed,
                           self.fps, 1000 * period, self.overruns)

    def _show(self, observation: dict[str, np.ndarray]) -> None:
        if self.display is not None:
            self.display.show({k.removeprefix(IMAGES_PREFIX): v for k, v in observation.items()
                               if k.startswith(IMAGES_PREFIX)})

    def render(self):
        self._show(self._observe())

    def close(self):
        if self.display is not None:
            self.display.close()
        if self.robot.is_connected:
            self.robot.disconnect()
