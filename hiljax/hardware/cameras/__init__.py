"""Cameras, numpy only (LeRobot's camera model, hardware_facts §5):

    cameras = make_cameras({"front": CameraConfig(type="opencv", index_or_path="/dev/video4",
                                                  fps=30, width=640, height=480)})
    for camera in cameras.values():
        camera.connect()
    frame = cameras["front"].read_latest()   # (480, 640, 3) uint8 RGB, never waits

    OpenCVCamera     a USB / built-in camera (cv2.VideoCapture; V4L2 on Linux)
    FileCamera       a video or image file played at fps as if live (tests, replays)
    SimCamera        frames from a render() callable (the MuJoCo sim)
    RealSenseCamera  Intel RealSense colour stream (needs `pip install pyrealsense2`)

`python -m hiljax.find_cameras` lists the cameras and saves one picture of each.
"""

from __future__ import annotations

from collections.abc import Mapping

from hiljax.hardware.cameras.camera import Camera, SourceEnded
from hiljax.hardware.cameras.config import CAMERA_TYPES, CameraConfig
from hiljax.hardware.cameras.discovery import find_cameras, opencv_devices, save_frames
from hiljax.hardware.cameras.errors import (
    CameraConnectionError,
    CameraError,
    CameraNotConnectedError,
    CameraSettingsError,
    CameraStoppedError,
    FrameTimeoutError,
    NoFrameError,
    StaleFrameError,
)
from hiljax.hardware.cameras.opencv import FileCamera, OpenCVCamera
from hiljax.hardware.cameras.realsense import RealSenseCamera, realsense_available
from hiljax.hardware.cameras.sim import Render, SimCamera

__all__ = [
    "CAMERA_TYPES", "Camera", "CameraConfig", "CameraConnectionError", "CameraError",
    "CameraNotConnectedError", "CameraSettingsError", "CameraStoppedError", "FileCamera",
    "FrameTimeoutError", "NoFrameError", "OpenCVCamera", "RealSenseCamera", "Render",
    "SimCamera", "SourceEnded", "StaleFrameError", "find_cameras", "make_camera",
    "make_cameras", "opencv_devices", "realsense_available", "save_frames",
]


def make_camera(name: str, config: CameraConfig, render: Render | None = None) -> Camera:
    """The camera `config.type` names, not yet connected. `render` is for type 'sim' only."""
    if config.type == "sim":
        if render is None:
            raise ValueError(f"camera {name!r} has type 'sim': it needs a render callable "
                             f"(make_camera(name, config, render=...))")
        return SimCamera(name, config, render)
    if render is not None:
        raise ValueError(f"camera {name!r} has type {config.type!r}: a render callable is "
                         f"only for type 'sim'")
    kinds = {"opencv": OpenCVCamera, "file": FileCamera, "intelrealsense": RealSenseCamera}
    return kinds[config.type](name, config)


def make_cameras(configs: Mapping[str, CameraConfig],
                 renderers: Mapping[str, Render] | None = None) -> dict[str, Camera]:
    """name -> camera (none connected), in the order of `configs`."""
    renderers = dict(renderers or {})
    unknown = sorted(set(renderers) - set(configs))
    if unknown:
        raise ValueError(f"renderers for cameras {unknown} that are not configured "
                         f"(configured: {sorted(configs)})")
    return {name: make_camera(name, config, renderers.get(name))
            for name, config in configs.items()}
