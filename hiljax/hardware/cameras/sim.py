"""A camera whose frames come from a callable, e.g. the MuJoCo sim's renderer, delivered at fps
like a live device: a robot built on the sim reads its images through the same Camera API (and
the same staleness checks) as a real arm's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hiljax.hardware.cameras.camera import DEFAULT_FPS, Camera
from hiljax.hardware.cameras.config import CameraConfig

Render = Callable[[], np.ndarray]  # () -> (H, W, 3) uint8 RGB


class SimCamera(Camera):
    """`render()` is called from the camera's own thread, fps times a second: it must be safe
    to call there (an OpenGL context is current in one thread only: create the renderer on
    the first call, or guard a shared one with a lock). width / height null: the first
    frame's size; set, a frame of another size is a failed read."""

    source_color_order = "rgb"
    paced = True

    def __init__(self, name: str, config: CameraConfig, render: Render):
        if config.type != "sim":
            raise ValueError(f"camera {name!r}: SimCamera needs type 'sim', got {config.type!r}")
        if not callable(render):
            raise TypeError(f"camera {name!r}: render must be a callable returning (H, W, 3) "
                            f"uint8 RGB frames, got {type(render).__name__}")
        self._render = render
        super().__init__(name, config)

    def _source(self) -> str:
        return f"sim: {getattr(self._render, '__qualname__', type(self._render).__name__)}"

    def _open(self) -> None:
        self.fps = self.config.fps or DEFAULT_FPS
        self.width, self.height = self.config.width, self.config.height

    def _grab(self) -> np.ndarray:
        return np.asarray(self._render())

    def _close(self) -> None:
        pass
