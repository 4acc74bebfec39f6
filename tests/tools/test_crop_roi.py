"""`python -m hiljax.crop_roi` on a headless machine: frames from a tiny recorded dataset (or
image files, or a config's robot), rectangles from --roi, written into an env config."""

from __future__ import annotations

import io
import json
import logging

import cv2
import numpy as np
import pytest

from hiljax.crop_roi import drag_to_roi, main
from hiljax.datasets import DatasetWriter
from hiljax.envs.configs import load_env_config
from tests.tools.helpers import ROOT, TIMEOUT_S, tool_process

TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
SHAPES = {"front": (32, 48), "wrist": (24, 32)}  # (height, width)
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [6], "names": None},
    **{f"observation.images.{cam}": {"dtype": "image", "shape": [h, w, 3], "names": None}
       for cam, (h, w) in SHAPES.items()},
    "action": {"dtype": "float32", "shape": [4], "names": None},
}


def image(shape, t: int) -> np.ndarray:
    frame = np.zeros((*shape, 3), np.uint8)
    frame[..., 0], frame[..., 1] = 10 * t, np.arange(shape[1], dtype=np.uint8) * 5
    return frame


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "ds"
    with DatasetWriter.create(root, fps=10, features=FEATURES, use_videos=False,
                              robot_type="so101") as writer:
        for _episode in range(2):
            for t in range(3):
                writer.add_frame({"observation.state": np.zeros(6, np.float32),
                                  "action": np.zeros(4, np.float32),
                                  **{f"observation.images.{cam}": image(shape, t)
                                     for cam, shape in SHAPES.items()}}, task="pick")
            writer.save_episode()
    return root


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(TEMPLATE.read_text())
    return path


def run(*argv: str) -> tuple[int, str]:
    screen = io.StringIO()
    return main(list(argv), stdout=screen), screen.getvalue()


def test_rois_from_the_command_line_go_into_the_config(dataset, config):
    original = json.loads(config.read_text())
    code, screen = run("--dataset", str(dataset), "--episode", "1",
                       "--roi", "front=2,3,20,30", "--roi", "observation.images.wrist=0,0,24,32",
                       "--write", str(config), "--resize", "64", "64")
    assert code == 0
    expected = {"observation.images.front": [2, 3, 20, 30],
                "observation.images.wrist": [0, 0, 24, 32]}
    assert json.loads(screen.splitlines()[1]) == expected  # the printed dict, copyable
    cfg = load_env_config(config)
    assert cfg.wrapper.crop_params_dict == {k: tuple(v) for k, v in expected.items()}
    assert cfg.wrapper.resize_size == (64, 64)
    written = json.loads(config.read_text())
    for data in (written, original):
        del data["wrapper"]["crop_params_dict"], data["wrapper"]["resize_size"]
    assert written == original


def test_without_write_nothing_changes(dataset, config):
    before = config.read_text()
    code, screen = run("--dataset", str(dataset), "--roi", "wrist=1,1,5,5")
    assert code == 0 and '"observation.images.wrist": [1, 1, 5, 5]' in screen
    assert config.read_text() == before


@pytest.mark.parametrize("bad", ["front", "front=1,2,3", "front=a,b,c,d", "front=-1,0,10,10",
                                 "front=0,0,0,10", "=1,2,3,4", "front=1.5,2,3,4"])
