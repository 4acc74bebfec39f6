"""The SO-100 follower through the real driver, over a real pseudo-terminal with the virtual arm
behind it: what a real arm runs, with the servos emulated at the wire."""

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hiljax.hardware.motors import (
    CalibrationError,
    ChecksumError,
    MotorBusError,
    MotorTimeoutError,
    PortError,
)
from hiljax.hardware.robots import ServoArm, ServoArmConfig
from hiljax.hardware.virtual import VirtualSO100

ROOT = Path(__file__).resolve().parents[2]
TICK_DEG = 360 / 4095
MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@pytest.fixture
def virtual_arm(tmp_path):
    arm = VirtualSO100(calibrated=True)
    arm.start()
    arm.save_calibration(tmp_path / "follower.json")
    yield arm
    arm.stop()


def make_robot(arm, tmp_path, **overrides) -> ServoArm:
    config = ServoArmConfig(type="so100_follower", port=arm.port, id="follower",
                            calibration_dir=str(tmp_path), **overrides)
    robot = ServoArm(config)
    robot.connect()
    return robot


def torques(arm) -> dict[str, int]:
    return {m: arm.register(m, "Torque_Enable") for m in MOTORS}


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_connect_reads_the_joints_in_degrees_and_configures_the_follower(virtual_arm, tmp_path):
    virtual_arm.move_by_hand("elbow_flex", 30.0)
    virtual_arm.move_by_hand("gripper", 40.0)
    robot = make_robot(virtual_arm, tmp_path)
    try:
        read = robot.read_joint_positions()
        truth = virtual_arm.joint_positions()
        np.testing.assert_allclose(read[:5], truth[:5], atol=TICK_DEG)
        assert read[5] == pytest.approx(truth[5], abs=0.1)
        assert read[2] == pytest.approx(30.0, abs=TICK_DEG)
        # LeRobot's follower configure: softer PID, a gentle gripper, stiff afterwards.
        assert virtual_arm.register("shoulder_pan", "P_Coefficient") == 16
        assert virtual_arm.register("gripper", "Max_Torque_Limit") == 500
        assert set(torques(virtual_arm).values()) == {1}
        assert robot.read_joint_currents().shape == (6,)
    finally:
        robot.disconnect()
    assert set(torques(virtual_arm).values()) == {0}  # disable_torque_on_disconnect


def test_goals_move_the_arm_within_the_calibrated_limits(virtual_arm, tmp_path):
    robot = make_robot(virtual_arm, tmp_path)
    try:
        robot.read_joint_positions()
        goal = np.array([10.0, 20.0, -30.0, 15.0, 45.0, 60.0], np.float32)
        sent = robot.send_joint_targets(goal)
        np.testing.assert_array_equal(sent, goal)
        wait_until(lambda: np.allclose(robot.read_joint_positions()[:5], goal[:5], atol=0.5))
        # A goal beyond the calibrated range is clipped to it (shoulder_pan: +-120 deg).
        robot.read_joint_positions()
        sent = robot.send_joint_targets(np.array([500.0, 20, -30, 15, 45, 60], np.float32))
        assert sent[0] == pytest.approx(120.0, abs=2 * TICK_DEG)
    finally:
        robot.disconnect()


def test_max_relative_target_clips_every_goal(virtual_arm, tmp_path):
    robot = make_robot(virtual_arm, tmp_path, max_relative_target=5.0)
    try:
        present = robot.read_joint_positions()
        sent = robot.send_joint_targets(present + np.array([30, -30, 2, 0, 0, 50], np.float32))
        np.testing.assert_allclose(sent - present, [5, -5, 2, 0, 0, 5], atol=2 * TICK_DEG)
        wait_until(lambda: abs(virtual_arm.joint_positions()[0] - present[0] - 5) < 0.5)
    finally:
        robot.disconnect()


