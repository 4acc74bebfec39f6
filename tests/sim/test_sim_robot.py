"""SimRobot behind the Robot / SimulatedTask protocols: control, gripper, scene resets."""

import numpy as np
import pytest

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN, Robot, SimulatedTask
from hiljax.envs.sim import CUBE_HALF_SIZE, HOME_JOINT_POSITIONS, SimRobot
from hiljax.envs.sim.scripted_pick import GRASP_OFFSET, joints_for
from hiljax.kinematics import RobotKinematics

KINEMATICS = RobotKinematics("so100")


@pytest.fixture
def robot(state_robot):
    state_robot.reset_scene(np.random.default_rng(0))
    state_robot.set_joint_positions(HOME_JOINT_POSITIONS)
    return state_robot


def test_implements_the_protocols(robot):
    assert isinstance(robot, Robot) and isinstance(robot, SimulatedTask)
    assert robot.motor_names[-1] == "gripper" and len(robot.motor_names) == 6
    assert robot.camera_names == ()
    robot.connect()
    assert robot.is_connected
    robot.disconnect()
    assert not robot.is_connected


def test_reads_have_the_protocol_shapes_and_units(robot):
    joints = robot.read_joint_positions()
    assert joints.shape == (6,) and joints.dtype == np.float32
    np.testing.assert_allclose(joints, HOME_JOINT_POSITIONS, atol=1e-3)
    currents = robot.read_joint_currents()
    assert currents.shape == (6,) and currents.dtype == np.float32
    state = robot.environment_state()
    assert state.shape == (3,) and state.dtype == np.float32
    assert state[2] == pytest.approx(CUBE_HALF_SIZE, abs=1e-6)
    assert robot.read_cameras() == {}


def test_tracks_joint_targets_within_a_control_period(robot):
    targets = HOME_JOINT_POSITIONS + np.array([10, 8, -8, 5, 20, -50], dtype=np.float32)
    sent = robot.send_joint_targets(targets)
    np.testing.assert_allclose(sent, targets, atol=1e-4)
    np.testing.assert_allclose(robot.read_joint_positions(), targets, atol=3.0)
    assert robot.sim_time == pytest.approx(0.1)


def test_large_moves_settle_within_two_control_periods(robot):
    targets = HOME_JOINT_POSITIONS + np.array([-30, 15, -20, -25, 60, 0], dtype=np.float32)
    for _ in range(2):
        robot.send_joint_targets(targets)
    np.testing.assert_allclose(robot.read_joint_positions(), targets, atol=2.0)


def test_targets_are_clipped_to_joint_limits_and_gripper_range(robot):
    sent = robot.send_joint_targets(np.array([500, -500, 0, 0, 0, 150], dtype=np.float32))
    low, high = KINEMATICS.joint_limits_deg.T
    np.testing.assert_allclose(sent[:2], [high[0], low[1]])
    assert sent[-1] == GRIPPER_OPEN
    with pytest.raises(ValueError, match="6 finite values"):
        robot.send_joint_targets(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        robot.send_joint_targets(np.full(6, np.nan))


def test_set_joint_positions_teleports_and_holds(robot):
    pose = np.array([20, 100, 70, 20, -30, 40], dtype=np.float32)  # up in free air
    robot.set_joint_positions(pose)
    np.testing.assert_allclose(robot.gripper_tip_position(),
                               KINEMATICS.fk_gripper_tip(pose)[:3, 3], atol=1e-6)
    robot.send_joint_targets(pose)
    np.testing.assert_allclose(robot.read_joint_positions(), pose, atol=0.5)


def test_reset_scene_is_reproducible_and_random(robot):
    cubes = []
    for seed in (7, 7, 8):
        robot.reset_scene(np.random.default_rng(seed))
        cubes.append(robot.environment_state())
    np.testing.assert_array_equal(cubes[0], cubes[1])
    assert np.linalg.norm(cubes[0] - cubes[2]) > 1e-3
    spawn = robot.cube_spawn
    for seed in range(20):
        robot.reset_scene(np.random.default_rng(seed))
        x, y, _ = robot.environment_state()
        assert spawn.x_range[0] <= x <= spawn.x_range[1]
        assert spawn.y_range[0] <= y <= spawn.y_range[1]
        assert not robot.task_success()


def test_gripper_closes_on_the_cube(robot):
    cube = robot.environment_state().astype(np.float64)
    arm = joints_for(KINEMATICS, HOME_JOINT_POSITIONS, cube + [0, 0, GRASP_OFFSET])
    robot.set_joint_positions(np.append(arm, GRIPPER_OPEN))
    for _ in range(5):
        robot.send_joint_targets(np.append(arm, GRIPPER_CLOSED))
    assert robot.cube_grasped()
    # The fingers stop at the cube (2.5 cm of a 6 cm opening), not closed, and squeeze it.
    opening = robot.read_joint_positions()[-1]
    assert 30.0 < opening < 45.0
    assert robot.read_joint_currents()[-1] < -1.0  # closing force, newtons per finger
    assert robot.cube_lift() == pytest.approx(0.0, abs=2e-3)  # held, not lifted: no success
    assert not robot.task_success()


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="physics_dt"):
        SimRobot(render=False, control_dt=0.001, physics_dt=0.002)
    with pytest.raises(ValueError, match="5 or 6"):
        SimRobot(render=False).set_joint_positions(np.zeros(3))
