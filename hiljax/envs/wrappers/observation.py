"""Observation wrappers: joint velocity, motor currents, EE pose, LeRobot key names, batching.

All of them work on numpy dicts and return new dicts (the caller's observation is never
mutated). `observation.state` grows in the reference's order: joints, then velocities, then
currents, then the EE position.
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np

from hiljax.envs.wrappers._spaces import (
    ENV_STATE_KEY,
    IMAGES_PREFIX,
    STATE_KEY,
    append_to_state,
    extend_state_space,
    is_image_key,
    observed_joints_of,
    robot_of,
)
from hiljax.kinematics import RobotKinematics

logger = logging.getLogger(__name__)


class AddJointVelocityToObservation(gym.ObservationWrapper):
    """Appends joint velocities, (q_t - q_{t-1}) * fps, in units per second.

    The reference starts from zeros, so its first velocity after a reset is q0 * fps (garbage);
    here the reset observation seeds the previous positions, so it is zero.
    """

    def __init__(self, env, joint_velocity_limits: float = 100.0, fps: float = 30.0,
                 num_dof: int | None = None):
        super().__init__(env)
        self.num_dof = num_dof or env.observation_space[STATE_KEY].shape[0]
        self.dt = 1.0 / fps
        limit = np.full(self.num_dof, joint_velocity_limits, np.float32)
        self.observation_space = extend_state_space(env.observation_space, -limit, limit)
        self.last_joint_positions: np.ndarray | None = None

    def reset(self, **kwargs):
        self.last_joint_positions = None
        return super().reset(**kwargs)

    def observation(self, observation):
        joints = np.asarray(observation[STATE_KEY][: self.num_dof], dtype=np.float32)
        previous = joints if self.last_joint_positions is None else self.last_joint_positions
        self.last_joint_positions = joints.copy()
        return append_to_state(observation, (joints - previous) / self.dt)


class AddCurrentToObservation(gym.ObservationWrapper):
    """Appends the motor currents read from the robot's bus."""

    def __init__(self, env, max_current: float = 500.0):
        super().__init__(env)
        robot = robot_of(env)
        if robot.read_joint_currents() is None:
            raise ValueError(f"add_current_to_observation: robot {robot.name!r} reports no motor "
                             "currents (read_joint_currents() returned None)")
        num = len(robot.motor_names)
        self.observation_space = extend_state_space(
            env.observation_space, np.zeros(num), np.full(num, max_current))

    def observation(self, observation):
        return append_to_state(observation, robot_of(self.env).read_joint_currents())


class EEObservationWrapper(gym.ObservationWrapper):
    """Appends the gripper-tip position (FK of the measured joints).

    With `normalize` (the default, as the guide describes) the position is mapped to [-1, 1]
    over the workspace bounds, so it has the scale of the other policy inputs; otherwise it is
    in metres with the bounds as the space's limits (the reference's v0.3 behaviour).
    """

    def __init__(self, env, ee_pose_limits, kinematics: RobotKinematics | None = None,
                 normalize: bool = True):
        super().__init__(env)
        self.kinematics = kinematics or RobotKinematics("so100")
        self.low = np.asarray(ee_pose_limits["min"], dtype=np.float64)
        self.high = np.asarray(ee_pose_limits["max"], dtype=np.float64)
        self.normalize = normalize
        # Outside the bounds a normalised value leaves [-1, 1]; the space allows some margin.
        low, high = ((-2.0 * np.ones(3), 2.0 * np.ones(3)) if normalize
                     else (self.low - 0.5, self.high + 0.5))
        self.observation_space = extend_state_space(env.observation_space, low, high)

    def ee_position(self) -> np.ndarray:
        joints = observed_joints_of(self.env)
        return self.kinematics.fk_gripper_tip(joints)[:3, 3]

    def observation(self, observation):
        position = self.ee_position()
        if self.normalize:
            position = 2.0 * (position - self.low) / (self.high - self.low) - 1.0
        return append_to_state(observation, position)


class ConvertToLeRobotObservation(gym.ObservationWrapper):
    """LeRobot's key names and dtypes, numpy-side.

    Raw gym-style keys are renamed (`agent_pos` -> `observation.state`, `environment_state` ->
    `observation.environment_state`, `pixels` dict -> `observation.images.<cam>`, a bare
    `pixels` array -> `observation.image`); keys already named so pass through. States become
    float32, images stay (H, W, 3) uint8: LeRobot's (C, H, W) float layout is produced by the
    transport codec, where observations leave hiljax, not here.
    """

    def __init__(self, env, device: str | None = None):  # device: the reference's; unused
        super().__init__(env)
        self.observation_space = gym.spaces.Dict(_convert_spaces(env.observation_space))

    def observation(self, observation):
        return {key: _convert_value(key, value) for key, value in _rename(observation)}


def _rename(observation: dict):
    """(LeRobot key, value) pairs for a raw or already converted observation."""
    for key, value in observation.items():
        if key == "agent_pos":
            yield STATE_KEY, value
        elif key == "environment_state":
            yield ENV_STATE_KEY, value
        elif key == "pixels" and isinstance(value, dict):
            for camera, frame in value.items():
                yield f"{IMAGES_PREFIX}{camera}", frame
        elif key == "pixels":
            yield "observation.image", value
        else:
            yield key, value


def _convert_value(key: str, value) -> np.ndarray:
    if is_image_key(key):
        return np.ascontiguousarray(value, dtype=np.uint8)
    return np.asarray(value, dtype=np.float32)


def _convert_spaces(space: gym.spaces.Dict) -> dict:
    as_dicts = {k: dict(v.spaces) if isinstance(v, gym.spaces.Dict) else v
                for k, v in space.spaces.items()}
    out = {}
    for key, sub in _rename(as_dicts):
        if is_image_key(key):
            out[key] = gym.spaces.Box(0, 255, sub.shape, dtype=np.uint8)
        else:
            out[key] = gym.spaces.Box(sub.low.astype(np.float32), sub.high.astype(np.float32),
                                      dtype=np.float32)
    return out


class BatchCompatibleWrapper(gym.ObservationWrapper):
    """Adds a leading batch axis of 1 to unbatched states and images (the reference feeds torch
    policies that want batches; hiljax's actor batches itself, so make_robot_env adds this only
    when `batch_compatible` is set)."""

    def __init__(self, env):
        super().__init__(env)
        spaces = {}
        for key, sub in env.observation_space.spaces.items():
            if self._needs_batch(key, len(sub.shape)):
                spaces[key] = gym.spaces.Box(sub.low[None], sub.high[None], dtype=sub.dtype)
            else:
                spaces[key] = sub
        self.observation_space = gym.spaces.Dict(spaces)

    @staticmethod
    def _needs_batch(key: str, ndim: int) -> bool:
        if is_image_key(key):
            return ndim == 3
        return ("state" in key or "velocity" in key) and ndim == 1

    def observation(self, observation):
        return {key: value[None] if self._needs_batch(key, np.ndim(value)) else value
                for key, value in observation.items()}


# The guide's misspelling, kept so LeRobot users' code still finds it.
BatchCompitableWrapper = BatchCompatibleWrapper
