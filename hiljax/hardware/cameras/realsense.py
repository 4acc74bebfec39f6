"""Intel RealSense colour stream through Intel's pyrealsense2 (optional: `pip install
pyrealsense2`). Colour only: LeRobot's depth stream is not read (HIL-SERL uses RGB)."""

from __future__ import annotations

import logging

import numpy as np

from hiljax.hardware.cameras.camera import Camera, output_size
from hiljax.hardware.cameras.config import CameraConfig
from hiljax.hardware.cameras.errors import CameraConnectionError

try:
    import pyrealsense2 as rs
except ImportError:  # optional: only RealSense users install it
    rs = None

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install pyrealsense2"
FRAME_TIMEOUT_MS = 1000  # one wait for a frame in the thread; a failure when it runs out


def realsense_available() -> bool:
    return rs is not None


def find_realsense_cameras() -> list[dict]:
    """Connected RealSense devices with their default colour stream ([] without pyrealsense2)."""
    if rs is None:
        return []
    found = []
    for device in rs.context().query_devices():
        entry = {"type": "intelrealsense",
                 "serial_number_or_name": device.get_info(rs.camera_info.serial_number),
                 "name": device.get_info(rs.camera_info.name),
                 "width": None, "height": None, "fps": None}
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if profile.is_default() and profile.stream_type() == rs.stream.color:
                    video = profile.as_video_stream_profile()
                    entry.update(width=video.width(), height=video.height(), fps=video.fps())
        found.append(entry)
    return found


class RealSenseCamera(Camera):
    source_color_order = "rgb"  # the stream is requested as rgb8

    def __init__(self, name: str, config: CameraConfig):
        if rs is None:
            raise ImportError(f"camera {name!r}: type 'intelrealsense' needs Intel's "
                              f"pyrealsense2, which is not installed: {INSTALL_HINT}")
        if config.type != "intelrealsense":
            raise ValueError(f"camera {name!r}: RealSenseCamera needs type 'intelrealsense', "
                             f"got {config.type!r}")
        self._pipeline = None
        super().__init__(name, config)

    def _source(self) -> str:
        return f"RealSense {self.config.serial_number_or_name}"

    def _serial_number(self) -> str:
        """A serial number as given; a name must match exactly one connected device."""
        wanted = self.config.serial_number_or_name
        if wanted.isdigit():
            return wanted
        matches = [entry["serial_number_or_name"] for entry in find_realsense_cameras()
                   if entry["name"] == wanted]
        if len(matches) != 1:
            raise CameraConnectionError(
                f"{self.label}: {len(matches)} connected RealSense devices are named {wanted!r}; "
                f"use a serial number (python -m hiljax.find_cameras lists them)")
        return matches[0]

    def _open(self) -> None:
        stream_config = rs.config()
        stream_config.enable_device(self._serial_number())
        wanted = self.config.capture_size
        if wanted is not None:
            stream_config.enable_stream(rs.stream.color, wanted[0], wanted[1], rs.format.rgb8,
                                        self.config.fps)
        else:
            stream_config.enable_stream(rs.stream.color, rs.format.rgb8)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(stream_config)
        except RuntimeError as exc:  # unknown serial, or a mode the device does not offer
            raise CameraConnectionError(f"{self.label} could not start its colour stream at "
                                        f"the configured fps / size: {exc}") from exc
        video = profile.get_stream(rs.stream.color).as_video_stream_profile()
        self.width, self.height = output_size((video.width(), video.height()),
                                              self.config.rotation)
        self.fps = video.fps()
        self._pipeline = pipeline

    def _grab(self) -> np.ndarray:
        ok, frames = self._pipeline.try_wait_for_frames(timeout_ms=FRAME_TIMEOUT_MS)
        if not ok:
            raise RuntimeError(f"no frame within {FRAME_TIMEOUT_MS} ms")
        color = frames.get_color_frame()
        if not color:
            raise RuntimeError("a frameset without a colour frame")
        return np.asanyarray(color.get_data())  # the base copies it out of the SDK's buffer

    def _close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
