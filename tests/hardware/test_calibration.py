"""LeRobot's calibration files and normalisation: a file as LeRobot writes it gives LeRobot's
numbers (hardware_facts §3.3), and hiljax writes files LeRobot reads."""

import json
import logging
from functools import partial

import pytest

from hiljax.hardware.motors.calibration import (
    CalibrationError,
    MotorCalibration,
    NormMode,
    calibration_path,
    find_calibration_file,
    load_calibration,
    normalize,
    save_calibration,
    unnormalize,
)

# A calibration file exactly as LeRobot 0.4 writes one (json.dump, indent 4, field order).
LEROBOT_FILE = """{
    "shoulder_pan": {
        "id": 1,
        "drive_mode": 0,
        "homing_offset": -1021,
        "range_min": 1000,
        "range_max": 3000
    },
    "gripper": {
        "id": 6,
        "drive_mode": 1,
        "homing_offset": 1507,
        "range_min": 1000,
        "range_max": 3000
    }
}"""


@pytest.fixture
def lerobot_file(tmp_path):
    path = tmp_path / "so_follower" / "my_arm.json"
    path.parent.mkdir()
    path.write_text(LEROBOT_FILE)
    return path


def test_a_lerobot_file_gives_the_documented_numbers(lerobot_file):
    cal = load_calibration(lerobot_file)
    pan, gripper = cal["shoulder_pan"], cal["gripper"]
    assert pan == MotorCalibration(id=1, drive_mode=0, homing_offset=-1021, range_min=1000,
                                   range_max=3000)
    degrees = {"mode": NormMode.DEGREES, "apply_drive_mode": True}
    assert normalize(2047, pan, **degrees) == pytest.approx(4.1319, abs=1e-4)
    assert unnormalize(10.0, pan, **degrees) == 2113
    # RANGE_M100_100 with drive mode 1 (Feetech applies it in software): 1500 -> +50.
    ranged = {"mode": NormMode.RANGE_M100_100, "apply_drive_mode": True}
    assert normalize(1500, gripper, **ranged) == pytest.approx(50.0)
    assert unnormalize(-50.0, gripper, **ranged) == 2500
    # Dynamixel inverts in hardware: the same record read without software drive mode.
    assert normalize(1500, gripper, NormMode.RANGE_M100_100, apply_drive_mode=False) == -50.0
    # RANGE modes saturate outside the recorded range; DEGREES does not.
    assert normalize(500, pan, NormMode.RANGE_0_100, apply_drive_mode=True) == 0.0
    assert normalize(500, pan, **degrees) < -130


def test_round_trip_writes_lerobots_layout(tmp_path, lerobot_file):
    cal = load_calibration(lerobot_file)
    out = save_calibration(tmp_path / "copy.json", cal)
    assert out.read_text() == LEROBOT_FILE  # byte for byte what LeRobot writes
    assert load_calibration(out) == cal
    assert list(json.loads(out.read_text())["gripper"]) == [
        "id", "drive_mode", "homing_offset", "range_min", "range_max"]


@pytest.mark.parametrize("content, message", [
    ("{", "not a readable calibration file"),
    ("[]", "keyed by motor name"),
    ('{"a": {"id": 1}}', "needs exactly the fields"),
    ('{"a": {"id": 1, "drive_mode": 2, "homing_offset": 0, "range_min": 0, "range_max": 9}}',
     "drive_mode must be 0 or 1"),
    ('{"a": {"id": "1", "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 9}}',
     "must be an integer"),
])
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)
    with pytest.raises(CalibrationError, match="no calibration file"):
        load_calibration(tmp_path / "missing.json")


def test_lerobots_location_convention(tmp_path, monkeypatch):
    for name in ("HF_LEROBOT_CALIBRATION", "HF_LEROBOT_HOME", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert calibration_path("robots", "so_follower", "arm") == (
        tmp_path / "hf" / "lerobot" / "calibration" / "robots" / "so_follower" / "arm.json")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "home"))
    assert calibration_path("teleoperators", "so_leader", None) == (
        tmp_path / "home" / "calibration" / "teleoperators" / "so_leader" / "None.json")
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    assert calibration_path("robots", "koch_follower", "k") == (
        tmp_path / "cal" / "robots" / "koch_follower" / "k.json")
    assert calibration_path("robots", "x", "k", calibration_dir=tmp_path / "mine") == (
        tmp_path / "mine" / "k.json")


def test_equal_bounds_and_non_finite_goals_are_refused():
    flat = MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=5, range_max=5)
    with pytest.raises(CalibrationError, match="range_min == range_max"):
        normalize(5, flat, NormMode.DEGREES, apply_drive_mode=True)
    ok = MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=0, range_max=4095)
    with pytest.raises(ValueError, match="not a finite number"):
        unnormalize(float("nan"), ok, NormMode.DEGREES, apply_drive_mode=True)


def test_an_older_lerobot_directory_is_read_when_the_current_file_is_absent(tmp_path,
                                                                           monkeypatch, caplog):
    """LeRobot < 0.4 named the SO arms' directories so100_follower, so101_leader, ... (0.4:
    so_follower / so_leader) and 0.4 no longer finds those files (hardware_facts §3.1)."""
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    current = tmp_path / "robots" / "so_follower" / "arm.json"
    legacy = tmp_path / "robots" / "so101_follower" / "arm.json"
    find = partial(find_calibration_file, "robots", "so_follower", "arm",
                   legacy_device_names=("so101_follower",))
    assert find() == current  # neither exists: the current name (the error names it)
    legacy.parent.mkdir(parents=True)
    legacy.write_text(LEROBOT_FILE)
    with caplog.at_level(logging.INFO, logger="hiljax.hardware.motors.calibration"):
        assert find() == legacy
    assert f"using {legacy}" in caplog.text and str(current) in caplog.text
    assert find_calibration_file("robots", "so_follower", "arm") == current  # no legacy names
    # An explicit calibration_dir is the directory: never searched elsewhere.
    assert find(calibration_dir=tmp_path / "mine") == tmp_path / "mine" / "arm.json"
    # Once the current file exists it wins.
    save_calibration(current, load_calibration(legacy))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hiljax.hardware.motors.calibration"):
        assert find() == current
    assert not caplog.text


def test_the_so_arms_know_their_older_directory_names():
    from hiljax.hardware.robots import ARMS

    assert {name: spec.legacy_device_names for name, spec in ARMS.items()} == {
        "so100_follower": ("so100_follower",), "so101_follower": ("so101_follower",),
        "so100_leader": ("so100_leader",), "so101_leader": ("so101_leader",),
        "moss_follower": (), "koch_follower": (), "koch_leader": ()}
