"""Observation wrappers on the fake robot: velocity, currents, EE pose, keys, crop, batch."""

import gymnasium as gym
import numpy as np
import pytest

from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.fake_robot import FakeRobot
from hiljax.envs.wrappers import (
    AddCurrentToObservation,
    AddJointVelocityToObservation,
    BatchCompatibleWrapper,
    BatchCompitableWrapper,
    ConvertToLeRobotObservation,
    EEObservationWrapper,
    ImageCropResizeWrapper,
)
from hiljax.kinematics import RobotKinematics
from tests.envs.helpers import BOUNDS


def _env(**robot_kwargs):
    return HILSerlRobotEnv(FakeRobot(**{"cameras": (), **robot_kwargs}))


def test_joint_velocity_is_zero_after_reset_then_position_change_times_fps():
    env = AddJointVelocityToObservation(_env(), fps=10)
    observation, _ = env.reset()
    state = observation["observation.state"]
    assert state.shape == (12,) and np.all(state[6:] == 0)
    before = state[:6].copy()
    targets = before + np.array([5, 0, 0, 0, 0, -10], np.float32)
    observation, *_ = env.step(targets)
    state = observation["observation.state"]
    np.testing.assert_allclose(state[6:], (state[:6] - before) * 10, rtol=1e-5)
    assert env.observation_space["observation.state"].shape == (12,)


def test_currents_are_appended_and_a_robot_without_them_is_refused():
    env = AddCurrentToObservation(_env())
    observation, _ = env.reset()
    assert observation["observation.state"].shape == (12,)
    assert env.observation_space.contains(observation)
    with pytest.raises(ValueError, match="no motor currents"):
        AddCurrentToObservation(_env(has_currents=False))


def test_ee_pose_is_the_tip_position_normalised_by_the_bounds():
    env = EEObservationWrapper(_env(), BOUNDS)
    observation, _ = env.reset()
    tip = RobotKinematics("so100").fk_gripper_tip(env.unwrapped.robot.joints.astype(float))[:3, 3]
    low, high = np.array(BOUNDS["min"]), np.array(BOUNDS["max"])
    np.testing.assert_allclose(observation["observation.state"][6:],
                               2 * (tip - low) / (high - low) - 1, atol=1e-5)
    raw = EEObservationWrapper(_env(), BOUNDS, normalize=False)
    np.testing.assert_allclose(raw.reset()[0]["observation.state"][6:], tip, atol=1e-6)


class _RawEnv(gym.Env):
    """A gym-hil-like env: agent_pos, environment_state, pixels dict."""

    observation_space = gym.spaces.Dict({
        "agent_pos": gym.spaces.Box(-1, 1, (4,), np.float64),
        "environment_state": gym.spaces.Box(-1, 1, (3,), np.float64),
        "pixels": gym.spaces.Dict({"front": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}),
    })
    action_space = gym.spaces.Box(-1, 1, (4,), np.float32)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_convert_to_lerobot_renames_raw_keys_and_fixes_dtypes():
    env = ConvertToLeRobotObservation(_RawEnv())
    observation, _ = env.reset()
    assert set(observation) == {"observation.state", "observation.environment_state",
                                "observation.images.front"}
    assert observation["observation.state"].dtype == np.float32
    assert observation["observation.images.front"].shape == (8, 8, 3)
    assert env.observation_space.contains(observation)


def test_crop_then_resize_gives_the_region_at_the_requested_size():
    base = _env(cameras=("front", "wrist"), image_size=(96, 128))
    env = ImageCropResizeWrapper(base, {"front": (10, 20, 40, 60)}, (32, 48))
    observation, _ = env.reset()
    assert observation["observation.images.front"].shape == (32, 48, 3)
    assert observation["observation.images.wrist"].shape == (96, 128, 3)  # not listed: untouched
    raw = base.unwrapped.robot.read_cameras()["front"][10:50, 20:80]
    # Area resampling keeps the mean brightness of the cropped region.
    np.testing.assert_allclose(observation["observation.images.front"].mean(axis=(0, 1)),
                               raw.mean(axis=(0, 1)), atol=2.0)
    assert env.observation_space.contains(observation)


def test_resize_alone_resizes_every_camera_and_bad_crops_are_refused():
    env = ImageCropResizeWrapper(_env(cameras=("front", "wrist")), None, (16, 16))
    observation, _ = env.reset()
    assert {observation[k].shape for k in observation if "images" in k} == {(16, 16, 3)}
    with pytest.raises(ValueError, match="not an image"):
        ImageCropResizeWrapper(_env(cameras=("front",)), {"side": (0, 0, 4, 4)})
    with pytest.raises(ValueError, match="outside"):
        ImageCropResizeWrapper(_env(cameras=("front",)), {"front": (0, 0, 500, 4)})


def test_batch_wrapper_adds_a_leading_axis_and_keeps_the_misspelt_alias():
    assert BatchCompitableWrapper is BatchCompatibleWrapper
    env = BatchCompatibleWrapper(_env(cameras=("front",), image_size=(8, 8)))
    observation, _ = env.reset()
    assert observation["observation.state"].shape == (1, 6)
    assert observation["observation.images.front"].shape == (1, 8, 8, 3)
    assert env.observation_space.contains(observation)
