"""VirtualSO100: six virtual STS3215 servos of an SO-100 arm behind a pseudo-terminal.

    arm = VirtualSO100(calibrated=True)            # first-order physics, joints at 0
    port = arm.start()                             # e.g. /dev/pts/7: open it like a serial port
    arm.move_by_hand("elbow_flex", 30.0)           # degrees (gripper: 0 closed .. 100 open)
    arm.register("elbow_flex", "Present_Position")
    arm.calibration()                              # LeRobot's calibration dict for this arm
    arm.stop()

Motors and ids are LeRobot's so100 follower: shoulder_pan 1, shoulder_lift 2, elbow_flex 3,
wrist_flex 4, wrist_roll 5, gripper 6. Joint units are the MuJoCo so100's (degrees; gripper
0..100), and `joints.py` says how they map to ticks. `calibrated=True` starts with EEPROMs
holding exactly `calibration()`; otherwise at factory values (offset 0, limits 0..4095), where
LeRobot's calibration procedure would find `calibration()` (with a perfect operator).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Self

import numpy as np

from hiljax.hardware.motors.calibration import MotorCalibration, NormMode, save_calibration
from hiljax.hardware.virtual.bus import VirtualBus
from hiljax.hardware.virtual.faults import Faults
from hiljax.hardware.virtual.joints import JointSpec
from hiljax.hardware.virtual.physics import FirstOrderPhysics, ServoPhysics
from hiljax.hardware.virtual.pty_port import PtyServer
from hiljax.hardware.virtual.servo import VirtualServo
from hiljax.kinematics import DEFAULT_JOINT_LIMITS_DEG


def so100_joints() -> tuple[JointSpec, ...]:
    """The so100's six servos, each with its own mounting offset (some negative, so the
    sign-magnitude Homing_Offset is exercised)."""
    offsets = {"shoulder_pan": 600, "shoulder_lift": -900, "elbow_flex": 1200,
               "wrist_flex": -400, "wrist_roll": 1500}
    arm = tuple(
        JointSpec(name, motor_id, *DEFAULT_JOINT_LIMITS_DEG[name], NormMode.DEGREES,
                  offsets[name], full_turn=name == "wrist_roll")
        for motor_id, name in enumerate(offsets, start=1))
    gripper = JointSpec("gripper", 6, 0.0, 100.0, NormMode.RANGE_0_100, -1100)
    return (*arm, gripper)


ARM_TYPES = ("so100", "so101", "moss")  # the same six-servo Feetech layout


class VirtualSO100:
    def __init__(self, physics: ServoPhysics | str = "none", calibrated: bool = False,
                 faults: Faults | str | None = None, link: str | os.PathLike | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 pose: Sequence[float] | None = None):
        """physics: "none" (first-order servos), or any `ServoPhysics` over `so100_joints()`
        (e.g. `hiljax.envs.sim.servo_arm.MujocoServoPhysics`). pose: start pose in joint
        units for "none" (default: all zeros). clock: seconds, monotonic (tests may pass a
        hand-driven one)."""
        self.joints = so100_joints()
        self.motor_names = tuple(spec.name for spec in self.joints)
        if isinstance(physics, str):
            if physics != "none":
                raise ValueError(f"physics {physics!r}: pass 'none' or a ServoPhysics object")
            physics = FirstOrderPhysics(self.joints, pose=pose)
        self.physics = physics
        servos = [VirtualServo(spec.motor_id, physics, joint,
                               eeprom=self._eeprom(spec) if calibrated else None)
                  for joint, spec in enumerate(self.joints)]
        self.bus = VirtualBus(servos, physics, faults=faults, clock=clock)
        self._pty = PtyServer(self.bus.feed, link=link)

    @staticmethod
    def _eeprom(spec: JointSpec) -> dict[str, int]:
        record = spec.calibration()
        return {"Homing_Offset": record.homing_offset, "Min_Position_Limit": record.range_min,
                "Max_Position_Limit": record.range_max}

    # ----------------------------------------------------------------------- port

    def start(self) -> str:
        """Open the pty and serve it; returns the port to open (the link if one was given)."""
        with self.bus.lock:
            self.bus.sync()  # physics' clock starts now
        return self._pty.start()

    def stop(self) -> None:
        self._pty.stop()

    @property
    def port(self) -> str:
        return self._pty.port

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------- test API

    def _index(self, motor: str | int) -> int:
        for index, spec in enumerate(self.joints):
            if motor in (spec.name, spec.motor_id):
                return index
        raise KeyError(f"no motor {motor!r}; motors: {self.motor_names} (ids 1..6)")

    def servo(self, motor: str | int) -> VirtualServo:
        return self.bus.servos[self._index(motor)]

    def move_by_hand(self, motor: str | int, value: float | None = None, *,
                     ticks: int | None = None) -> None:
        """Put a joint somewhere by hand: `value` in joint units (degrees, gripper 0..100), or
        `ticks` = the raw Present_Position it should read under its current Homing_Offset.
        Meant for torque off; with torque on the servo pulls the joint back to its goal."""
        if (value is None) == (ticks is None):
            raise ValueError("give either value (joint units) or ticks (raw Present_Position)")
        index = self._index(motor)
        with self.bus.lock:
            self.bus.sync()
            if value is not None:
                target = float(self.joints[index].to_ticks(value))
            else:
                servo = self.bus.servos[index]
                target = self.physics.actual(index) + int(ticks) - servo.present_position()
            self.physics.place(index, target)
            self.bus.sync()

    def joint_positions(self) -> np.ndarray:
        """The physics' truth, joint units in motor order (what a perfect reading gives)."""
        with self.bus.lock:
            self.bus.sync()
            return np.array([spec.to_units(self.physics.actual(i))
                             for i, spec in enumerate(self.joints)])

    def register(self, motor: str | int, name: str) -> int:
        """A register by LeRobot's name, as the servo would report it now (signed decoded)."""
        with self.bus.lock:
            self.bus.sync()
            return self.servo(motor).value(name)

    def power_cycle(self, motor: str | int | None = None) -> None:
        """Unplug and replug (one motor or all): unsaved EEPROM writes are lost."""
        with self.bus.lock:
            self.bus.sync()
            targets = self.bus.servos if motor is None else [self.servo(motor)]
            for servo in targets:
                servo.power_cycle()

    def set_faults(self, faults: Faults | str | None) -> None:
        self.bus.set_faults(faults)

    # ----------------------------------------------------------------------- calibration

    def calibration(self) -> dict[str, MotorCalibration]:
        """LeRobot's calibration of this arm: what `calibrated=True` holds in EEPROM."""
        return {spec.name: spec.calibration() for spec in self.joints}

    def save_calibration(self, path: str | os.PathLike) -> str:
        return str(save_calibration(path, self.calibration()))

    def norm_modes(self) -> dict[str, NormMode]:
        """How LeRobot normalises each motor (use_degrees=True)."""
        return {spec.name: spec.mode for spec in self.joints}
