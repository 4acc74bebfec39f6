"""Offscreen camera rendering for the sim: one reused `mujoco.Renderer`, fast settings.

Only this module needs OpenGL; a state-only SimRobot never builds a renderer, so it runs on
machines without any GL library.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref

import mujoco
import numpy as np

from hiljax.envs.sim.gl_backend import gl_error

logger = logging.getLogger(__name__)

# Nothing a 128x128 policy image benefits from, and each costs a render pass or fill time.
_DISABLED_RENDER_FLAGS = ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX", "mjRND_FOG",
                          "mjRND_HAZE")


# Renderers still open at exit are closed before MuJoCo's EGL backend terminates its display (an
# atexit hook it registers with the first context; ours is registered after it, so runs first).
# Left to garbage collection during shutdown, each context raises noisy EGL errors.
_OPEN_RENDERERS: weakref.WeakSet = weakref.WeakSet()
_exit_hook_registered = False


def _close_open_renderers() -> None:
    for camera_renderer in list(_OPEN_RENDERERS):
        camera_renderer.close()


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_close_open_renderers)
        _exit_hook_registered = True


def plain_scene(renderer: mujoco.Renderer) -> None:
    """Shadows, reflections, skybox, fog and haze off: several times faster on a CPU renderer."""
    for flag in _DISABLED_RENDER_FLAGS:
        renderer.scene.flags[getattr(mujoco.mjtRndFlag, flag)] = 0


def make_renderer(model: mujoco.MjModel, image_size: int) -> mujoco.Renderer:
    """A square offscreen renderer with shadows, reflections, skybox and fog off."""
    try:
        # max_geom: the scene has a dozen geoms; the default 10000 allocates for nothing.
        renderer = mujoco.Renderer(model, image_size, image_size, max_geom=200)
    except ValueError:
        raise  # a framebuffer-size problem, not a missing GL: MuJoCo's message says what to do
    except Exception as error:
        raise gl_error(error) from error
    plain_scene(renderer)
    logger.debug("offscreen renderer %dx%d on MUJOCO_GL=%r", image_size, image_size,
                 os.environ.get("MUJOCO_GL", ""))
    return renderer


class CameraRenderer:
    """Renders named cameras of one model, one frame per camera per call."""

    def __init__(self, model: mujoco.MjModel, camera_names: tuple[str, ...], image_size: int):
        missing = [name for name in camera_names
                   if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name) < 0]
        if missing:
            raise ValueError(f"unknown cameras {missing}; the scene has 'front' and 'wrist'")
        self.camera_names = tuple(camera_names)
        self.image_size = image_size
        self._renderer: mujoco.Renderer | None = make_renderer(model, image_size)
        _OPEN_RENDERERS.add(self)
        _register_exit_hook()

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """camera name -> (H, W, 3) uint8 RGB, a fresh array per frame (callers keep them)."""
        frames = {}
        for name in self.camera_names:
            self._renderer.update_scene(data, camera=name)
            frames[name] = self._renderer.render()
        return frames

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        _OPEN_RENDERERS.discard(self)
