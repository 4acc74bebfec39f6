"""gym-hil's PandaPickCube through make_robot_env, with hiljax's observation and info keys."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("gym_hil", reason="the gymhil extra is not installed (pip install -e .[gymhil])")

from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig
from hiljax.envs.factory import make_robot_env
from tests.envs.helpers import fixed_command_controller, replace_wrapper


def _config(cameras=()):
    cfg = HILSerlRobotEnvConfig(robot=RobotConfig(type="gym_hil", cameras=cameras),
                                task="PandaPickCubeBase-v0", fps=10)
    return replace_wrapper(cfg, use_gripper=True, control_time_s=0.5, gripper_penalty=-0.05,
                           ee_action_space_params=type(cfg.wrapper.ee_action_space_params)(
                               x_step_size=0.025, y_step_size=0.025, z_step_size=0.025,
                               control_mode=None))


def test_state_observations_and_a_few_steps():
    env = make_robot_env(_config())
    try:
        observation, info = env.reset(seed=0)
        assert set(observation) == {"observation.state", "observation.environment_state"}
        assert observation["observation.state"].shape == (18,)
        assert observation["observation.state"].dtype == np.float32
        assert env.action_space.shape == (4,)
        assert info["is_intervention"] is False
        for step in range(5):
            observation, _, terminated, truncated, info = env.step(
                np.array([0.0, 0.0, -1.0, 1.0], np.float32))
            assert "next.success" in info and "discrete_penalty" in info
            assert not terminated
        assert truncated  # 0.5 s at 10 fps: the time limit truncates
    finally:
        env.close()


def test_images_and_human_intervention():
    controller = fixed_command_controller(deltas=(0.0, 0.0, 1.0), gripper="open")
    env = make_robot_env(_config(cameras=("front", "wrist")), controller=controller)
    try:
        observation, _ = env.reset(seed=0)
        assert observation["observation.images.front"].shape == (128, 128, 3)
        assert observation["observation.images.wrist"].dtype == np.uint8
        *_, info = env.step(np.zeros(4, np.float32))
        assert info["is_intervention"] is True
        np.testing.assert_array_equal(info["action_intervention"], [0.0, 0.0, 1.0, 2.0])
    finally:
        env.close()
