"""The MuJoCo so100 robot: an arm in the project's own MJCF that matches `hiljax.kinematics`.

Importing this package first settles MuJoCo's OpenGL backend (`gl_backend`): MUJOCO_GL defaults
to ``egl`` on a Linux machine without a display, and an unusable backend fails with advice.
"""

from hiljax.envs.sim.gl_backend import (
    OpenGLUnavailableError,
    default_to_egl_when_headless,
    import_mujoco,
)

default_to_egl_when_headless()
import_mujoco()

from hiljax.envs.sim.scene import CUBE_HALF_SIZE, build_scene_xml
from hiljax.envs.sim.sim_robot import (
    DEFAULT_LIFT_HEIGHT,
    HOME_JOINT_POSITIONS,
    SimRobot,
)
from hiljax.envs.sim.task import CubeSpawn

__all__ = ["CUBE_HALF_SIZE", "DEFAULT_LIFT_HEIGHT", "HOME_JOINT_POSITIONS", "CubeSpawn",
           "OpenGLUnavailableError", "SimRobot", "build_scene_xml"]
