"""gym-hil's PandaPickCube through make_robot_env, with hiljax's observation and info keys."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("gym_hil", reason="the gymhil extra is not installed (pip install -e .[gymhil])")

from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig
from hiljax.envs.factory import make_robot_env
from tests.envs.helpers import fixed_command_controller, replace_wrapper


def _config(cameras=(), control_mode=None, control_time_s=0.5, random_block=False, **wrapper):
    cfg = HILSerlRobotEnvConfig(robot=RobotConfig(type="gym_hil", cameras=cameras,
                                                  random_block_position=random_block),
                                task="PandaPickCubeBase-v0", fps=10)
    return replace_wrapper(cfg, use_gripper=True, control_time_s=control_time_s,
                           gripper_penalty=-0.05,
                           ee_action_space_params=type(cfg.wrapper.ee_action_space_params)(
                               x_step_size=0.025, y_step_size=0.025, z_step_size=0.025,
                               control_mode=control_mode), **wrapper)


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
        import mujoco

        flags = env.unwrapped._viewer.scene.flags  # shadows and reflections off: ~9x faster
        assert flags[mujoco.mjtRndFlag.mjRND_SHADOW] == flags[mujoco.mjtRndFlag.mjRND_REFLECTION] == 0
        assert observation["observation.images.front"].shape == (128, 128, 3)
        assert observation["observation.images.wrist"].dtype == np.uint8
        *_, info = env.step(np.zeros(4, np.float32))
        assert info["is_intervention"] is True
        np.testing.assert_array_equal(info["action_intervention"], [0.0, 0.0, 1.0, 2.0])
    finally:
        env.close()


def _driver_angle(env) -> float:
    base = env.unwrapped
    return float(base._data.qpos[base._model.jnt_qposadr[base._model.joint("right_driver_joint").id]])


def test_gripper_commands_mean_what_they_say_and_only_useless_ones_are_charged():
    """gym-hil reads command 2 as "close"; hiljax keeps LeRobot's 0 close / 2 open."""
    env = make_robot_env(_config(control_time_s=5.0))
    try:
        env.reset(seed=0)
        penalties = [env.step(np.array([0, 0, 0, 0.0], np.float32))[-1]["discrete_penalty"]
                     for _ in range(4)]
        assert _driver_angle(env) > 0.6  # closed (empty)
        assert penalties[0] == 0.0 and penalties[-1] == -0.05  # closing a closed gripper
        penalties = [env.step(np.array([0, 0, 0, 2.0], np.float32))[-1]["discrete_penalty"]
                     for _ in range(4)]
        assert _driver_angle(env) < 0.1  # open again
        assert penalties[0] == 0.0 and penalties[-1] == -0.05
    finally:
        env.close()


def test_seeded_block_positions():
    env = make_robot_env(_config(random_block=True))
    try:
        first = env.reset(seed=3)[0]["observation.environment_state"]
        again = env.reset(seed=3)[0]["observation.environment_state"]
        other = env.reset(seed=4)[0]["observation.environment_state"]
        np.testing.assert_array_equal(first, again)
        assert np.linalg.norm(first[:2] - other[:2]) > 1e-3
    finally:
        env.close()


@pytest.mark.parametrize("random_block", [False, True])
def test_the_scripted_person_picks_the_cube(random_block):
    from hiljax.envs.configs import SimOperatorConfig

    env = make_robot_env(_config(control_mode="sim_operator", control_time_s=6.0,
                                 random_block=random_block,
                                 sim_operator=SimOperatorConfig(demo_episodes=10)))
    try:
        for episode in range(3):
            env.reset(seed=episode)
            done, info, reward = False, {}, 0.0
            while not done:
                _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
                done = terminated or truncated
                assert info["is_intervention"] is True  # a demonstration: every step
            assert reward == 1.0 and info["next.success"], f"episode {episode} failed"
    finally:
        env.close()


def test_the_gripper_reading_is_scaled_to_0_1():
    env = make_robot_env(_config(control_time_s=5.0))
    try:
        observation, _ = env.reset(seed=0)
        assert observation["observation.state"][14] == 0.0
        for _ in range(2):
            observation, *_ = env.step(np.array([0, 0, 0, 0.0], np.float32))  # close
        assert observation["observation.state"][14] == pytest.approx(1.0)
        assert env.observation_space["observation.state"].high[14] == 1.0
    finally:
        env.close()