def test_a_bad_roi_string_is_a_usage_error(dataset, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", str(dataset), "--roi", bad])
    assert exit_info.value.code == 2
    assert "CAMERA=TOP,LEFT,HEIGHT,WIDTH" in capsys.readouterr().err


@pytest.mark.parametrize("roi", ["front=20,0,13,10", "front=0,40,10,9", "wrist=0,0,25,1"])
def test_a_rectangle_outside_the_frame_is_an_error(dataset, config, roi, caplog):
    before = config.read_text()
    with caplog.at_level(logging.ERROR):
        code, _ = run("--dataset", str(dataset), "--roi", roi, "--write", str(config))
    assert code == 2 and "reaches outside the" in caplog.text
    assert config.read_text() == before


def test_an_unknown_camera_and_episode_are_errors(dataset, caplog):
    with caplog.at_level(logging.ERROR):
        assert run("--dataset", str(dataset), "--roi", "top=0,0,5,5")[0] == 2
        assert run("--dataset", str(dataset), "--episode", "2", "--roi", "front=0,0,5,5")[0] == 2
    assert "the cameras are ['observation.images.front'" in caplog.text
    assert "has 2 episode(s)" in caplog.text


def test_a_directory_that_is_no_dataset_is_an_error(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert run("--dataset", str(tmp_path), "--roi", "front=0,0,5,5")[0] == 1
    assert "meta/info.json" in caplog.text


def test_without_roi_and_without_a_display_it_says_how(dataset, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.ERROR):
        assert run("--dataset", str(dataset))[0] == 2
    assert "give the rectangles with --roi" in caplog.text
    assert "observation.images.front 32x48" in caplog.text


def test_image_files_as_frames(tmp_path, config):
    path = tmp_path / "front.png"
    cv2.imwrite(str(path), np.zeros((40, 50, 3), np.uint8))
    code, _ = run("--image", f"front={path}", "--roi", "front=0,0,40,50", "--write", str(config))
    assert code == 0
    assert load_env_config(config).wrapper.crop_params_dict == {
        "observation.images.front": (0, 0, 40, 50)}
    assert run("--image", f"front={tmp_path / 'missing.png'}", "--roi", "front=0,0,1,1")[0] == 2


def test_frames_from_a_config_robot_with_cameras(tmp_path, caplog):
    """The robot of the config takes the pictures (here the fake one); a config without
    cameras, or whose arm is not there, says so."""
    path = tmp_path / "fake.json"
    path.write_text(json.dumps({"robot": {"type": "fake", "cameras": ["front"],
                                          "image_size": 40}}))
    assert run("--config", str(path), "--roi", "front=0,0,40,40", "--write", str(path))[0] == 0
    assert load_env_config(path).wrapper.crop_params_dict == {
        "observation.images.front": (0, 0, 40, 40)}
    blind = tmp_path / "blind.json"
    blind.write_text(json.dumps({**json.loads(TEMPLATE.read_text()), "robot": {
        **json.loads(TEMPLATE.read_text())["robot"], "cameras": []}}))
    with caplog.at_level(logging.ERROR):
        assert run("--config", str(blind), "--roi", "front=0,0,1,1")[0] == 2
        unplugged = tmp_path / "unplugged.json"
        unplugged.write_text(TEMPLATE.read_text().replace("/dev/ttyACM0",
                                                          str(tmp_path / "ttyACM0")))
        assert run("--config", str(unplugged), "--roi", "front=0,0,1,1")[0] == 1
    assert "robot.cameras is empty" in caplog.text and "ttyACM0" in caplog.text


def test_a_drag_becomes_a_rectangle_of_the_frame():
    shape = (32, 48, 3)
    assert drag_to_roi((40, 80), (8, 4), 4, shape) == (1, 2, 19, 8)  # any corner first
    assert drag_to_roi((-5, -5), (500, 500), 4, shape) == (0, 0, 32, 48)  # clipped
    assert drag_to_roi((8, 8), (9, 8), 4, shape) is None  # a click


def test_as_a_process(dataset):
    process = tool_process("crop_roi", "--dataset", str(dataset), "--roi", "front=1,2,3,4")
    out, err = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, err
    assert '{"observation.images.front": [1, 2, 3, 4]}' in out


class FakeWindows:
    """OpenCV's window calls, played by a script: a person who drags and presses keys (this
    OpenCV has no GUI). Each waitKey takes the next step: a drag (mouse events) or a key."""

    def __init__(self, script):
        self.script, self.shown, self.callbacks = list(script), [], {}

    def install(self, monkeypatch):
        monkeypatch.setattr("hiljax.crop_roi.window_problem", lambda: None)
        for name in ("namedWindow", "setMouseCallback", "imshow", "waitKey",
                     "getWindowProperty", "destroyWindow"):
            monkeypatch.setattr(cv2, name, getattr(self, name))

    def namedWindow(self, name, *_):
        self.shown.append(name)

    def setMouseCallback(self, name, callback):
        self.callbacks[name] = callback

    def imshow(self, name, canvas):
        self.canvas = canvas

    def getWindowProperty(self, *_):
        return 1.0

    def destroyWindow(self, name):
        pass

    def waitKey(self, _delay):
        step = self.script.pop(0)
        if isinstance(step, str):
            return ord(step) if len(step) == 1 else 27  # "ESC"
        (x0, y0), (x1, y1) = step
        callback = self.callbacks[self.shown[-1]]
        callback(cv2.EVENT_LBUTTONDOWN, x0, y0, 0, None)
        callback(cv2.EVENT_MOUSEMOVE, (x0 + x1) // 2, (y0 + y1) // 2, 0, None)
        callback(cv2.EVENT_LBUTTONUP, x1, y1, 0, None)
        return 255  # no key


def test_the_window_drag_redo_confirm_and_skip(dataset, config, monkeypatch):
    """front: a drag, r (redo), another drag, c; wrist: ESC. Frames are shown enlarged
    (32x48 -> x10), so window pixels map back to the frame's."""
    windows = FakeWindows([((0, 0), (100, 100)), "r", ((30, 20), (330, 260)), "c", "ESC"])
    windows.install(monkeypatch)
    code, screen = run("--dataset", str(dataset), "--write", str(config))
    assert code == 0 and "press c to confirm, r to redo, ESC to skip" in screen
    assert windows.shown[0].startswith("observation.images.front")
    assert windows.canvas.shape == (24 * 16, 32 * 16, 3)  # the wrist frame, x16
    assert load_env_config(config).wrapper.crop_params_dict == {
        "observation.images.front": (2, 3, 24, 30)}  # window (30, 20)-(330, 260)


def test_every_camera_skipped_writes_nothing(dataset, config, monkeypatch, caplog):
    before = config.read_text()
    FakeWindows(["ESC", "ESC"]).install(monkeypatch)
    with caplog.at_level(logging.ERROR):
        assert run("--dataset", str(dataset), "--write", str(config))[0] == 1
    assert "every camera was skipped" in caplog.text and config.read_text() == before
