"""Real arms (followers and leaders) on servo buses, as hiljax `Robot`s."""

from .arms import ARMS, MOTOR_NAMES, ArmSpec
from .servo_arm import ServoArm, ServoArmConfig

__all__ = ["ARMS", "MOTOR_NAMES", "ArmSpec", "ServoArm", "ServoArmConfig"]
