"""Episode wrappers: the time limit, the reset procedure, and the classifier reward."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

from hiljax.envs.robot import GRIPPER_OPEN
from hiljax.envs.wrappers._spaces import robot_of

logger = logging.getLogger(__name__)

# Success probability of an observation: the reward classifier, as a plain callable.
RewardClassifier = Callable[[dict], float]


class TimeLimitWrapper(gym.Wrapper):
    """Ends an episode after control_time_s * fps steps by marking it TRUNCATED.

    The reference (v0.3.3) marked `terminated`, which stops bootstrapping at a state that is
    not terminal; LeRobot later marks `truncated`, as here. Also keeps the measured episode
    time in `info["episode_time_s"]` and notes (debug) steps slower than the control rate.
    """

    def __init__(self, env, control_time_s: float, fps: float):
        super().__init__(env)
        self.control_time_s = control_time_s
        self.fps = fps
        self.max_episode_steps = max(1, round(control_time_s * fps))
        self.current_step = 0
        self.episode_time_in_s = 0.0
        self._last_timestamp = time.perf_counter()

    def reset(self, **kwargs):
        self.current_step = 0
        self.episode_time_in_s = 0.0
        self._last_timestamp = time.perf_counter()
        return self.env.reset(**kwargs)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        now = time.perf_counter()
        elapsed, self._last_timestamp = now - self._last_timestamp, now
        self.episode_time_in_s += elapsed
        if elapsed > 1.0 / self.fps:
            logger.debug("step took %.3f s, more than a control period (fps %s)", elapsed,
                         self.fps)
        self.current_step += 1
        info["episode_time_s"] = self.episode_time_in_s
        if self.current_step >= self.max_episode_steps and not terminated:
            truncated = True
        return observation, reward, terminated, truncated, info


def joint_trajectory(start: np.ndarray, goal: np.ndarray, num_steps: int) -> np.ndarray:
    """(num_steps, J) straight line from start (excluded) to goal (included)."""
    fractions = np.linspace(0.0, 1.0, num_steps + 1)[1:, None]
    return (start[None] + fractions * (goal - start)[None]).astype(np.float32)


class ResetWrapper(gym.Wrapper):
    """Before every episode: move the arm to `reset_pose`, or give a person `reset_time_s`.

    With a reset pose (5 arm joints, or 6 with the gripper), the joint targets go in a straight
    line from where the arm is, over `num_interpolation_steps` commands (the reference's 50),
    then the final target is held until the joints are within `tolerance_deg` (at most
    `settle_steps` more commands). `step_wait_s` paces the commands on a real arm (the
    reference waits 15 ms); a simulator needs none. With `realtime`, the reset then lasts
    at least `reset_time_s` (the reference's busy wait). Without a pose, the person has
    `reset_time_s` seconds to put the scene back. `open_gripper_on_reset` opens the gripper.
    """

    def __init__(self, env, reset_pose: Sequence[float] | None = None, reset_time_s: float = 5.0,
                 open_gripper_on_reset: bool = False, num_interpolation_steps: int = 50,
                 step_wait_s: float = 0.0, realtime: bool = False, settle_steps: int = 20,
                 tolerance_deg: float = 1.0):
        super().__init__(env)
        robot = robot_of(env)
        self.reset_pose = None if reset_pose is None else np.asarray(reset_pose, np.float32)
        num_motors = len(robot.motor_names)
        if self.reset_pose is not None and self.reset_pose.shape not in ((num_motors,),
                                                                          (num_motors - 1,)):
            raise ValueError(f"fixed_reset_joint_positions has {self.reset_pose.size} values; "
                             f"the robot has {num_motors} motors ({', '.join(robot.motor_names)})"
                             " - give the arm joints, with or without the gripper")
        self.reset_time_s = reset_time_s
        self.open_gripper_on_reset = open_gripper_on_reset
        self.num_interpolation_steps = max(1, num_interpolation_steps)
        self.step_wait_s = step_wait_s
        self.realtime = realtime
        self.settle_steps = settle_steps
        self.tolerance_deg = tolerance_deg

    def goal_joints(self, current: np.ndarray) -> np.ndarray:
        goal = current.copy()
        if self.reset_pose is not None:
            goal[: self.reset_pose.size] = self.reset_pose
        if self.open_gripper_on_reset:
            goal[-1] = GRIPPER_OPEN
        return goal

    def move_to(self, goal: np.ndarray) -> None:
        robot = robot_of(self.env)
        start = np.asarray(robot.read_joint_positions(), dtype=np.float32)
        for targets in joint_trajectory(start, goal, self.num_interpolation_steps):
            robot.send_joint_targets(targets)
            if self.step_wait_s:
                time.sleep(self.step_wait_s)
        for _ in range(self.settle_steps):
            error = np.abs(np.asarray(robot.read_joint_positions()) - goal)
            if np.max(error[:-1]) <= self.tolerance_deg:
                break
            robot.send_joint_targets(goal)

    def reset(self, *, seed=None, options=None):
        start = time.perf_counter()
        robot = robot_of(self.env)
        if self.reset_pose is not None:
            logger.info("resetting the arm to %s", np.round(self.reset_pose, 1).tolist())
            self.move_to(self.goal_joints(np.asarray(robot.read_joint_positions(), np.float32)))
            if self.realtime:
                time.sleep(max(0.0, self.reset_time_s - (time.perf_counter() - start)))
        else:
            if self.open_gripper_on_reset:
                self.move_to(self.goal_joints(np.asarray(robot.read_joint_positions(),
                                                         np.float32)))
            if self.reset_time_s > 0:
                logger.info("reset the scene by hand: %.1f s", self.reset_time_s)
                time.sleep(self.reset_time_s)
        return self.env.reset(seed=seed, options=options)


class RewardWrapper(gym.Wrapper):
    """Reward from a classifier: any callable mapping an observation to P(success).

    `mode="override"` (the reference): the reward is 1.0 when P >= threshold, else 0.0, and a
    success terminates. `mode="max"`: the env's own reward (e.g. the simulator's task reward)
    is kept and the classifier can only raise it to 1.0. P is in `info["reward_classifier_
    probability"]`; a success sets `info["next.success"]`.
    """

    MODES = ("override", "max")

    def __init__(self, env, reward_classifier: RewardClassifier, threshold: float = 0.7,
                 mode: str = "override", terminate_on_success: bool = True):
        super().__init__(env)
        if not callable(reward_classifier):
            raise TypeError("reward_classifier must be a callable: observation -> P(success)")
        if mode not in self.MODES:
            raise ValueError(f"reward classifier mode {mode!r}; expected one of {self.MODES}")
        self.reward_classifier = reward_classifier
        self.threshold = threshold
        self.mode = mode
        self.terminate_on_success = terminate_on_success

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        probability = float(self.reward_classifier(observation))
        success = probability >= self.threshold
        info["reward_classifier_probability"] = probability
        classifier_reward = 1.0 if success else 0.0
        reward = classifier_reward if self.mode == "override" else max(reward, classifier_reward)
        if success:
            info["next.success"] = True
            terminated = terminated or self.terminate_on_success
        return observation, reward, terminated, truncated, info
