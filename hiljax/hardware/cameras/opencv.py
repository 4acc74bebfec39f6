"""Cameras read through OpenCV: a live device (`OpenCVCamera`) and a video or image file played
as if it were one (`FileCamera`, for tests and replays without a camera).

OpenCV delivers BGR; the base converts to the configured colour order.
"""

from __future__ import annotations

import logging
import math
import platform
from pathlib import Path

import cv2
import numpy as np

from hiljax.hardware.cameras.camera import Camera, SourceEnded, output_size
from hiljax.hardware.cameras.config import CameraConfig
from hiljax.hardware.cameras.errors import CameraConnectionError, CameraSettingsError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FIND_HINT = "python -m hiljax.find_cameras lists the cameras OpenCV can open"


def capture_backend(index_or_path: int | str) -> int:
    """Linux devices go through V4L2: OpenCV's automatic choice may pick GStreamer, which does
    not honour the requested size and fps. Files: whatever decodes them (FFmpeg)."""
    is_device = isinstance(index_or_path, int) or str(index_or_path).startswith("/dev/")
    if is_device and platform.system() == "Linux":
        return cv2.CAP_V4L2
    return cv2.CAP_ANY


def _capture_size(capture: cv2.VideoCapture) -> tuple[int, int]:
    return (round(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            round(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))


def _describe_size(size: tuple[int, int], rotation: int) -> str:
    before = f", before rotation {rotation}" if rotation else ""
    return f"{size[0]}x{size[1]} (width x height{before})"


class OpenCVCamera(Camera):
    """A USB / built-in camera (LeRobot's OpenCVCamera): sets fps, then width and height, and
    refuses to run when the device reads back other values (as LeRobot does)."""

    def __init__(self, name: str, config: CameraConfig):
        if config.type != "opencv":
            raise ValueError(f"camera {name!r}: OpenCVCamera needs type 'opencv', "
                             f"got {config.type!r}")
        self._capture: cv2.VideoCapture | None = None
        super().__init__(name, config)

    def _source(self) -> str:
        return str(self.config.index_or_path)

    def _open(self) -> None:
        source = self.config.index_or_path
        if isinstance(source, str) and source.startswith("/dev/") and not Path(source).exists():
            raise CameraConnectionError(f"{self.label}: {source} does not exist (unplugged, "
                                        f"or another number after re-plugging?); {FIND_HINT}")
        capture = cv2.VideoCapture(source, capture_backend(source))
        if not capture.isOpened():
            capture.release()
            raise CameraConnectionError(
                f"{self.label} could not be opened (unplugged, used by another program, or no "
                f"permission: is the user in the 'video' group?); {FIND_HINT}")
        try:
            self._configure(capture)
        except BaseException:
            capture.release()
            raise
        self._capture = capture

    def _configure(self, capture: cv2.VideoCapture) -> None:
        config = self.config
        if config.fourcc is not None:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*config.fourcc))
            code = int(capture.get(cv2.CAP_PROP_FOURCC))
            actual = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))
            if actual != config.fourcc:  # LeRobot only warns: the stream may still work
                log.warning("%s: fourcc %s was refused, the device uses %r", self.label,
                            config.fourcc, actual)
        if config.fps is not None:
            capture.set(cv2.CAP_PROP_FPS, config.fps)
            actual_fps = capture.get(cv2.CAP_PROP_FPS)
            if not math.isclose(actual_fps, config.fps, rel_tol=1e-3):
                raise CameraSettingsError(
                    f"{self.label} runs at {actual_fps:g} fps, not the configured {config.fps}; "
                    f"set fps to one the camera offers (or null for its own)")
        wanted = config.capture_size
        if wanted is not None:  # width before height, as LeRobot
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, wanted[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, wanted[1])
        actual = _capture_size(capture)
        if wanted is not None and actual != wanted:
            raise CameraSettingsError(
                f"{self.label} delivers {_describe_size(actual, config.rotation)}, not the "
                f"configured {_describe_size(wanted, config.rotation)}; {FIND_HINT} at their "
                f"default size")
        self.width, self.height = output_size(actual, config.rotation)
        self.fps = config.fps or (round(capture.get(cv2.CAP_PROP_FPS)) or None)

    def _grab(self) -> np.ndarray:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise RuntimeError("the device returned no frame")
        return frame

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class FileCamera(Camera):
    """A video (any format OpenCV's FFmpeg decodes) or an image file, delivered at `fps` (the
    file's own when null) like a live device; with loop=true it starts again at the end, with
    loop=false the stream ends there and read_latest() goes stale. An image is a one-frame
    video. width / height, when set, must match the file (frames are not resized)."""

    paced = True

    def __init__(self, name: str, config: CameraConfig):
        if config.type != "file":
            raise ValueError(f"camera {name!r}: FileCamera needs type 'file', got {config.type!r}")
        self._path = Path(config.index_or_path)
        self._capture: cv2.VideoCapture | None = None
        self._image: np.ndarray | None = None
        self._image_shown = False
        super().__init__(name, config)

    def _source(self) -> str:
        return str(self._path)

    def _open(self) -> None:
        if not self._path.is_file():
            raise CameraConnectionError(f"{self.label}: no such file {self._path}")
        if self._path.suffix.lower() in IMAGE_SUFFIXES:
            self._image = cv2.imread(str(self._path), cv2.IMREAD_COLOR)
            if self._image is None:
                raise CameraConnectionError(f"{self.label}: {self._path} is not a readable image")
            size, file_fps = (self._image.shape[1], self._image.shape[0]), 0.0
            self._image_shown = False
        else:
            self._capture = self._open_video()
            size, file_fps = _capture_size(self._capture), self._capture.get(cv2.CAP_PROP_FPS)
        wanted = self.config.capture_size
        if wanted is not None and wanted != size:
            self._close()
            raise CameraSettingsError(
                f"{self.label}: the file's frames are {_describe_size(size, 0)}, but the config "
                f"asks for {_describe_size(wanted, self.config.rotation)}; set width and height "
                f"to null or to the file's size (after rotation)")
        self.width, self.height = output_size(size, self.config.rotation)
        self.fps = self.config.fps or (round(file_fps) or None)

    def _open_video(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path))
        if not capture.isOpened():
            capture.release()
            raise CameraConnectionError(f"{self.label}: OpenCV cannot decode {self._path}")
        return capture

    def _grab(self) -> np.ndarray:
        if self._image is not None:
            if self._image_shown and not self.config.loop:
                raise SourceEnded(f"the image {self._path} was shown once (loop=false)")
            self._image_shown = True
            return self._image
        ok, frame = self._capture.read()
        if ok:
            return frame
        if not self.config.loop:
            raise SourceEnded(f"reached the end of {self._path} (loop=false)")
        # Re-opening rewinds every container reliably; seeking to frame 0 does not always.
        self._capture.release()
        self._capture = self._open_video()
        ok, frame = self._capture.read()
        if not ok:
            raise RuntimeError(f"{self._path} yields no frame after rewinding")
        return frame

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._image = None
