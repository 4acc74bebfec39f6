"""The running box of a workspace sweep (python -m hiljax.find_ee_bounds): min / max of the
tip and of every joint, turned into the bounds and joint limits a config takes. numpy only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DECIMALS = 4  # 0.1 mm: rounded outwards, so the written box still holds every visited point
# A box thinner than this along an axis is a mistake (an arm left still, a joint not moved),
# not a workspace: the EE actions step 1-2 cm.
MIN_EXTENT_M = 0.005
AXES = ("x", "y", "z")
JOINT_DECIMALS = 1  # 0.1 degree (gripper: percent), rounded outwards
# A joint that moved less than this (degrees; gripper percent) was not explored: its seen range
# is no limit (it would lock the joint) and the config's limit for it stays.
MIN_JOINT_RANGE = 1.0
GRIPPER = "gripper"
GRIPPER_RANGE = (0.0, 100.0)


class WorkspaceTracker:
    """Running min / max of the tip position (metres) and of every joint (degrees)."""

    def __init__(self, motor_names: Sequence[str]):
        self.motor_names = tuple(motor_names)
        self.samples = 0
        self.interrupted = False  # stopped by Ctrl-C: shown, never written
        self.tip = self.tip_min = self.tip_max = np.full(3, np.nan)
        self.joints = self.joints_min = self.joints_max = np.full(len(motor_names), np.nan)

    def add(self, joints: np.ndarray, tip: np.ndarray) -> None:
        self.joints, self.tip = np.asarray(joints, np.float64), np.asarray(tip, np.float64)
        first = self.samples == 0
        self.tip_min = self.tip if first else np.minimum(self.tip_min, self.tip)
        self.tip_max = self.tip if first else np.maximum(self.tip_max, self.tip)
        self.joints_min = self.joints if first else np.minimum(self.joints_min, self.joints)
        self.joints_max = self.joints if first else np.maximum(self.joints_max, self.joints)
        self.samples += 1

    def rows(self) -> list[tuple]:
        tip = [(f"{a} (m)", float(c), float(lo), float(hi)) for a, c, lo, hi in
               zip(AXES, self.tip, self.tip_min, self.tip_max)]
        joints = [(f"{name} ({joint_unit(name)})", *(f"{v:.1f}" for v in (c, lo, hi)))
                  for name, c, lo, hi in zip(self.motor_names, self.joints, self.joints_min,
                                             self.joints_max)]
        return tip + joints

    def bounds(self, margin: float) -> dict[str, list[float]]:
        """The box of the visited tip positions widened by `margin` metres, rounded outwards."""
        scale = 10.0 ** DECIMALS
        low = np.floor((self.tip_min - margin) * scale) / scale
        high = np.ceil((self.tip_max + margin) * scale) / scale
        flat = [axis for axis, lo, hi in zip(AXES, low, high) if not hi - lo >= MIN_EXTENT_M]
        if flat:
            raise ValueError(f"the box is thinner than {MIN_EXTENT_M * 1000:g} mm along "
                             f"{', '.join(flat)}: move the arm over the whole workspace, or "
                             "widen the box with --margin")
        return {"min": [round(float(v), DECIMALS) for v in low],
                "max": [round(float(v), DECIMALS) for v in high]}

    def joint_limits(self, margin: float) -> tuple[dict[str, list[float]], list[str]]:
        """{motor: [min, max]} of the seen joint ranges widened by `margin` (degrees; the
        gripper's percent, kept in 0..100), rounded outwards; and the joints that moved less
        than MIN_JOINT_RANGE, left out."""
        scale = 10.0 ** JOINT_DECIMALS
        limits, still = {}, []
        for name, lo, hi in zip(self.motor_names, self.joints_min, self.joints_max):
            if not hi - lo >= MIN_JOINT_RANGE:
                still.append(name)
                continue
            low = float(np.floor((lo - margin) * scale) / scale)
            high = float(np.ceil((hi + margin) * scale) / scale)
            if name == GRIPPER:
                low, high = max(low, GRIPPER_RANGE[0]), min(high, GRIPPER_RANGE[1])
            limits[name] = [round(low, JOINT_DECIMALS), round(high, JOINT_DECIMALS)]
        return limits, still


def joint_unit(name: str) -> str:
    return "%" if name == GRIPPER else "deg"  # the gripper reads 0 (closed) .. 100 (open)
