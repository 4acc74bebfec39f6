"""The `Robot` protocol: what HILSerlRobotEnv needs from an arm, real or simulated.

Units follow LeRobot's so100/koch drivers: arm joints in DEGREES, in the order of `motor_names`
(the joint order of `hiljax.kinematics`), the gripper last as a position in [0, 100]
(0 closed, 100 open). Camera frames are (H, W, 3) uint8 RGB.

A simulated robot may also implement `SimulatedTask` (privileged state and success), which
the sim's task reward and the scripted operator use; a real robot never needs it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

GRIPPER_OPEN = 100.0
GRIPPER_CLOSED = 0.0


@runtime_checkable
class Robot(Protocol):
    name: str
    motor_names: tuple[str, ...]  # arm joints, then the gripper
    camera_names: tuple[str, ...]

    @property
    def is_connected(self) -> bool: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def read_joint_positions(self) -> np.ndarray:
        """(len(motor_names),) float32: arm joints in degrees, gripper in [0, 100]."""

    def read_joint_currents(self) -> np.ndarray | None:
        """(len(motor_names),) float32 motor currents, or None when the hardware has none."""

    def read_cameras(self) -> dict[str, np.ndarray]:
        """camera name -> (H, W, 3) uint8 RGB frame, for every name in camera_names."""

    def send_joint_targets(self, targets: np.ndarray) -> np.ndarray:
        """Command joint positions (same units and order); returns what was actually sent
        (after the robot's own safety clipping)."""


@runtime_checkable
class SimulatedTask(Protocol):
    """Extra access a simulator gives: privileged state, task success, scene resets."""

    def environment_state(self) -> np.ndarray:
        """Task state a policy may observe as `observation.environment_state` (e.g. cube xyz)."""

    def task_success(self) -> bool: ...

    def reset_scene(self, rng: np.random.Generator) -> None:
        """Re-randomise the task objects (not the arm: the env's ResetWrapper moves the arm)."""
