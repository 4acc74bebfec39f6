"""A scripted joint-space pick-and-lift for the SimRobot: proves the scene is solvable.

Waypoints for the gripper tip (above the cube, at the cube, lifted), each turned into joints by
`RobotKinematics("so100").solve_ik` with the gripper pointing straight down and its fingers
across the cube (the pan turns the arm towards the cube, whose faces face the base).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN
from hiljax.kinematics import RobotKinematics

logger = logging.getLogger(__name__)

APPROACH_HEIGHT = 0.05  # metres of tip above the cube centre before descending
GRASP_OFFSET = 0.002  # tip slightly above the cube centre: pad ends clear the table
LIFT_HEIGHT = 0.06  # tip rise after closing: cube bottom ends ~6 cm above the table


def pointing_down_pose(kinematics: RobotKinematics, position: np.ndarray) -> np.ndarray:
    """(4, 4) tip pose at ``position`` with the gripper pointing down, turned towards it."""
    pan = -np.degrees(np.arctan2(position[1], position[0]))  # the pan axis is -z
    pose = kinematics.fk_gripper_tip([pan, 0.0, 90.0, 0.0, 0.0])  # forearm down, wrist straight
    pose[:3, 3] = position
    return pose


def joints_for(kinematics: RobotKinematics, start: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Arm joints (5,) that put the tip at ``position`` pointing down, solved from ``start``."""
    result = kinematics.solve_ik(start[:5], pointing_down_pose(kinematics, position),
                                 position_only=False)
    if not result.converged:
        logger.debug("IK for %s did not converge (error %.4f m)", position,
                       result.position_error)
    return result.joints


def pick_and_lift_targets(robot, steps_per_move: int = 5,
                          settle_steps: int = 3) -> Iterator[np.ndarray]:
    """Joint targets (6,), one per control step: approach, descend, close, lift.

    ``robot`` is a SimRobot (reads the cube's position from its privileged state). The tip moves
    in straight lines between waypoints over ``steps_per_move`` control steps (IK per step, each
    from the previous solution, so the gripper stays vertical), then holds for ``settle_steps``.
    """
    kinematics = RobotKinematics("so100")
    cube = np.asarray(robot.environment_state(), dtype=np.float64)
    joints = np.asarray(robot.read_joint_positions(), dtype=np.float64)[:5]
    tip = robot.gripper_tip_position()
    plan = [(cube + [0, 0, APPROACH_HEIGHT], GRIPPER_OPEN),
            (cube + [0, 0, GRASP_OFFSET], GRIPPER_OPEN),
            (cube + [0, 0, GRASP_OFFSET], GRIPPER_CLOSED),
            (cube + [0, 0, GRASP_OFFSET + LIFT_HEIGHT], GRIPPER_CLOSED)]
    for goal, gripper in plan:
        for fraction in np.linspace(0.0, 1.0, steps_per_move + 1)[1:]:
            joints = joints_for(kinematics, joints, tip + fraction * (goal - tip))
            yield np.append(joints, gripper)
        for _ in range(settle_steps):
            yield np.append(joints, gripper)
        tip = goal


def run_pick_and_lift(robot, **plan_options) -> bool:
    """Executes the scripted pick on ``robot``; returns ``robot.task_success()`` at the end."""
    for targets in pick_and_lift_targets(robot, **plan_options):
        robot.send_joint_targets(targets)
    return robot.task_success()
