"""What goes wrong with cameras, and that every error names the camera: a source that stops
(stale frames), one that fails (the thread gives up), devices and files that are not there,
settings a device refuses, the exact newest-frame rules (a SimCamera stepped by hand), and
RealSense without its SDK."""

import threading
import time

import numpy as np
import pytest

from hiljax.hardware.cameras import (
    CameraConfig,
    CameraConnectionError,
    CameraError,
    CameraNotConnectedError,
    CameraSettingsError,
    CameraStoppedError,
    FrameTimeoutError,
    OpenCVCamera,
    SimCamera,
    StaleFrameError,
    make_camera,
    make_cameras,
    realsense_available,
)
from tests.hardware.test_cameras import counter_frame, frame_index, write_video

SIM = {"type": "sim", "warmup_s": 0, "fps": 100}


def wait_for_error(read, error_type, timeout_s=5.0):
    """Call `read` until it raises `error_type` (which is returned), failing after timeout_s."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            read()
        except error_type as exc:
            return exc
        time.sleep(0.02)
    pytest.fail(f"{error_type.__name__} not raised within {timeout_s} s")


class SteppedRender:
    """Renders frame k (k = 1, 2, ...) only when step() allows it; blocks otherwise."""

    def __init__(self):
        self.allowed = threading.Semaphore(0)
        self.count = 0

    def step(self, frames=1):
        for _ in range(frames):
            self.allowed.release()

    def __call__(self):
        if not self.allowed.acquire(timeout=5):
            raise TimeoutError("the test never stepped the render")
        self.count += 1
        return counter_frame(self.count)[..., ::-1]  # RGB (grey: the same either way)


def wait_for_index(camera, index):
    deadline = time.perf_counter() + 5
    while frame_index(camera.read_latest(max_age_ms=10_000)) != index:
        assert time.perf_counter() < deadline, f"frame {index} never arrived"
        time.sleep(0.005)


def test_newest_frame_rules_exactly():
    render = SteppedRender()
    camera = SimCamera("wrist", CameraConfig(**SIM, max_age_ms=10_000), render)
    render.step()
    camera.connect()
    try:
        render.step(4)
        wait_for_index(camera, 5)
        # Frames 2-4 were replaced, not queued: every reader gets the newest.
        assert frame_index(camera.read_latest()) == 5
        assert camera.read_latest() is camera.read_latest()  # never waits, may repeat
        assert frame_index(camera.async_read()) == 5  # not yet taken: returned at once
        with pytest.raises(FrameTimeoutError, match=r"camera 'wrist' .*no new frame within 50"):
            camera.async_read(timeout_ms=50)  # frame 5 was taken
        with pytest.raises(FrameTimeoutError):
            camera.read(timeout_ms=50)  # read() needs a frame captured after the call
        threading.Timer(0.05, render.step).start()
        assert frame_index(camera.read(timeout_ms=5000)) == 6
    finally:
        render.step(10)  # unblock the thread so disconnect() can join it
        camera.disconnect()


def test_a_source_that_blocks_goes_stale():
    render = SteppedRender()
    render.step(3)
    with SimCamera("wrist", CameraConfig(**SIM, max_age_ms=100), render) as camera:
        error = wait_for_error(camera.read_latest, StaleFrameError)
        assert isinstance(error, TimeoutError) and error.age_ms > 100
        assert "camera 'wrist' (sim" in str(error) and "ms old (max_age_ms=100)" in str(error)
        assert frame_index(camera.read_latest(max_age_ms=60_000)) == 3  # a looser limit: fine
        render.step(10)


def test_a_file_without_loop_goes_stale_at_its_end(tmp_path):
    path = write_video(tmp_path / "clip.avi", [counter_frame(i) for i in range(4)])
    config = CameraConfig(type="file", index_or_path=str(path), fps=100, loop=False,
                          warmup_s=0, max_age_ms=100)
    with make_camera("clip", config) as camera:
        error = wait_for_error(camera.read_latest, StaleFrameError)
        assert "camera 'clip'" in str(error) and "end of" in str(error)
        with pytest.raises(CameraStoppedError, match="stopped delivering frames: reached the end"):
            camera.read()  # fails at once: no frame can come


def test_a_failing_source_stops_the_camera_with_a_clear_error():
    frames = iter([counter_frame(1)] * 3)

    def render():
        frame = next(frames, None)
        if frame is None:
            raise OSError("renderer lost its GL context")
        return frame

    with SimCamera("front", CameraConfig(**SIM), render) as camera:
        error = wait_for_error(camera.read_latest, CameraStoppedError)
        assert isinstance(error, ConnectionError) and isinstance(error, CameraError)
        message = str(error)
        assert message.startswith("camera 'front' (sim")
        assert "stopped delivering frames: 11 consecutive failed reads" in message
        assert "OSError: renderer lost its GL context" in message
        with pytest.raises(CameraStoppedError):
            camera.read()


def test_a_device_whose_reads_fail_is_reported_vanished(tmp_path):
    """OpenCVCamera on a video file: past its end every read fails at once, as on an
    unplugged USB camera."""
    path = write_video(tmp_path / "device.avi", [counter_frame(i) for i in range(3)])
    camera = OpenCVCamera("front", CameraConfig(index_or_path=str(path), warmup_s=0))
    with camera:
        error = wait_for_error(camera.read_latest, CameraStoppedError)
    assert str(error).startswith(f"camera 'front' ({path}) stopped delivering frames")
    assert "the device returned no frame" in str(error)


def test_wrong_sized_frames_are_failed_reads():
    config = CameraConfig(**SIM, width=32, height=24)
    camera = SimCamera("front", config, lambda: np.zeros((24, 40, 3), np.uint8))
    with pytest.raises(CameraConnectionError, match=r"camera 'front'.*40x24.*expected 32x24"):
        camera.connect()
    assert not camera.is_connected


def test_a_render_that_never_works_fails_connect():
    camera = SimCamera("top", CameraConfig(**SIM), lambda: np.zeros((8, 8), np.uint8))
    with pytest.raises(CameraConnectionError, match=r"camera 'top' .*no frame during warm-up.*"
                                                    r"\(H, W, 3\) uint8"):
        camera.connect()


@pytest.mark.parametrize("config, pattern", [
    (CameraConfig(type="file", index_or_path="/nonexistent/front.mp4"),
     r"camera 'front' \(/nonexistent/front.mp4\): no such file"),
    (CameraConfig(type="opencv", index_or_path="/dev/video99"),
     r"camera 'front' \(/dev/video99\): /dev/video99 does not exist"),
    (CameraConfig(type="opencv", index_or_path=57),
     r"camera 'front' \(57\) could not be opened.*find_cameras"),
])
def test_connect_names_the_missing_camera(config, pattern):
    camera = make_camera("front", config)
    with pytest.raises(CameraConnectionError, match=pattern) as caught:
        camera.connect()
    assert isinstance(caught.value, ConnectionError) and not camera.is_connected


def test_a_file_opencv_cannot_decode(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video")
    with pytest.raises(CameraConnectionError, match="cannot decode"):
        make_camera("front", CameraConfig(type="file", index_or_path=str(path))).connect()


@pytest.mark.parametrize("fields, pattern", [
    ({"fps": 15}, r"runs at 30 fps, not the configured 15"),
    ({"width": 320, "height": 240},
     r"delivers 64x48 \(width x height\), not the configured 320x240"),
])
def test_settings_the_device_refuses(tmp_path, fields, pattern):
    path = write_video(tmp_path / "cam.avi", [counter_frame(0)] * 3)
    camera = OpenCVCamera("front", CameraConfig(index_or_path=str(path), warmup_s=0, **fields))
    with pytest.raises(CameraSettingsError, match=pattern):
        camera.connect()
    assert isinstance(CameraSettingsError("x"), RuntimeError)  # LeRobot raises RuntimeError


def test_use_before_connect_and_twice():
    camera = SimCamera("front", CameraConfig(**SIM), lambda: np.zeros((8, 8, 3), np.uint8))
    for call in (camera.read, camera.async_read, camera.read_latest, camera.disconnect):
        with pytest.raises(CameraNotConnectedError, match="camera 'front'.*not connected"):
            call()
    with camera:
        with pytest.raises(CameraNotConnectedError, match="already connected"):
            camera.connect()
        assert camera.read().shape == (8, 8, 3)  # size learned from the first frame


def test_make_camera_and_make_cameras():
    def render():
        return np.zeros((8, 8, 3), np.uint8)

    cameras = make_cameras({"front": CameraConfig(type="file", index_or_path="a.mp4"),
                            "sim": CameraConfig(type="sim"),
                            "usb": CameraConfig(index_or_path="/dev/video0")},
                           renderers={"sim": render})
    assert [type(c).__name__ for c in cameras.values()] == ["FileCamera", "SimCamera",
                                                           "OpenCVCamera"]
    assert not any(c.is_connected for c in cameras.values())
    with pytest.raises(ValueError, match="camera 'sim' has type 'sim': it needs a render"):
        make_camera("sim", CameraConfig(type="sim"))
    with pytest.raises(ValueError, match="only for type 'sim'"):
        make_camera("usb", CameraConfig(index_or_path=0), render=render)
    with pytest.raises(ValueError, match=r"renderers for cameras \['top'\]"):
        make_cameras({"sim": CameraConfig(type="sim")}, renderers={"top": render})


@pytest.mark.skipif(realsense_available(), reason="pyrealsense2 is installed")
def test_realsense_without_its_sdk_says_how_to_install():
    config = CameraConfig(type="intelrealsense", serial_number_or_name="0123456789")
    with pytest.raises(ImportError, match="camera 'hand'.*pip install pyrealsense2"):
        make_camera("hand", config)


def test_realsense_devices_are_listed():
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 is not installed (RealSense "
                                               "cameras need `pip install pyrealsense2`)")
    from hiljax.hardware.cameras.realsense import find_realsense_cameras
    for entry in find_realsense_cameras():
        assert entry["type"] == "intelrealsense" and entry["serial_number_or_name"]