def test_no_goal_is_sent_when_the_last_read_failed(virtual_arm, tmp_path):
    robot = make_robot(virtual_arm, tmp_path)
    try:
        with pytest.raises(MotorBusError, match="last read failed"):
            robot.send_joint_targets(np.zeros(6, np.float32))
        robot.read_joint_positions()
        virtual_arm.set_faults("hang=3")
        with pytest.raises(MotorTimeoutError):
            robot.read_joint_positions()
        virtual_arm.set_faults(None)
        with pytest.raises(MotorBusError, match="last read failed"):
            robot.send_joint_targets(np.zeros(6, np.float32))
    finally:
        robot.disconnect()


@pytest.mark.parametrize("faults, error, names", [
    ("hang=3", MotorTimeoutError, "elbow_flex (id 3)"),
    ("drop=2", MotorTimeoutError, "shoulder_lift (id 2)"),
    ("corrupt=6", ChecksumError, "gripper (id 6)"),
])
def test_a_misbehaving_motor_is_named_and_the_arm_goes_limp(virtual_arm, tmp_path, faults,
                                                            error, names):
    robot = make_robot(virtual_arm, tmp_path)
    try:
        virtual_arm.set_faults(faults)
        with pytest.raises(error, match=f"{re.escape(names)}.*{virtual_arm.port}"):
            robot.read_joint_positions()
        # Every motor that still executes commands was switched off.
        hung = {"hang=3": "elbow_flex"}.get(faults)
        assert all(v == 0 for m, v in torques(virtual_arm).items() if m != hung)
    finally:
        virtual_arm.set_faults(None)
        robot.disconnect()


def test_a_vanished_port_is_a_clear_error(tmp_path):
    arm = VirtualSO100(calibrated=True)
    arm.start()
    arm.save_calibration(tmp_path / "follower.json")
    robot = make_robot(arm, tmp_path)
    arm.stop()  # the USB adapter is unplugged
    with pytest.raises(PortError, match="port"):
        robot.read_joint_positions()
    robot.disconnect()  # never raises on the way out
    assert not robot.is_connected


def test_connect_without_a_calibration_file_says_how_to_make_one(virtual_arm, tmp_path):
    config = ServoArmConfig(type="so101_follower", port=virtual_arm.port, id="other",
                            calibration_dir=str(tmp_path))
    with pytest.raises(CalibrationError, match="python -m hiljax.calibrate --robot "
                                               "so101_follower"):
        ServoArm(config).connect()


def test_motors_that_lost_their_calibration_get_the_file_written(tmp_path):
    arm = VirtualSO100(calibrated=False)  # factory EEPROM: offsets 0, limits 0..4095
    arm.start()
    try:
        arm.save_calibration(tmp_path / "follower.json")
        robot = make_robot(arm, tmp_path)
        assert robot.bus.is_calibrated
        expected = arm.calibration()
        for motor in MOTORS:
            assert arm.register(motor, "Homing_Offset") == expected[motor].homing_offset
            assert arm.register(motor, "Min_Position_Limit") == expected[motor].range_min
        robot.disconnect()
    finally:
        arm.stop()


CTRL_C_SCRIPT = """
import sys, time
import numpy as np
from hiljax.hardware.robots import ServoArm, ServoArmConfig
robot = ServoArm(ServoArmConfig(type="so100_follower", port=sys.argv[1], id="follower",
                                calibration_dir=sys.argv[2]))
robot.connect()
try:
    print("running", flush=True)
    while True:  # the control loop: read, command
        present = robot.read_joint_positions()
        robot.send_joint_targets(present + np.float32(0.1))
finally:
    robot.disconnect()
"""


