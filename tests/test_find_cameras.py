"""find_cameras and `python -m hiljax.find_cameras`: on a machine without cameras (an empty
list, a clear line, exit 0), and the listing + picture path with a file standing in for a
device."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hiljax import find_cameras as cli
from hiljax.hardware.cameras import find_cameras, opencv_devices

ROOT = Path(__file__).resolve().parents[1]


def _picture(path: Path) -> Path:
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (0, 0, 255)  # left half red (BGR)
    cv2.imwrite(str(path), frame)
    return path


def test_find_cameras_on_this_machine_does_not_crash():
    found = find_cameras(max_index=4, include_realsense=False)
    assert isinstance(found, list)
    if not opencv_devices(max_index=4):
        assert found == []
    for entry in found:
        assert entry["type"] == "opencv" and entry["width"] > 0 and entry["height"] > 0


def test_find_cameras_probes_given_devices(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "cam.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    found = find_cameras(devices=[str(tmp_path / "cam.avi"), str(tmp_path / "absent.avi")],
                         include_realsense=False)
    assert len(found) == 1
    assert found[0]["index_or_path"] == str(tmp_path / "cam.avi")
    assert (found[0]["width"], found[0]["height"], found[0]["fps"]) == (64, 48, 25)


def test_cli_end_to_end_without_cameras(tmp_path):
    if opencv_devices():
        pytest.skip("this machine has video devices")
    result = subprocess.run(
        [sys.executable, "-m", "hiljax.find_cameras", "--output-dir", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "No cameras found" in result.stdout
    assert not (tmp_path / "out").exists()


def test_cli_lists_and_saves_a_picture(tmp_path, monkeypatch, capsys):
    still = _picture(tmp_path / "still.png")
    entry = {"type": "file", "index_or_path": str(still), "width": 64, "height": 48, "fps": 30}
    monkeypatch.setattr(cli, "find_cameras", lambda max_index: [entry])
    assert cli.main(["--output-dir", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Found 1 camera(s):" in printed and "64x48" in printed
    saved = list((tmp_path / "out").glob("*.png"))
    assert len(saved) == 1 and saved[0].name.startswith("file_")
    image = cv2.imread(str(saved[0]))
    assert tuple(image[24, 8]) == (0, 0, 255)  # red stays red through the RGB camera


def test_cli_reports_a_camera_it_could_not_read(tmp_path, monkeypatch, capsys):
    entry = {"type": "opencv", "index_or_path": "/dev/video98", "width": 640, "height": 480,
             "fps": 30}
    monkeypatch.setattr(cli, "find_cameras", lambda max_index: [entry])
    assert cli.main(["--output-dir", str(tmp_path / "out")]) == 1
    assert "no picture" in capsys.readouterr().out
