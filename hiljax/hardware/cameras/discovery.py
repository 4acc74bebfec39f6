"""Which cameras are there, and one picture from each (LeRobot's find-cameras)."""

from __future__ import annotations

import contextlib
import logging
import platform
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import cv2

from hiljax.hardware.cameras.camera import Camera
from hiljax.hardware.cameras.errors import CameraError
from hiljax.hardware.cameras.opencv import capture_backend
from hiljax.hardware.cameras.realsense import find_realsense_cameras

log = logging.getLogger(__name__)
MAX_INDEX = 60  # indices probed where there is no /dev/video* to list (LeRobot's 0..59)


def opencv_devices(max_index: int = MAX_INDEX) -> list[int | str]:
    """What to probe: /dev/video* on Linux (in numeric order), else indices 0..max_index-1."""
    if platform.system() == "Linux":
        def number(path: Path) -> int:
            digits = re.sub(r"\D", "", path.name)
            return int(digits) if digits else -1
        return [str(p) for p in sorted(Path("/dev").glob("video*"), key=number)]
    return list(range(max_index))


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Probing prints a warning per device that is not a camera (V4L2 metadata nodes)."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def find_cameras(max_index: int = MAX_INDEX, devices: Sequence[int | str] | None = None,
                 include_realsense: bool = True) -> list[dict]:
    """The cameras OpenCV can open, each {type, index_or_path, width, height, fps, backend},
    then RealSense devices (when pyrealsense2 is installed). `devices`: what to probe instead
    of opencv_devices(max_index). An empty list when there is none."""
    found = []
    with _quiet_opencv():
        for device in opencv_devices(max_index) if devices is None else devices:
            capture = cv2.VideoCapture(device, capture_backend(device))
            try:
                if not capture.isOpened():
                    continue
                found.append({
                    "type": "opencv", "index_or_path": device,
                    "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                    "fps": round(capture.get(cv2.CAP_PROP_FPS), 2) or None,
                    "backend": capture.getBackendName()})
            finally:
                capture.release()
    if include_realsense:
        try:
            found.extend(find_realsense_cameras())
        except RuntimeError as exc:  # the SDK is there but its driver layer is not
            log.warning("RealSense devices could not be listed: %s", exc)
    log.info("found %d camera(s)", len(found))
    return found


def save_frames(cameras: Mapping[str, Camera], directory: str | Path,
                timeout_ms: float = 2000) -> dict[str, Path]:
    """One fresh frame of each connected camera as <directory>/<name>.png. A camera that fails
    is logged and left out of the returned {name: path}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, camera in cameras.items():
        try:
            frame = camera.read(timeout_ms)
        except CameraError as exc:
            log.warning("no picture from %s: %s", camera.label, exc)
            continue
        if camera.config.color_mode == "rgb":
            frame = frame[..., ::-1]  # PNGs are written from BGR
        path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        if not cv2.imwrite(str(path), frame):
            raise OSError(f"could not write {path}")
        saved[name] = path
        log.info("%s: saved %s", camera.label, path)
    return saved