def test_ctrl_c_during_the_control_loop_leaves_the_arm_limp(virtual_arm, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, virtual_arm.port, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        assert process.stdout.readline().strip() == "running"
        wait_until(lambda: set(torques(virtual_arm).values()) == {1})
        time.sleep(0.3)  # inside the loop: reads and writes in flight
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in process.stderr.read()
    assert set(torques(virtual_arm).values()) == {0}


def test_a_camera_that_stops_leaves_the_arm_limp(virtual_arm, tmp_path):
    """A camera whose source ends (loop=False at the end of its file) goes stale: reading it is
    an error naming the camera, and the arm goes limp as on a bus fault."""
    import cv2

    from hiljax.hardware.cameras import CameraConfig, CameraError

    video = str(tmp_path / "front.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 24))
    for _ in range(3):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    camera = CameraConfig(type="file", index_or_path=video, width=32, height=24, fps=30,
                          loop=False, max_age_ms=100, warmup_s=0.1)
    robot = make_robot(virtual_arm, tmp_path, cameras={"front": camera})
    try:
        assert set(torques(virtual_arm).values()) == {1}
        time.sleep(0.5)  # the three frames are long gone
        with pytest.raises(CameraError, match="front"):
            robot.read_cameras()
        assert set(torques(virtual_arm).values()) == {0}
    finally:
        robot.disconnect()


# ---------------------------------------------------------------------------------------------
# disable_torque_on_disconnect=False (LeRobot: the follower keeps torque; leaders always go limp)


def test_a_follower_configured_so_keeps_torque_after_disconnect(virtual_arm, tmp_path):
    robot = make_robot(virtual_arm, tmp_path, disable_torque_on_disconnect=False)
    robot.read_joint_positions()
    robot.send_joint_targets(np.zeros(6, np.float32) + 5)
    robot.disconnect()
    assert not robot.is_connected
    assert set(torques(virtual_arm).values()) == {1}  # still holding its pose


def test_a_leader_goes_limp_on_disconnect_whatever_the_flag(virtual_arm, tmp_path):
    leader = ServoArm(ServoArmConfig(type="so100_leader", port=virtual_arm.port, id="follower",
                                     calibration_dir=str(tmp_path),
                                     disable_torque_on_disconnect=False))
    leader.connect()
    assert set(torques(virtual_arm).values()) == {0}  # a leader is limp after connect
    leader.bus.enable_torque()  # as the geared leader does while it follows the follower
    assert set(torques(virtual_arm).values()) == {1}
    leader.disconnect()
    assert set(torques(virtual_arm).values()) == {0}


# ---------------------------------------------------------------------------------------------
# Status error bits in a sync read: warned once per change, naming motor and port; value kept


def test_an_overload_bit_is_warned_once_and_the_reading_kept(virtual_arm, tmp_path, caplog):
    robot = make_robot(virtual_arm, tmp_path)
    try:
        before = robot.read_joint_positions()
        virtual_arm.set_faults("error=6:0x20")  # the gripper reports overload
        with caplog.at_level(logging.INFO, logger="hiljax.hardware.motors.bus"):
            read = robot.read_joint_positions()
            robot.send_joint_targets(read)  # reading ok: commands still go out
            robot.read_joint_positions()
            np.testing.assert_allclose(read, before, atol=0.1)  # the value is used
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warned) == 1, warned  # once, not once per read
            assert f"gripper (id 6) on {virtual_arm.port}" in warned[0]
            assert "overload" in warned[0]
            assert robot.status_errors == {"gripper": 0x20}
            assert set(torques(virtual_arm).values()) == {1}  # stiff: nothing was switched off
            virtual_arm.set_faults(None)
            robot.read_joint_positions()
        assert robot.status_errors == {}
        assert "gripper (id 6)" in caplog.text and "no longer reports an error" in caplog.text
    finally:
        virtual_arm.set_faults(None)
        robot.disconnect()


# ---------------------------------------------------------------------------------------------
# joint_limits from the config: narrow the calibrated range, never widen it


def test_joint_limits_narrow_the_calibrated_range(virtual_arm, tmp_path):
    wide = make_robot(virtual_arm, tmp_path)
    low, high = wide._limits
    wide.disconnect()
    robot = make_robot(virtual_arm, tmp_path, joint_limits={
        "shoulder_pan": [-30, 40], "gripper": (10.0, 90.0),
        "elbow_flex": (-1000.0, 1000.0)})  # wider than calibrated: the calibration wins
    assert robot.config.joint_limits["shoulder_pan"] == (-30.0, 40.0)  # a list became a tuple
    try:
        robot.read_joint_positions()
        sent = robot.send_joint_targets(np.array([100, 0, 500, 0, 0, 100], np.float32))
        assert sent[0] == pytest.approx(40.0) and sent[5] == pytest.approx(90.0)
        assert sent[2] == pytest.approx(high[2])  # not 500
        robot.read_joint_positions()
        sent = robot.send_joint_targets(np.array([-100, 0, -500, 0, 0, 0], np.float32))
        assert sent[0] == pytest.approx(-30.0) and sent[5] == pytest.approx(10.0)
        assert sent[2] == pytest.approx(low[2])
        robot.read_joint_positions()
        inside = np.array([12.5, 0, 0, 0, 0, 50], np.float32)  # within every range: unchanged
        np.testing.assert_array_equal(robot.send_joint_targets(inside), inside)
    finally:
        robot.disconnect()


@pytest.mark.parametrize("limits, error, match", [
    ({"elbow": (0, 1)}, ValueError, "unknown motors"),
    ({"gripper": (50, 50)}, ValueError, "min < max"),
    ({"gripper": (60, 40)}, ValueError, "min < max"),
    ({"gripper": (0, float("nan"))}, ValueError, "finite"),
    ({"gripper": (0, 1, 2)}, ValueError, r"\[min, max\]"),
    ({"gripper": "0-100"}, ValueError, r"\[min, max\]"),
    ({"gripper": "05"}, ValueError, r"\[min, max\]"),
    ([("gripper", (0, 100))], TypeError, "map motor names"),
])
def test_joint_limits_are_checked(limits, error, match):
    with pytest.raises(error, match=match):
        ServoArmConfig(type="so100_follower", port="/dev/null", joint_limits=limits)


def test_joint_limits_outside_the_calibrated_range_fail_connect_limp(virtual_arm, tmp_path):
    config = ServoArmConfig(type="so100_follower", port=virtual_arm.port, id="follower",
                            calibration_dir=str(tmp_path),
                            joint_limits={"shoulder_pan": (400.0, 500.0)})
    robot = ServoArm(config)
    with pytest.raises(CalibrationError, match="shoulder_pan.*outside its calibrated range"):
        robot.connect()
    assert not robot.is_connected
    assert set(torques(virtual_arm).values()) == {0}


def test_the_env_builder_passes_joint_limits_from_the_robot_config():
    from types import SimpleNamespace

    from hiljax.envs.robot_types import ROBOT_TYPES

    fields = {"port": "/dev/null", "id": "arm", "calibration_dir": None,
              "disable_torque_on_disconnect": True, "max_relative_target": None,
              "use_degrees": True, "cameras": {}}
    robot = ROBOT_TYPES["so101"].build(
        SimpleNamespace(**fields, joint_limits={"wrist_flex": [-90, 90]}), 10.0)
    assert robot.config.joint_limits == {"wrist_flex": (-90.0, 90.0)}
    assert ROBOT_TYPES["so101"].build(SimpleNamespace(**fields), 10.0).config.joint_limits is None


# ---------------------------------------------------------------------------------------------
# An older LeRobot release's calibration directory


def test_a_calibration_under_an_older_lerobot_name_is_read(virtual_arm, tmp_path, monkeypatch,
                                                           caplog):
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    legacy = tmp_path / "cal" / "robots" / "so101_follower" / "arm.json"
    virtual_arm.save_calibration(legacy)
    config = ServoArmConfig(type="so101_follower", port=virtual_arm.port, id="arm")
    assert config.calibration_file == tmp_path / "cal" / "robots" / "so_follower" / "arm.json"
    robot = ServoArm(config)
    with caplog.at_level(logging.INFO, logger="hiljax.hardware.motors.calibration"):
        robot.connect()
    try:
        assert robot.calibration_source == legacy
        assert str(legacy) in caplog.text and "older LeRobot" in caplog.text
        assert robot.bus.is_calibrated and robot.read_joint_positions().shape == (6,)
    finally:
        robot.disconnect()
    assert not config.calibration_file.exists()  # read, never written there
