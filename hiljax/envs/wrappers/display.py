"""Show camera frames in OpenCV windows, or say once, clearly, why they cannot be shown."""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

logger = logging.getLogger(__name__)


def display_available() -> bool:
    """False on a Linux box without X11 / Wayland (a headless server, CI, ssh without -X)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class CameraDisplay:
    """One OpenCV window per camera; disables itself with ONE log line when it cannot show."""

    def __init__(self, window_prefix: str = "hiljax"):
        self.window_prefix = window_prefix
        self.enabled = True
        self._cv2 = None
        if not display_available():
            self._disable("no display (DISPLAY / WAYLAND_DISPLAY unset): camera windows are off")

    def _disable(self, reason: str) -> None:
        if self.enabled:
            logger.warning("display_cameras is on but %s", reason)
        self.enabled = False

    def show(self, frames: dict[str, np.ndarray]) -> None:
        """frames: name -> (H, W, 3) uint8 RGB."""
        if not self.enabled or not frames:
            return
        try:
            import cv2

            for name, frame in frames.items():
                cv2.imshow(f"{self.window_prefix}: {name}", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            cv2.waitKey(1)
            self._cv2 = cv2
        except Exception as exc:  # noqa: BLE001  headless OpenCV builds raise cv2.error from imshow
            self._disable(f"OpenCV cannot open a window ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}); "
                          "install opencv-python (not -headless) to see the cameras")

    def close(self) -> None:
        if self._cv2 is not None:
            try:
                self._cv2.destroyAllWindows()
            except self._cv2.error:  # the window may already be gone; nothing to clean up
                logger.debug("no OpenCV window to close")
            self._cv2 = None
