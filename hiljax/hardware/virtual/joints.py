"""How each virtual servo is mounted: joint units <-> encoder ticks, and the calibration that
makes LeRobot's normalisation read the joint exactly.

Every servo has a fixed "factory" mounting offset: at the joint's zero the encoder does not read
the middle of its turn. The calibration of a joint is the one LeRobot's procedure would find on
a perfect run, so that with it

    DEGREES      deg = (raw - mid) * 360 / 4095,  mid = (range_min + range_max) / 2
    RANGE_0_100  n   = (raw - range_min) / (range_max - range_min) * 100

gives the joint's value (sim degrees; gripper 0 closed .. 100 open) to within one tick:

- A DEGREES joint has 0 deg at `mid`, so its range must be symmetric about the joint's zero:
  +-max(|low|, |high|) of the joint's limits, centred on tick 2047. Where that exceeds a turn
  (shoulder_lift's -20..190 deg) or the joint rolls freely (wrist_roll), the range is LeRobot's
  full 0..4095 (mid 2047.5), and readings past +-180 deg wrap (single-turn encoder, #3586).
  The servo's soft limits are thus at least as wide as the joint's mechanical range, which the
  physics still enforces.
- Degrees map to ticks with LeRobot's 4095/360 rather than the encoder's 4096/360 (a 0.02 %
  gear error the virtual arm takes on so that readings are exact, not 0.5 tick off at +-180).
- Homing_Offset = the mounting offset, so Present = Actual - offset puts the joint's zero at mid.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hiljax.hardware.motors.calibration import MotorCalibration, NormMode
from hiljax.hardware.virtual.registers import MAX_TICK

TICKS_PER_DEGREE = 4095 / 360  # LeRobot's max_res / 360
MIDDLE_TICK = 2047  # where LeRobot's homing puts the middle pose (p - 2047)
MAX_HOMING_OFFSET = 2047  # sign-magnitude, sign bit 11


@dataclasses.dataclass(frozen=True)
class JointSpec:
    """One servo of an arm: its bus id, its mechanical range in joint units and its mounting."""

    name: str
    motor_id: int
    low: float  # mechanical range, joint units (degrees, or gripper 0..100)
    high: float
    mode: NormMode  # DEGREES for arm joints, RANGE_0_100 for the gripper
    mounting_offset: int  # the Homing_Offset a perfect calibration finds (ticks)
    full_turn: bool = False  # LeRobot forces 0..4095 (wrist_roll)
    gripper_span: int = 1400  # RANGE_0_100: ticks from closed to open

    def __post_init__(self):
        if abs(self.mounting_offset) > MAX_HOMING_OFFSET:
            raise ValueError(f"{self.name}: mounting offset {self.mounting_offset} exceeds "
                             f"+-{MAX_HOMING_OFFSET} (Homing_Offset is 11-bit sign-magnitude)")
        if not self.low < self.high:
            raise ValueError(f"{self.name}: need low < high, got {self.low}, {self.high}")

    def range_ticks(self) -> tuple[int, int]:
        """(range_min, range_max): the calibrated Min/Max_Position_Limit (raw, present frame)."""
        if self.mode == NormMode.RANGE_0_100:
            start = MIDDLE_TICK - self.gripper_span // 2
            return start, start + self.gripper_span
        half = math.ceil(max(abs(self.low), abs(self.high)) * TICKS_PER_DEGREE)
        if self.full_turn or half > MIDDLE_TICK:
            return 0, MAX_TICK
        return MIDDLE_TICK - half, MIDDLE_TICK + half

    def calibration(self) -> MotorCalibration:
        low, high = self.range_ticks()
        return MotorCalibration(id=self.motor_id, drive_mode=0,
                                homing_offset=self.mounting_offset, range_min=low,
                                range_max=high)

    @property
    def ticks_per_unit(self) -> float:
        if self.mode == NormMode.RANGE_0_100:
            low, high = self.range_ticks()
            return (high - low) / 100.0
        return TICKS_PER_DEGREE

    @property
    def zero_tick(self) -> float:
        """Encoder tick (Actual, unwrapped) at joint value 0."""
        low, high = self.range_ticks()
        anchor = low if self.mode == NormMode.RANGE_0_100 else (low + high) / 2
        return anchor + self.mounting_offset

    def to_ticks(self, value):
        """Joint units -> actual encoder ticks (float, not wrapped)."""
        return self.zero_tick + np.asarray(value, dtype=np.float64) * self.ticks_per_unit

    def to_units(self, ticks):
        return (np.asarray(ticks, dtype=np.float64) - self.zero_tick) / self.ticks_per_unit

    def tick_limits(self) -> tuple[float, float]:
        """The mechanical stops in actual ticks."""
        return float(self.to_ticks(self.low)), float(self.to_ticks(self.high))
