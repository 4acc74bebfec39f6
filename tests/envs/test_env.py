"""HILSerlRobotEnv over the fake robot: spaces, commands, the simulated task's reward."""

import logging

import numpy as np
import pytest

from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.fake_robot import FakeRobot, FakeTaskRobot
from hiljax.envs.wrappers import CameraDisplay


def test_observation_has_lerobot_keys_and_matches_its_space():
    env = HILSerlRobotEnv(FakeRobot(cameras=("front", "wrist"), image_size=(48, 64)))
    observation, info = env.reset(seed=0)
    assert set(observation) == {"observation.state", "observation.images.front",
                                "observation.images.wrist"}
    assert observation["observation.state"].dtype == np.float32
    assert observation["observation.images.front"].shape == (48, 64, 3)
    assert observation["observation.images.front"].dtype == np.uint8
    assert env.observation_space.contains(observation)
    assert info == {"is_intervention": False}
    assert env.action_space.shape == (6,)


def test_step_sends_joint_targets_and_the_robot_follows():
    robot = FakeRobot(cameras=())
    env = HILSerlRobotEnv(robot)
    assert robot.is_connected  # the env connects the robot
    env.reset()
    targets = np.array([10, 50, 80, 40, 5, 30], np.float32)
    observation, reward, terminated, truncated, _ = env.step(targets)
    np.testing.assert_allclose(robot.sent[-1], targets)
    np.testing.assert_allclose(observation["observation.state"], targets, atol=0.5)
    assert (reward, terminated, truncated) == (0.0, False, False)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))


def test_simulated_task_gives_reward_one_terminates_and_adds_environment_state():
    robot = FakeTaskRobot(cameras=())
    env = HILSerlRobotEnv(robot)
    observation, _ = env.reset(seed=3)
    np.testing.assert_allclose(observation["observation.environment_state"], robot.cube, rtol=1e-6)
    # Put the tip on the cube: the solver's joints for the cube position.
    joints = robot.kinematics.solve_ik(robot.joints.astype(float), robot.cube).joints
    _, reward, terminated, _, info = env.step(joints.astype(np.float32))
    assert robot.task_success()
    assert (reward, terminated, info["next.success"]) == (1.0, True, True)


def test_task_reward_and_environment_state_can_be_turned_off():
    env = HILSerlRobotEnv(FakeTaskRobot(cameras=()), task_reward=False, add_environment_state=False)
    observation, _ = env.reset()
    assert "observation.environment_state" not in observation
    assert not env.task_reward


def test_display_cameras_says_once_when_there_is_no_display(monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.WARNING):
        env = HILSerlRobotEnv(FakeRobot(cameras=("front",)), display_cameras=True)
        env.reset()
        env.step(env.robot.read_joint_positions())
    lines = [r for r in caplog.records if "display_cameras" in r.getMessage()]
    assert len(lines) == 1 and "no display" in lines[0].getMessage()


def test_display_falls_back_with_one_line_when_opencv_has_no_gui(monkeypatch, caplog):
    import cv2

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "imshow", lambda *a: (_ for _ in ()).throw(cv2.error("no GUI")))
    display = CameraDisplay()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            display.show({"front": np.zeros((4, 4, 3), np.uint8)})
    assert not display.enabled
    assert sum("OpenCV cannot open a window" in r.getMessage() for r in caplog.records) == 1


def test_close_disconnects_the_robot():
    robot = FakeRobot(cameras=())
    env = HILSerlRobotEnv(robot)
    env.close()
    assert not robot.is_connected
    with pytest.raises(RuntimeError, match="not connected"):
        robot.read_joint_positions()
