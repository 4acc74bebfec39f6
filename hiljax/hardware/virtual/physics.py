"""What moves behind the virtual servos: the `ServoPhysics` protocol and a first-order model.

Physics works in actual encoder ticks (float, unwrapped: a joint that turns past the encoder's
seam keeps counting; the servo wraps its reading). The servos call `advance(now)` before they
answer, so physics catches up with the clock lazily, on each request, in the thread that serves
the bus: no second thread touches it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from hiljax.hardware.virtual.joints import JointSpec

# STS3215 at 12 V: ~0.22 s per 60 deg with no load -> ~3000 ticks/s.
MAX_SPEED_TICKS_S = 3000.0
TIME_CONSTANT_S = 0.05  # first-order lag of the position loop
EFFORT_SPAN_TICKS = 200.0  # position error at which the servo gives full torque
MAX_STEP_S = 1.0  # longest catch-up in one advance (a paused process does not teleport)


@runtime_checkable
class ServoPhysics(Protocol):
    """The joints behind a bus of position servos (index = joint, in the arm's motor order)."""

    def advance(self, now: float) -> None:
        """Bring the state up to clock time `now` (seconds, monotonic)."""

    def set_goal(self, joint: int, ticks: float) -> None:
        """Target of the position loop, actual encoder ticks."""

    def set_torque(self, joint: int, enabled: bool) -> None:
        """Torque off: the joint is limp and stays where it is put (gear friction)."""

    def place(self, joint: int, ticks: float) -> None:
        """Move a joint by hand to `ticks` (clamped to its mechanical stops). With torque on the
        servo pulls it back toward its goal."""

    def actual(self, joint: int) -> float:
        """Actual encoder ticks (float, unwrapped)."""

    def velocity(self, joint: int) -> float:
        """Ticks per second."""

    def effort(self, joint: int) -> float:
        """Output torque as a signed fraction of the servo's maximum, in [-1, 1]."""


class FirstOrderPhysics:
    """Each joint follows its goal with a first-order lag and a speed limit, inside its
    mechanical stops (`--physics none`). Effort grows with the position error, so a goal held
    beyond a stop reads as a loaded, stalled servo."""

    def __init__(self, joints: Sequence[JointSpec], pose: Sequence[float] | None = None,
                 time_constant_s: float = TIME_CONSTANT_S,
                 max_speed_ticks_s: float = MAX_SPEED_TICKS_S):
        self._stops = np.array([spec.tick_limits() for spec in joints])  # (n, 2)
        pose = np.zeros(len(joints)) if pose is None else np.asarray(pose, dtype=np.float64)
        if pose.shape != (len(joints),):
            raise ValueError(f"pose needs {len(joints)} values (joint units), got {pose.shape}")
        ticks = np.array([spec.to_ticks(value) for spec, value in zip(joints, pose)])
        self._actual = np.clip(ticks, self._stops[:, 0], self._stops[:, 1])
        self._goal = self._actual.copy()
        self._torque = np.zeros(len(joints), dtype=bool)
        self._velocity = np.zeros(len(joints))
        self._time: float | None = None
        self.time_constant_s = time_constant_s
        self.max_speed_ticks_s = max_speed_ticks_s

    def advance(self, now: float) -> None:
        if self._time is None or now <= self._time:
            self._time = now if self._time is None else self._time
            return
        dt = min(now - self._time, MAX_STEP_S)
        self._time = now
        error = self._goal - self._actual
        step = error * (1.0 - math.exp(-dt / self.time_constant_s))
        step = np.clip(step, -self.max_speed_ticks_s * dt, self.max_speed_ticks_s * dt)
        step = np.where(self._torque, step, 0.0)
        moved = np.clip(self._actual + step, self._stops[:, 0], self._stops[:, 1])
        self._velocity = (moved - self._actual) / dt
        self._actual = moved

    def set_goal(self, joint: int, ticks: float) -> None:
        self._goal[joint] = float(ticks)

    def set_torque(self, joint: int, enabled: bool) -> None:
        self._torque[joint] = bool(enabled)
        if not enabled:
            self._velocity[joint] = 0.0

    def place(self, joint: int, ticks: float) -> None:
        self._actual[joint] = float(np.clip(ticks, *self._stops[joint]))
        self._velocity[joint] = 0.0

    def actual(self, joint: int) -> float:
        return float(self._actual[joint])

    def velocity(self, joint: int) -> float:
        return float(self._velocity[joint])

    def effort(self, joint: int) -> float:
        if not self._torque[joint]:
            return 0.0
        error = self._goal[joint] - self._actual[joint]
        return float(np.clip(error / EFFORT_SPAN_TICKS, -1.0, 1.0))
