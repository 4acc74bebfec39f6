"""Servo buses (Feetech STS/SMS protocol 0, Dynamixel protocol 2.0) over pyserial, numpy only,
with LeRobot's register names, calibration files and normalisation."""

from .bus import Motor, MotorsBus, PacketProtocol
from .calibration import (
    CalibrationError,
    MotorCalibration,
    NormMode,
    calibration_path,
    find_calibration_file,
    load_calibration,
    save_calibration,
)
from .errors import (
    ChecksumError,
    HandshakeError,
    MotorBusError,
    MotorStatusError,
    MotorTimeoutError,
    NotConnectedError,
    PortError,
)

__all__ = [
    "CalibrationError", "ChecksumError", "HandshakeError", "Motor", "MotorBusError",
    "MotorCalibration", "MotorStatusError", "MotorTimeoutError", "MotorsBus", "NormMode",
    "NotConnectedError", "PacketProtocol", "PortError", "calibration_path",
    "find_calibration_file", "load_calibration", "save_calibration",
]
