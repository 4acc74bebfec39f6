"""Forward / inverse kinematics of the 5-DoF hobby arms (so100, koch, moss): numpy only.

    arm.py   the arms' screw tables, FK, analytic Jacobians and the joint-limited IK
    ik.py    damped least squares with an active set of joint limits
    se3.py   SE(3) / so(3) helpers (exp, log, adjoint, pose errors)
"""

from .arm import (
    DEFAULT_JOINT_LIMITS_DEG,
    FRAMES,
    JOINT_NAMES,
    REFERENCE_FRAME_OFFSETS,
    ROBOT_LINK_ORIGINS,
    ArmGeometry,
    RobotKinematics,
)
from .ik import IKOptions, IKResult
from .se3 import (
    adjoint,
    invert_transform,
    pose_difference_se3,
    rodrigues_rotation,
    rotation_vector,
    screw_axis_to_transform,
    se3_error,
    skew_symmetric,
)

__all__ = [
    "DEFAULT_JOINT_LIMITS_DEG", "FRAMES", "JOINT_NAMES", "REFERENCE_FRAME_OFFSETS",
    "ROBOT_LINK_ORIGINS", "ArmGeometry", "IKOptions", "IKResult", "RobotKinematics", "adjoint",
    "invert_transform", "pose_difference_se3", "rodrigues_rotation", "rotation_vector",
    "screw_axis_to_transform", "se3_error", "skew_symmetric",
]
