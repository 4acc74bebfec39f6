"""Cameras through FileCamera on small videos written here: colour order, rotation and size, the
newest-frame logic, pacing, looping, save_frames. No camera needed.

Timing checks are lower bounds only (a slow machine may be late, never early)."""

import itertools
import time

import cv2
import numpy as np
import pytest

from hiljax.hardware.cameras import (
    CameraConfig,
    CameraSettingsError,
    FileCamera,
    make_camera,
    save_frames,
)

W, H = 64, 48  # the videos' frame size
RED_BGR, BLUE_BGR = (0, 0, 255), (255, 0, 0)


def write_video(path, frames, fps=30):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def counter_frame(index: int) -> np.ndarray:
    """Bit b of `index` is a white 8-pixel-wide column block (JPEG keeps block centres)."""
    frame = np.zeros((H, W, 3), np.uint8)
    for bit in range(8):
        if index >> bit & 1:
            frame[:, 8 * bit: 8 * bit + 8] = 255
    return frame


def frame_index(frame: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if frame[:, 8 * bit + 2: 8 * bit + 6].mean() > 127)


def pattern_frame() -> np.ndarray:
    """Red top-left quadrant, blue bottom-right, black elsewhere (BGR, as OpenCV writes)."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[: H // 2, : W // 2] = RED_BGR
    frame[H // 2:, W // 2:] = BLUE_BGR
    return frame


def quadrant_colour(frame: np.ndarray, top: bool, left: bool) -> np.ndarray:
    height, width = frame.shape[:2]
    row = height // 4 if top else 3 * height // 4
    col = width // 4 if left else 3 * width // 4
    return frame[row, col].astype(int)


def near(colour, expected, tolerance=40) -> bool:
    return bool(np.all(np.abs(np.asarray(colour) - np.asarray(expected)) <= tolerance))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "counter": write_video(folder / "counter.avi", [counter_frame(i) for i in range(40)]),
        "short": write_video(folder / "short.avi", [counter_frame(i) for i in range(6)]),
        "pattern": write_video(folder / "pattern.avi", [pattern_frame()] * 3),
    }


def file_camera(path, name="front", **fields) -> FileCamera:
    fields.setdefault("warmup_s", 0)
    return make_camera(name, CameraConfig(type="file", index_or_path=str(path), **fields))


@pytest.mark.parametrize("color_mode, red", [("rgb", (255, 0, 0)), ("bgr", (0, 0, 255))])
def test_colour_order(videos, color_mode, red):
    with file_camera(videos["pattern"], color_mode=color_mode) as camera:
        frame = camera.read_latest()
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert not frame.flags.writeable  # one frame object may go to several readers
    assert near(quadrant_colour(frame, top=True, left=True), red)
    assert near(quadrant_colour(frame, top=False, left=False), red[::-1])  # blue


# Where the red top-left quadrant lands; 90 is clockwise (LeRobot's ROTATE_90).
@pytest.mark.parametrize("rotation, red_top, red_left", [
    (0, True, True), (90, True, False), (180, False, False), (-90, False, True),
    (270, False, True)])
def test_rotation_and_output_size(videos, rotation, red_top, red_left):
    turned = rotation in (90, -90, 270)
    width, height = (H, W) if turned else (W, H)  # the config names the OUTPUT size
    with file_camera(videos["pattern"], rotation=rotation, width=width, height=height) as camera:
        frame = camera.read()
        assert (camera.width, camera.height) == (width, height)
    assert frame.shape == (height, width, 3)
    assert near(quadrant_colour(frame, red_top, red_left), (255, 0, 0))
    assert near(quadrant_colour(frame, not red_top, not red_left), (0, 0, 255))


def test_unset_size_is_the_files_rotated(videos):
    with file_camera(videos["pattern"], rotation=90) as camera:
        assert (camera.width, camera.height) == (H, W)
        assert camera.read_latest().shape == (W, H, 3)


@pytest.mark.parametrize("fields", [{"width": 32, "height": 24},
                                    {"width": W, "height": H, "rotation": 90}])
def test_a_size_the_file_does_not_have_is_refused(videos, fields):
    camera = file_camera(videos["pattern"], **fields)
    with pytest.raises(CameraSettingsError, match=r"camera 'front' \(.*pattern.avi\).*64x48"):
        camera.connect()
    assert not camera.is_connected


def test_read_latest_is_the_newest_and_read_waits_for_a_new_one(videos):
    with file_camera(videos["counter"], fps=50) as camera:
        first = frame_index(camera.read_latest())
        time.sleep(0.3)  # ~15 frames at 50 fps: only the newest is kept, not a queue
        later = frame_index(camera.read_latest())
        assert (later - first) % 40 >= 3
        newest = frame_index(camera.read_latest())
        fresh = frame_index(camera.read())  # captured after the call: newer than `newest`
        assert fresh != newest
        assert 1 <= (fresh - newest) % 40 <= 20


def test_async_read_hands_each_frame_out_once(videos):
    with file_camera(videos["counter"], fps=50) as camera:
        seen = [frame_index(camera.async_read(timeout_ms=1000)) for _ in range(8)]
    steps = [(b - a) % 40 for a, b in itertools.pairwise(seen)]
    assert all(step >= 1 for step in steps), seen  # never the same frame twice


def test_frames_are_paced_at_fps(videos):
    with file_camera(videos["counter"], fps=20) as camera:
        assert camera.fps == 20
        start = time.perf_counter()
        for _ in range(8):
            camera.read()
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.8 * 7 / 20  # a file decodes far faster than that: it is held to fps


def test_fps_defaults_to_the_files(videos):
    with file_camera(videos["counter"]) as camera:
        assert camera.fps == 30


def test_a_looping_file_starts_again(videos):
    with file_camera(videos["short"], fps=100) as camera:
        seen = [frame_index(camera.async_read(timeout_ms=1000)) for _ in range(16)]
    assert set(seen) <= set(range(6))
    assert any(b < a for a, b in itertools.pairwise(seen)), f"never wrapped: {seen}"


def test_an_image_file_is_a_still_camera(tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), pattern_frame())
    with file_camera(path, fps=100) as camera:
        frames = [camera.read() for _ in range(3)]
    for frame in frames:
        assert frame.shape == (H, W, 3)
        assert near(quadrant_colour(frame, True, True), (255, 0, 0), tolerance=0)


def test_reconnect_after_disconnect(videos):
    camera = file_camera(videos["counter"], fps=50)
    for _ in range(2):
        camera.connect()
        assert camera.is_connected and camera.read().shape == (H, W, 3)
        camera.disconnect()
        assert not camera.is_connected


def test_save_frames_writes_a_png_per_camera(videos, tmp_path):
    cameras = {"front": file_camera(videos["pattern"]),
               "wrist cam": file_camera(videos["pattern"], color_mode="bgr")}
    for camera in cameras.values():
        camera.connect()
    try:
        saved = save_frames(cameras, tmp_path / "shots")
    finally:
        for camera in cameras.values():
            camera.disconnect()
    assert sorted(p.name for p in saved.values()) == ["front.png", "wrist_cam.png"]
    for path in saved.values():  # whatever the colour mode, the picture shows red as red
        image = cv2.imread(str(path))
        assert near(quadrant_colour(image, True, True), RED_BGR)
