"""EE action, gripper action / penalty and joint masking, on the fake robot."""

import numpy as np
import pytest

from hiljax.envs.configs import EEActionSpaceConfig
from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.fake_robot import FakeRobot
from hiljax.envs.wrappers import (
    EEActionWrapper,
    GripperActionWrapper,
    GripperoPenaltyWrapper,
    GripperPenaltyWrapper,
    JointMaskingActionSpace,
)
from hiljax.kinematics import RobotKinematics
from tests.envs.helpers import BOUNDS, RESET_JOINTS

KINEMATICS = RobotKinematics("so100")
PARAMS = EEActionSpaceConfig(x_step_size=0.02, y_step_size=0.01, z_step_size=0.015, bounds=BOUNDS)


def _robot():
    return FakeRobot(cameras=(), start_joints=(*RESET_JOINTS, 100.0))


def _tip(robot):
    return KINEMATICS.fk_gripper_tip(robot.joints.astype(float))[:3, 3]


def _ee_env(use_gripper=True, **gripper_kwargs):
    robot = _robot()
    env = HILSerlRobotEnv(robot)
    if use_gripper:
        env = GripperActionWrapper(env, **gripper_kwargs)
    return robot, EEActionWrapper(env, PARAMS, use_gripper=use_gripper)


def test_ee_action_space_is_normalised_deltas_plus_gripper():
    _, env = _ee_env()
    np.testing.assert_array_equal(env.action_space.low, [-1, -1, -1, 0])
    np.testing.assert_array_equal(env.action_space.high, [1, 1, 1, 2])
    assert _ee_env(use_gripper=False)[1].action_space.shape == (3,)


@pytest.mark.parametrize("action", [(1, 0, 0), (0, -1, 0), (0, 0, 1), (0.5, 0.5, -0.5)])
def test_ee_delta_moves_the_tip_by_action_times_step_sizes(action):
    robot, env = _ee_env(use_gripper=False)
    env.reset()
    before = _tip(robot)
    env.step(np.array(action, np.float32))
    expected = np.array(action) * [0.02, 0.01, 0.015]
    np.testing.assert_allclose(_tip(robot) - before, expected, atol=1e-3)  # servo lag < 1 %


def test_workspace_bounds_hold_under_repeated_pushes():
    robot, env = _ee_env(use_gripper=False)
    env.reset()
    for action in ([1, 1, 1], [-1, -1, -1]):
        for _ in range(25):
            env.step(np.array(action, np.float32))
        tip = _tip(robot)
        assert np.all(tip >= np.array(BOUNDS["min"]) - 2e-3)
        assert np.all(tip <= np.array(BOUNDS["max"]) + 2e-3)
        corner = BOUNDS["max"] if action[0] > 0 else BOUNDS["min"]
        np.testing.assert_allclose(env.last_target_position, corner)


def test_gripper_commands_close_open_and_stay_keeps_the_last_target():
    robot, env = _ee_env(quantization_threshold=0.8)
    env.reset()
    env.step(np.array([0, 0, 0, 0.0], np.float32))  # close
    assert robot.targets[-1] == 0.0
    env.step(np.array([0, 0, 0, 1.5], np.float32))  # 0.5 < threshold: stay
    assert robot.targets[-1] == 0.0
    robot.joints[-1] = 30.0  # a cube blocks the jaw: stay must not relax the grip
    env.step(np.array([0, 0, 0, 1.0], np.float32))
    assert robot.targets[-1] == 0.0
    env.step(np.array([0, 0, 0, 2.0], np.float32))  # open
    assert robot.targets[-1] == 100.0


def test_quantisation_threshold():
    wrapper = GripperActionWrapper(HILSerlRobotEnv(_robot()), quantization_threshold=0.2)
    assert [wrapper.quantize(c) for c in (0.0, 0.7, 1.1, 1.3, 2.0)] == [-1.0, -1.0, 0.0, 1.0, 1.0]
    continuous = GripperActionWrapper(HILSerlRobotEnv(_robot()), quantization_threshold=None)
    assert continuous.quantize(1.5) == pytest.approx(0.5)


@pytest.mark.parametrize("position, command, penalised", [
    (5.0, 0, True),     # close an already closed gripper
    (90.0, 2, True),    # open an already open one
    (90.0, 0, False),   # close an open one: useful
    (5.0, 2, False),    # open a closed one: useful
    (50.0, 1, False),   # stay is never penalised
])
def test_gripper_penalty(position, command, penalised):
    robot = _robot()
    robot.joints[-1] = position
    env = GripperPenaltyWrapper(GripperActionWrapper(HILSerlRobotEnv(robot)), penalty=-0.05)
    env.reset()
    robot.joints[-1] = position
    action = np.append(robot.joints[:5], command).astype(np.float32)
    *_, info = env.step(action)
    assert info["discrete_penalty"] == (-0.05 if penalised else 0.0)
    assert GripperoPenaltyWrapper is GripperPenaltyWrapper


def test_gripper_penalty_in_reward():
    robot = _robot()
    env = GripperPenaltyWrapper(GripperActionWrapper(HILSerlRobotEnv(robot)), penalty=-0.05,
                                gripper_penalty_in_reward=True)
    env.reset()
    _, reward, *_, info = env.step(np.append(robot.joints[:5], 2.0).astype(np.float32))
    assert reward == pytest.approx(-0.05) and "discrete_penalty" not in info


def test_joint_masking_fills_the_middle_and_cuts_the_stored_human_action():
    robot, env = _ee_env()
    masked = JointMaskingActionSpace(env, [True, True, False, False])  # no z, no gripper
    assert masked.action_space.shape == (2,)
    np.testing.assert_array_equal(masked.action(np.array([0.5, -1.0])), [0.5, -1.0, 0.0, 1.0])
    masked.reset()
    before = _tip(robot)
    masked.step(np.array([1.0, 0.0], np.float32))
    assert abs(_tip(robot)[2] - before[2]) < 1e-3 and robot.targets[-1] == 100.0  # gripper stays
    with pytest.raises(ValueError, match="entries"):
        JointMaskingActionSpace(env, [True])
