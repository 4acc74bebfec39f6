"""Every wrapper of the reference's gym_manipulator, numpy only (guide: "Environment Wrappers").

make_robot_env (hiljax.envs.factory) stacks them in the reference's order; each can also be
used alone on a HILSerlRobotEnv. The guide's misspelt names are aliases.
"""

from hiljax.envs.wrappers.action import (
    EEActionWrapper,
    GripperActionWrapper,
    GripperPenaltyWrapper,
    JointMaskingActionSpace,
)
from hiljax.envs.wrappers.display import CameraDisplay, display_available
from hiljax.envs.wrappers.episode import (
    ResetWrapper,
    RewardClassifier,
    RewardWrapper,
    TimeLimitWrapper,
    joint_trajectory,
)
from hiljax.envs.wrappers.images import ImageCropResizeWrapper, crop_and_resize
from hiljax.envs.wrappers.intervention import (
    GamepadControlWrapper,
    InterventionWrapper,
    KeyboardControlWrapper,
    KeyboardInterfaceWrapper,
    controller_action,
    make_intervention_wrapper,
)
from hiljax.envs.wrappers.observation import (
    AddCurrentToObservation,
    AddJointVelocityToObservation,
    BatchCompatibleWrapper,
    BatchCompitableWrapper,
    ConvertToLeRobotObservation,
    EEObservationWrapper,
)

# The guide's spelling of GripperPenaltyWrapper.
GripperoPenaltyWrapper = GripperPenaltyWrapper

__all__ = [
    "AddCurrentToObservation",
    "AddJointVelocityToObservation",
    "BatchCompatibleWrapper",
    "BatchCompitableWrapper",
    "CameraDisplay",
    "ConvertToLeRobotObservation",
    "EEActionWrapper",
    "EEObservationWrapper",
    "GamepadControlWrapper",
    "GripperActionWrapper",
    "GripperPenaltyWrapper",
    "GripperoPenaltyWrapper",
    "ImageCropResizeWrapper",
    "InterventionWrapper",
    "JointMaskingActionSpace",
    "KeyboardControlWrapper",
    "KeyboardInterfaceWrapper",
    "ResetWrapper",
    "RewardClassifier",
    "RewardWrapper",
    "TimeLimitWrapper",
    "controller_action",
    "crop_and_resize",
    "display_available",
    "joint_trajectory",
    "make_intervention_wrapper",
]
