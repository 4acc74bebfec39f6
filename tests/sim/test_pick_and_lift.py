"""A scripted joint-space pick (IK above the cube, descend, close, lift) succeeds."""

import numpy as np

from hiljax.envs.sim import DEFAULT_LIFT_HEIGHT, HOME_JOINT_POSITIONS, CubeSpawn, SimRobot
from hiljax.envs.sim.scripted_pick import pick_and_lift_targets, run_pick_and_lift
from hiljax.kinematics import RobotKinematics


def test_scripted_pick_and_lift_succeeds_across_cube_placements(state_robot):
    rng = np.random.default_rng(2024)
    for _ in range(5):
        state_robot.set_joint_positions(HOME_JOINT_POSITIONS)
        state_robot.reset_scene(rng)
        start = state_robot.environment_state()
        successes = []
        for targets in pick_and_lift_targets(state_robot):
            state_robot.send_joint_targets(targets)
            successes.append(state_robot.task_success())
        assert not successes[0]
        assert successes[-1], f"cube from {start} ended at {state_robot.environment_state()}"
        assert state_robot.cube_lift() >= DEFAULT_LIFT_HEIGHT
        # Lifted straight up: the grasp did not drag or drop the cube sideways.
        np.testing.assert_allclose(state_robot.environment_state()[:2], start[:2], atol=0.015)


def test_releasing_the_cube_ends_success(state_robot):
    state_robot.set_joint_positions(HOME_JOINT_POSITIONS)
    state_robot.reset_scene(np.random.default_rng(5))
    for targets in pick_and_lift_targets(state_robot):
        state_robot.send_joint_targets(targets)
    assert state_robot.task_success()
    opened = state_robot.read_joint_positions()
    opened[-1] = 100.0
    for _ in range(5):
        state_robot.send_joint_targets(opened)
    assert not state_robot.task_success()
    assert state_robot.cube_lift() < 0.005  # dropped back onto the table


def test_every_corner_of_the_spawn_region_can_be_picked(state_robot):
    """The cube's start region is inside what the arm can grasp and lift pointing down."""
    spawn = state_robot.cube_spawn
    try:
        for x in spawn.x_range:
            for y in spawn.y_range:
                state_robot.cube_spawn = CubeSpawn(x_range=(x, x), y_range=(y, y))
                state_robot.set_joint_positions(HOME_JOINT_POSITIONS)
                state_robot.reset_scene(np.random.default_rng(0))
                assert run_pick_and_lift(state_robot), f"cube at {(x, y)} not picked"
    finally:
        state_robot.cube_spawn = spawn


def test_grasp_holds_through_end_effector_moves(state_robot):
    """After lifting, 2.5 cm EE steps in random directions (the sim's EE step size) for 3 s
    of sim time: the cube stays in the gripper."""
    kinematics = RobotKinematics("so100")
    rng = np.random.default_rng(11)
    state_robot.set_joint_positions(HOME_JOINT_POSITIONS)
    state_robot.reset_scene(rng)
    assert run_pick_and_lift(state_robot)
    joints = state_robot.read_joint_positions().astype(np.float64)
    joints[-1] = 0.0
    for _ in range(30):
        tip = kinematics.fk_gripper_tip(joints[:5])[:3, 3]
        goal = np.clip(tip + rng.uniform(-0.025, 0.025, 3), [0.12, -0.15, 0.06],
                       [0.26, 0.15, 0.12])
        joints[:5] = kinematics.solve_ik(joints[:5], goal).joints
        state_robot.send_joint_targets(joints)
    assert state_robot.cube_grasped()
    assert state_robot.cube_lift() > 0.03


def test_coarser_physics_step_still_picks():
    """physics_dt=0.004 (a speed option): contacts stay stable, the pick still succeeds."""
    robot = SimRobot(render=False, physics_dt=0.004, seed=4)
    assert robot.substeps == 25
    assert run_pick_and_lift(robot)
