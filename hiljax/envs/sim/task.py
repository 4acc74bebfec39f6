"""The pick-and-lift task: where the cube may start, and what counts as success.

Success = the cube is *held* (both finger pads touch it) and its bottom face is at least
``lift_height`` (5 cm by default) above the table top. Requiring the grasp means knocking or
flicking the cube into the air is not a success; requiring the height means a grasp alone is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from hiljax.envs.sim.scene import CUBE_HALF_SIZE

TABLE_TOP_Z = 0.0


@dataclass(frozen=True)
class CubeSpawn:
    """Cube start region (metres, world frame: the arm's base is at the origin, +x forward).

    Every point of it is in the reach of a gripper pointing straight down (the tip at the cube's
    centre puts the wrist 16 cm above it) from the table up to 8 cm above it: the cube can be
    grasped and lifted 5 cm without tilting the gripper. The cube's yaw faces the base, so a
    gripper without roll control, turned only by the shoulder pan, closes squarely on two faces.
    """

    x_range: tuple[float, float] = (0.16, 0.22)
    y_range: tuple[float, float] = (-0.06, 0.06)
    yaw_noise_deg: float = 0.0  # extra uniform yaw jitter, for a harder task

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quaternion wxyz (4,)) of a cube resting on the table."""
        x = rng.uniform(*self.x_range)
        y = rng.uniform(*self.y_range)
        yaw = np.arctan2(y, x) + np.deg2rad(rng.uniform(-1.0, 1.0) * self.yaw_noise_deg)
        position = np.array([x, y, TABLE_TOP_Z + CUBE_HALF_SIZE])
        quaternion = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        return position, quaternion


class GraspDetector:
    """Which of the cube's contacts are with the finger pads, from MuJoCo's contact list."""

    def __init__(self, model: mujoco.MjModel):
        self._cube = model.geom("cube").id
        self._fingers = np.array([model.geom("finger_left").id, model.geom("finger_right").id])

    def fingers_touching(self, data: mujoco.MjData) -> np.ndarray:
        """(2,) bool: does the left / right pad touch the cube now."""
        pairs = data.contact.geom[: data.ncon]  # (ncon, 2) geom ids
        with_cube = pairs[(pairs == self._cube).any(axis=1)]
        return np.isin(self._fingers, with_cube)

    def grasped(self, data: mujoco.MjData) -> bool:
        return bool(self.fingers_touching(data).all())


def cube_lift(cube_position: np.ndarray) -> float:
    """Height of the cube's bottom face above the table top (metres; ~0 when resting)."""
    return float(cube_position[2] - CUBE_HALF_SIZE - TABLE_TOP_Z)
