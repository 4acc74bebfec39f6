"""Time limit, reset and classifier reward wrappers on the fake robot."""

import numpy as np
import pytest

from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.fake_robot import FakeRobot, FakeTaskRobot
from hiljax.envs.wrappers import ResetWrapper, RewardWrapper, TimeLimitWrapper, joint_trajectory
from tests.envs.helpers import RESET_JOINTS


def _hold(env):
    return np.asarray(env.unwrapped.robot.read_joint_positions(), np.float32)


def test_time_limit_marks_truncated_not_terminated():
    env = TimeLimitWrapper(HILSerlRobotEnv(FakeRobot(cameras=())), control_time_s=0.5, fps=10)
    env.reset()
    endings = [env.step(_hold(env))[2:4] for _ in range(5)]
    assert endings[:4] == [(False, False)] * 4
    assert endings[4] == (False, True)
    env.reset()
    assert env.current_step == 0


def test_joint_trajectory_is_a_straight_line_ending_at_the_goal():
    path = joint_trajectory(np.zeros(2), np.array([10.0, -5.0]), 50)
    assert path.shape == (50, 2)
    np.testing.assert_allclose(path[0], [0.2, -0.1], rtol=1e-5)
    np.testing.assert_allclose(path[-1], [10.0, -5.0])
    np.testing.assert_allclose(np.diff(path, axis=0), np.tile([0.2, -0.1], (49, 1)), rtol=1e-4)


def test_reset_interpolates_over_fifty_commands_to_the_reset_joints():
    robot = FakeRobot(cameras=(), start_joints=(30, 20, 10, 0, 0, 20))
    env = ResetWrapper(HILSerlRobotEnv(robot), reset_pose=RESET_JOINTS, reset_time_s=0.0,
                       open_gripper_on_reset=True)
    observation, _ = env.reset()
    sent = np.array(robot.sent)
    assert len(sent) >= 50
    steps = np.diff(sent[:50, 0])
    np.testing.assert_allclose(steps, steps[0], atol=1e-3)  # linear
    np.testing.assert_allclose(observation["observation.state"],
                               [*RESET_JOINTS, 100.0], atol=1.0)  # gripper opened


def test_reset_pose_with_a_wrong_length_is_refused():
    with pytest.raises(ValueError, match="motors"):
        ResetWrapper(HILSerlRobotEnv(FakeRobot(cameras=())), reset_pose=(0, 1, 2))


def test_reset_without_a_pose_waits_reset_time_for_a_person(monkeypatch):
    slept = []
    monkeypatch.setattr("hiljax.envs.wrappers.episode.time.sleep", slept.append)
    robot = FakeRobot(cameras=())
    ResetWrapper(HILSerlRobotEnv(robot), reset_pose=None, reset_time_s=3.0).reset()
    assert slept == [3.0] and robot.sent == []


def test_reward_classifier_overrides_and_terminates_on_success():
    env = RewardWrapper(HILSerlRobotEnv(FakeRobot(cameras=())),
                        lambda obs: 0.9 if obs["observation.state"][0] > 5 else 0.1, threshold=0.7)
    env.reset()
    _, reward, terminated, _, info = env.step(_hold(env))
    assert (reward, terminated, info["reward_classifier_probability"]) == (0.0, False, 0.1)
    target = _hold(env)
    target[0] = 10.0
    _, reward, terminated, _, info = env.step(target)
    assert (reward, terminated, info["next.success"]) == (1.0, True, True)


def test_reward_classifier_max_mode_keeps_the_task_reward():
    robot = FakeTaskRobot(cameras=())
    env = RewardWrapper(HILSerlRobotEnv(robot), lambda obs: 0.0, mode="max")
    env.reset(seed=0)
    joints = robot.kinematics.solve_ik(robot.joints.astype(float), robot.cube).joints
    _, reward, terminated, *_ = env.step(joints.astype(np.float32))
    assert (reward, terminated) == (1.0, True)
    with pytest.raises(ValueError, match="mode"):
        RewardWrapper(HILSerlRobotEnv(FakeRobot(cameras=())), lambda obs: 0.0, mode="sum")
