"""Choosing MuJoCo's OpenGL backend, and saying clearly what to do when there is none.

MuJoCo picks its backend from MUJOCO_GL when it is first imported, and with an unusable choice
(e.g. ``osmesa`` without libOSMesa) ``import mujoco`` itself fails with an obscure PyOpenGL
error. This module runs before anything in the sim imports mujoco, so both cases can be handled.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)

GL_HELP = (
    "MuJoCo could not use the OpenGL backend MUJOCO_GL={backend!r}: {error}\n"
    "Headless machines: set MUJOCO_GL=egl *before* anything imports mujoco, and install Mesa's "
    "EGL (Debian/Ubuntu: `apt-get install libegl1 libgl1-mesa-dri`). Alternative: "
    "MUJOCO_GL=osmesa with `libosmesa6`. With a display, MUJOCO_GL=glfw also works. "
    "State-only runs need no OpenGL: use SimRobot(render=False) or no cameras "
    "(MUJOCO_GL=disable is then fine)."
)


class OpenGLUnavailableError(RuntimeError):
    """No usable OpenGL backend for offscreen rendering (the message says what to install)."""


def gl_error(error: BaseException) -> OpenGLUnavailableError:
    """The error to raise when a renderer cannot be made; names the import-time cause if any."""
    if gl_import_error is not None:
        error = f"{gl_import_error!r} (when importing mujoco; rendering was disabled)"
    return OpenGLUnavailableError(GL_HELP.format(backend=_requested_backend or "", error=error))


_requested_backend = os.environ.get("MUJOCO_GL")


def default_to_egl_when_headless() -> None:
    """MUJOCO_GL=egl on Linux without a display, if unset and mujoco is not yet imported
    (MuJoCo's own default there, GLFW, cannot work without a display)."""
    if (sys.platform.startswith("linux") and "mujoco" not in sys.modules
            and not os.environ.get("MUJOCO_GL")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
        global _requested_backend
        os.environ["MUJOCO_GL"] = _requested_backend = "egl"
        logger.debug("no display: MUJOCO_GL=egl for offscreen rendering")


# Why rendering cannot work in this process (set when the chosen backend failed to load).
gl_import_error: BaseException | None = None


def import_mujoco():
    """``import mujoco``; if the GL backend cannot load, import it without GL instead.

    State-only simulation must work on machines without any GL library, so a backend failure
    only disables rendering: creating a renderer later raises `OpenGLUnavailableError` with
    the original error and what to install.
    """
    global gl_import_error
    try:
        import mujoco
    except ModuleNotFoundError as error:
        if error.name == "mujoco":
            raise  # mujoco itself is not installed: the plain error says so
        gl_import_error = error
    except (ImportError, AttributeError, OSError) as error:  # PyOpenGL without its library
        gl_import_error = error
    else:
        return mujoco
    logger.warning("MuJoCo's OpenGL backend MUJOCO_GL=%r failed to load (%s); rendering is off "
                   "in this process", os.environ.get("MUJOCO_GL", ""), gl_import_error)
    for name in [n for n in sys.modules if n == "mujoco" or n.startswith("mujoco.")]:
        del sys.modules[name]  # the half-imported package, so it can load again without GL
    os.environ["MUJOCO_GL"] = "disable"
    import mujoco
    return mujoco
