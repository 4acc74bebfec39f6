"""A fake `Robot` for tests and benchmarks: a servo-bus stand-in, no hardware, no simulator.

Joints follow their targets with first-order dynamics (each control step closes the fraction
``1 - exp(-control_dt / time_constant_s)`` of the gap), the way a position servo with a soft
P gain does; targets are clipped to the joint limits first, as a bus driver's safety limits
would. Motor "currents" are proportional to the remaining tracking error. Camera frames are
synthetic (H, W, 3) uint8 images that change with the joints, so image wrappers have something
real to crop. Like a real bus, nothing can be read before `connect()`.

`FakeTaskRobot` adds the `SimulatedTask` extras: a virtual "cube" whose position is the
environment state; the task succeeds when the gripper tip is within `success_radius` of it.
"""

from __future__ import annotations

import numpy as np

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN
from hiljax.kinematics import DEFAULT_JOINT_LIMITS_DEG, JOINT_NAMES, RobotKinematics

DEFAULT_START_JOINTS = (0.0, 45.0, 90.0, 45.0, 0.0, GRIPPER_OPEN)


class FakeRobot:
    """A so100-like arm on a fake servo bus (see the module docstring)."""

    def __init__(
        self,
        cameras: tuple[str, ...] = ("front", "wrist"),
        image_size: tuple[int, int] = (96, 128),  # (height, width) of the synthetic frames
        control_dt: float = 0.1,
        time_constant_s: float = 0.02,  # servo lag; << control_dt means targets are reached
        start_joints: tuple[float, ...] = DEFAULT_START_JOINTS,
        has_currents: bool = True,
        name: str = "fake_so100",
    ):
        self.name = name
        self.motor_names = (*JOINT_NAMES, "gripper")
        self.camera_names = tuple(cameras)
        self.image_size = tuple(image_size)
        self.control_dt = control_dt
        self.time_constant_s = time_constant_s
        self.has_currents = has_currents
        limits = np.array([DEFAULT_JOINT_LIMITS_DEG[j] for j in JOINT_NAMES], dtype=np.float32)
        self.lower = np.append(limits[:, 0], GRIPPER_CLOSED).astype(np.float32)
        self.upper = np.append(limits[:, 1], GRIPPER_OPEN).astype(np.float32)
        self.joints = np.asarray(start_joints, dtype=np.float32).copy()
        self.targets = self.joints.copy()
        self.sent: list[np.ndarray] = []  # every command, for tests to inspect
        self._connected = False
        self._grid = _pixel_grid(self.image_size)

    # --- connection -----------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def _require_connection(self) -> None:
        if not self._connected:
            raise RuntimeError(f"{self.name} is not connected; call connect() first")

    # --- the bus --------------------------------------------------------------------------
    def read_joint_positions(self) -> np.ndarray:
        self._require_connection()
        return self.joints.copy()

    def read_joint_currents(self) -> np.ndarray | None:
        self._require_connection()
        if not self.has_currents:
            return None
        return (10.0 * np.abs(self.targets - self.joints)).astype(np.float32)

    def send_joint_targets(self, targets: np.ndarray) -> np.ndarray:
        self._require_connection()
        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != self.joints.shape or not np.all(np.isfinite(targets)):
            raise ValueError(f"joint targets must be {self.joints.shape} finite, got {targets}")
        self.targets = np.clip(targets, self.lower, self.upper)
        self.sent.append(self.targets.copy())
        gain = 1.0 - np.exp(-self.control_dt / self.time_constant_s)
        self.joints = (self.joints + gain * (self.targets - self.joints)).astype(np.float32)
        return self.targets.copy()

    def read_cameras(self) -> dict[str, np.ndarray]:
        self._require_connection()
        return {name: self._frame(i) for i, name in enumerate(self.camera_names)}

    def _frame(self, camera_index: int) -> np.ndarray:
        """A gradient whose phase follows the joints, so frames differ as the arm moves."""
        rows, cols = self._grid
        phase = float(np.sum(self.joints[:5])) / 90.0 + camera_index
        red = (rows * 255).astype(np.uint8)
        green = ((np.sin(cols * 6.0 + phase) * 0.5 + 0.5) * 255).astype(np.uint8)
        blue = ((1.0 - cols) * 2.55 * self.joints[5]).astype(np.uint8)  # jaw opening
        return np.stack([red, green, blue], axis=-1)


class FakeTaskRobot(FakeRobot):
    """A FakeRobot with a virtual cube: `SimulatedTask` without a simulator."""

    def __init__(self, *args, success_radius: float = 0.02,
                 cube_low=(0.20, -0.08, -0.10), cube_high=(0.30, 0.08, -0.06), **kwargs):
        super().__init__(*args, **kwargs)
        self.kinematics = RobotKinematics("so100")
        self.success_radius = success_radius
        self.cube_low = np.asarray(cube_low, dtype=np.float64)
        self.cube_high = np.asarray(cube_high, dtype=np.float64)
        self.cube = (self.cube_low + self.cube_high) / 2.0

    def environment_state(self) -> np.ndarray:
        return self.cube.astype(np.float32)

    def tip_position(self) -> np.ndarray:
        return self.kinematics.fk_gripper_tip(self.joints.astype(np.float64))[:3, 3]

    def task_success(self) -> bool:
        return bool(np.linalg.norm(self.tip_position() - self.cube) <= self.success_radius)

    def reset_scene(self, rng: np.random.Generator) -> None:
        self.cube = rng.uniform(self.cube_low, self.cube_high)


def _pixel_grid(image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    height, width = image_size
    rows, cols = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    return rows, cols
