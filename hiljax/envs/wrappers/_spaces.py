"""Small helpers shared by the wrappers: spaces and reaching the robot under the stack."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGES_PREFIX = "observation.images."


def is_image_key(key: str) -> bool:
    return key.startswith("observation.image")


def robot_of(env: gym.Env):
    """The `Robot` under a wrapper stack (the reference reads the bus the same way)."""
    robot = getattr(env.unwrapped, "robot", None)
    if robot is None:
        raise TypeError(f"{type(env.unwrapped).__name__} has no `robot`: this wrapper needs a "
                        "HILSerlRobotEnv underneath")
    return robot


def observed_joints_of(env: gym.Env) -> np.ndarray:
    """The joints of the env's latest observation (HILSerlRobotEnv caches them, so a real arm's
    bus is read once a step); a robot without that env underneath is read directly."""
    cached = getattr(env.unwrapped, "observed_joint_positions", None)
    if cached is not None:
        return np.asarray(cached(), dtype=np.float64)
    return np.asarray(robot_of(env).read_joint_positions(), dtype=np.float64)


def with_key(space: gym.spaces.Dict, key: str, value: gym.spaces.Space) -> gym.spaces.Dict:
    """A copy of a Dict space with one entry set (never mutate the inner env's space)."""
    spaces = dict(space.spaces)
    spaces[key] = value
    return gym.spaces.Dict(spaces)


def extend_state_space(space: gym.spaces.Dict, low, high) -> gym.spaces.Dict:
    """`observation.state` grown by len(low) entries with these bounds."""
    state = space[STATE_KEY]
    box = gym.spaces.Box(
        np.concatenate([state.low, np.asarray(low, np.float32)]).astype(np.float32),
        np.concatenate([state.high, np.asarray(high, np.float32)]).astype(np.float32),
        dtype=np.float32,
    )
    return with_key(space, STATE_KEY, box)


def append_to_state(observation: dict, values) -> dict:
    """A shallow copy of `observation` with `values` appended to its state (float32)."""
    out = dict(observation)
    out[STATE_KEY] = np.concatenate(
        [observation[STATE_KEY], np.asarray(values, dtype=np.float32)]).astype(np.float32)
    return out
