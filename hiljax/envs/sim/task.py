"""The pick-and-lift task: where the cube may start, and what counts as success.

Success = the cube is *held* (both finger pads touch it) and its bottom face is at least
``lift_height`` (5 cm by default) above the table top. Requiring the grasp means knocking or
flicking the cube into the air is not a success; requiring the height means a grasp alone is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from hiljax.envs.configs import DEFAULT_CUBE_X_RANGE, DEFAULT_CUBE_Y_RANGE, DEFAULT_CUBE_YAW_DEG
from hiljax.envs.sim.scene import CUBE_HALF_SIZE

TABLE_TOP_Z = 0.0


@dataclass(frozen=True)
class CubeSpawn:
    """Cube start region (metres, world frame: the arm's base is at the origin, +x forward).

    The default (the easy task, `robot.cube_*` in the env config) is in the reach of a gripper
    pointing straight down from the table up to 8 cm above it, and the cube's yaw faces the
    base, so a gripper without roll control, turned only by the shoulder pan, closes squarely
    on two faces. `yaw_noise_deg` adds a uniform yaw of +-that much to the facing direction:
    the hard task (a 20 x 20 cm area, +-45 degrees) needs the wrist roll to grasp squarely.
    """

    x_range: tuple[float, float] = DEFAULT_CUBE_X_RANGE
    y_range: tuple[float, float] = DEFAULT_CUBE_Y_RANGE
    yaw_noise_deg: float = DEFAULT_CUBE_YAW_DEG

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quaternion wxyz (4,)) of a cube resting on the table."""
        x = rng.uniform(*self.x_range)
        y = rng.uniform(*self.y_range)
        yaw = np.arctan2(y, x) + np.deg2rad(rng.uniform(-1.0, 1.0) * self.yaw_noise_deg)
        position = np.array([x, y, TABLE_TOP_Z + CUBE_HALF_SIZE])
        quaternion = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        return position, quaternion


def yaw_of_quaternion(quaternion: np.ndarray) -> float:
    """Rotation about the world z axis (radians, (-pi, pi]) of a wxyz quaternion: the heading
    of the body's x axis (for a cube resting on a face, the direction of a face normal)."""
    w, x, y, z = np.asarray(quaternion, dtype=np.float64)
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


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
