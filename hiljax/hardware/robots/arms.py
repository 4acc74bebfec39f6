"""The arms LeRobot's HIL-SERL users own, as data: motors (LeRobot's names, ids, models), the bus,
where the calibration file lives, and how each arm is configured on connect.

    SO-100 / SO-101 / Moss  six Feetech STS3215 (ids 1-6); SO-100 and SO-101 differ only in
                            hardware, Moss is the SO-100 layout (older LeRobot's `moss`)
    Koch                    Dynamixel: follower XL430-W250 (1-2) + XL330-M288 (3-6),
                            leader six XL330-M077

Calibration files use LeRobot 0.4's device names (so_follower / so_leader / koch_follower /
koch_leader), so a person's existing LeRobot calibration is found where LeRobot keeps it; a file
under an older release's name (so100_follower, so101_leader, ...) is read when the current one is
absent (hiljax.hardware.motors.calibration.find_calibration_file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hiljax.hardware.motors.bus import Motor, MotorsBus
from hiljax.hardware.motors.calibration import NormMode

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER = "gripper"
MOTOR_NAMES = (*JOINTS, GRIPPER)


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """One kind of arm, follower or leader."""

    name: str  # LeRobot's device type, e.g. "so101_follower"
    bus: str  # "feetech" | "dynamixel"
    models: tuple[str, ...]  # per motor of MOTOR_NAMES (ids are 1..6 in that order)
    device_name: str  # LeRobot's calibration directory name
    calibration_kind: str  # "robots" (followers) | "teleoperators" (leaders)
    is_leader: bool
    kinematics: str  # the arm table of hiljax.kinematics
    # Motors whose range LeRobot forces to a full turn during calibration.
    full_turn_motors: tuple[str, ...] = ("wrist_roll",)
    # Body joints stay in [-100, 100] whatever use_degrees says (LeRobot's Koch leader).
    body_always_range: bool = False
    # Directory names older LeRobot releases used for this arm's calibration (read, not written).
    legacy_device_names: tuple[str, ...] = ()

    def motors(self, use_degrees: bool = True) -> dict[str, Motor]:
        body = (NormMode.DEGREES if use_degrees and not self.body_always_range
                else NormMode.RANGE_M100_100)
        return {name: Motor(index + 1, model,
                            NormMode.RANGE_0_100 if name == GRIPPER else body)
                for index, (name, model) in enumerate(zip(MOTOR_NAMES, self.models))}

    def make_bus(self, port: str, calibration=None, use_degrees: bool = True) -> MotorsBus:
        if self.bus == "feetech":
            from hiljax.hardware.motors.feetech import FeetechMotorsBus as bus_class
        else:
            from hiljax.hardware.motors.dynamixel import DynamixelMotorsBus as bus_class
        return bus_class(port, self.motors(use_degrees), calibration=calibration)


_STS = ("sts3215",) * 6
_SO = {"bus": "feetech", "models": _STS, "kinematics": "so100"}
_KOCH = {"bus": "dynamixel", "full_turn_motors": ("shoulder_pan", "wrist_roll"),
         "kinematics": "koch"}

ARMS: dict[str, ArmSpec] = {spec.name: spec for spec in (
    ArmSpec("so100_follower", device_name="so_follower", calibration_kind="robots",
            is_leader=False, legacy_device_names=("so100_follower",), **_SO),
    ArmSpec("so101_follower", device_name="so_follower", calibration_kind="robots",
            is_leader=False, legacy_device_names=("so101_follower",), **_SO),
    ArmSpec("moss_follower", device_name="so_follower", calibration_kind="robots",
            is_leader=False, bus="feetech", models=_STS, kinematics="moss"),
    ArmSpec("so100_leader", device_name="so_leader", calibration_kind="teleoperators",
            is_leader=True, legacy_device_names=("so100_leader",), **_SO),
    ArmSpec("so101_leader", device_name="so_leader", calibration_kind="teleoperators",
            is_leader=True, legacy_device_names=("so101_leader",), **_SO),
    ArmSpec("koch_follower", device_name="koch_follower", calibration_kind="robots",
            is_leader=False, models=("xl430-w250",) * 2 + ("xl330-m288",) * 4, **_KOCH),
    ArmSpec("koch_leader", device_name="koch_leader", calibration_kind="teleoperators",
            is_leader=True, models=("xl330-m077",) * 6, body_always_range=True, **_KOCH),
)}


# ---------------------------------------------------------------------------------------------
# What each arm writes on connect (LeRobot's configure(); hardware_facts §1.5).


def configure_so_follower(bus: MotorsBus) -> None:
    """Position mode, softer PID than the factory's, a gripper that cannot crush itself; the
    follower ends stiff (torque back on)."""
    with bus.torque_disabled():
        bus.configure_motors()
        for motor in bus.motors:
            bus.write("Operating_Mode", motor, 0, normalize=False)
            bus.write("P_Coefficient", motor, 16, normalize=False)
            bus.write("I_Coefficient", motor, 0, normalize=False)
            bus.write("D_Coefficient", motor, 32, normalize=False)
        bus.write("Max_Torque_Limit", GRIPPER, 500, normalize=False)
        bus.write("Protection_Current", GRIPPER, 250, normalize=False)
        bus.write("Overload_Torque", GRIPPER, 25, normalize=False)


def configure_so_leader(bus: MotorsBus) -> None:
    """Limp: a person moves it."""
    bus.disable_torque()
    bus.configure_motors()
    for motor in bus.motors:
        bus.write("Operating_Mode", motor, 0, normalize=False)


def configure_koch_follower(bus: MotorsBus) -> None:
    """Extended position mode (limits are software's), current-based position for the gripper,
    stiffer elbow (LeRobot's gains)."""
    with bus.torque_disabled():
        bus.configure_motors()
        for motor in JOINTS:
            bus.write("Operating_Mode", motor, 4, normalize=False)
        bus.write("Operating_Mode", GRIPPER, 5, normalize=False)
        for gain, value in (("Position_P_Gain", 1500), ("Position_I_Gain", 0),
                            ("Position_D_Gain", 600)):
            bus.write(gain, "elbow_flex", value, normalize=False)


def configure_koch_leader(bus: MotorsBus, gripper_open_pos: float = 50.0) -> None:
    """Limp, except the gripper: torque on and held half open, a spring-back trigger."""
    bus.disable_torque()
    bus.configure_motors()
    for motor in JOINTS:
        bus.write("Operating_Mode", motor, 4, normalize=False)
    bus.write("Operating_Mode", GRIPPER, 5, normalize=False)
    bus.enable_torque([GRIPPER])
    if GRIPPER in bus.calibration:
        bus.write("Goal_Position", GRIPPER, gripper_open_pos)


CONFIGURE: dict[str, Callable[[MotorsBus], None]] = {
    "so100_follower": configure_so_follower, "so101_follower": configure_so_follower,
    "moss_follower": configure_so_follower, "so100_leader": configure_so_leader,
    "so101_leader": configure_so_leader, "koch_follower": configure_koch_follower,
    "koch_leader": configure_koch_leader,
}
