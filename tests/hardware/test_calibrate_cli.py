"""`python -m hiljax.calibrate` end to end, as a person runs it: the real interactive procedure
(hardware_facts §3.2) against a virtual SO-100 over its real pseudo-terminal, in-process.

The CLI runs in a thread with a pipe as its keyboard and a thread-safe text sink as its screen
(tests/tools/helpers.py's ToolSession, as for the other setup tools).
The test plays the person: it waits for each prompt to appear, moves joints by hand (torque is
off, so a joint stays where it is put) and presses ENTER. While the ranges are recorded, each
move is confirmed by the live table showing the joint's new position before the next move, so
no sample depends on timing. The checks: the LeRobot file, the motors' EEPROM, a ServoArm
reading the calibrated joints, torque off at the end, an existing file used or redone (`c`),
the live table (LeRobot's, redrawn in place on a terminal) and the failures (input closed, a
joint that never moved).
"""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from hiljax.calibrate import _show, main
from hiljax.hardware.motors.calibration import FIELDS, load_calibration
from hiljax.hardware.robots import MOTOR_NAMES, ServoArm, ServoArmConfig
from hiljax.hardware.virtual import VirtualSO100
from hiljax.run.setup_tools import Console
from tests.tools.helpers import ToolSession

ARM_ID = "test_follower"
MIDDLE = {"shoulder_pan": 0.0, "shoulder_lift": 0.0, "elbow_flex": 0.0, "wrist_flex": 0.0,
          "wrist_roll": 0.0, "gripper": 50.0}
# Symmetric about the middle (so DEGREES' 0 = mid of the range lands on the middle pose), inside
# the virtual arm's mechanical stops; the gripper goes the whole way, closed to open.
SWING = {"shoulder_pan": 40.0, "shoulder_lift": 15.0, "elbow_flex": 45.0, "wrist_flex": 35.0,
         "gripper": 50.0}
REGISTERS = {"homing_offset": "Homing_Offset", "range_min": "Min_Position_Limit",
             "range_max": "Max_Position_Limit"}
ROW = re.compile(r"^(\w+)\s*\|\s*(-?\d+) \|\s*(-?\d+) \|\s*(-?\d+)$", re.MULTILINE)


class CalibrateSession(ToolSession):
    """One run of the CLI on `arm`; the person can also move a joint while ranges are recorded."""

    def __init__(self, arm: VirtualSO100, calibration_dir, robot: str = "so101_follower"):
        self.arm = arm
        where = ["--calibration-dir", str(calibration_dir)] if calibration_dir else []
        super().__init__(main, ["--robot", robot, "--port", arm.port, "--id", ARM_ID, *where])

    def move_while_recording(self, motor: str, value: float) -> int:
        """Move a joint by hand, then wait until the live table shows its new raw position
        (so the recording has sampled it). Returns that raw position."""
        since = len(self.screen.text())
        self.arm.move_by_hand(motor, value)
        raw = self.arm.register(motor, "Present_Position")

        def shown(screen: str) -> bool:
            return any(row[0] == motor and int(row[2]) == raw for row in ROW.findall(screen))

        self.wait_for(shown, f"table row {motor} at {raw}", since)
        return raw


@pytest.fixture
def arm():
    """A fresh SO-100 at factory settings (offsets 0, limits 0..4095), at the middle pose."""
    arm = VirtualSO100(calibrated=False, pose=[MIDDLE[m] for m in MOTOR_NAMES])
    arm.start()
    yield arm
    arm.stop()


@pytest.fixture
def session_factory(arm, tmp_path, monkeypatch):
    # The live table redraws (and the arm is sampled) every REDRAW_EVERY_S; a faster redraw
    # changes nothing in the procedure but the test's wall time.
    monkeypatch.setattr("hiljax.calibrate.REDRAW_EVERY_S", 0.02)
    sessions = []

    def start(calibration_dir=tmp_path, **kwargs) -> CalibrateSession:
        sessions.append(CalibrateSession(arm, calibration_dir, **kwargs))
        return sessions[-1]

    yield start
    for session in sessions:  # a failed test must not leave the CLI blocked on its input
        session.abandon()


def calibration_file(tmp_path):
    return tmp_path / f"{ARM_ID}.json"


def assert_limp(arm: VirtualSO100) -> None:
    assert {m: arm.register(m, "Torque_Enable") for m in MOTOR_NAMES} == dict.fromkeys(
        MOTOR_NAMES, 0)


def assert_motors_hold(arm: VirtualSO100, calibration) -> None:
    for motor, record in calibration.items():
        held = {field: arm.register(motor, register) for field, register in REGISTERS.items()}
        assert held == {field: getattr(record, field) for field in REGISTERS}, motor


def record_ranges(session: CalibrateSession) -> dict[str, tuple[int, int]]:
    """The person: each joint but wrist_roll half-way and all the way to each side, then back
    to the middle (wrist_roll is a full turn and is not moved)."""
    session.expect("Recording positions")
    seen = {}
    for motor, swing in SWING.items():
        middle = MIDDLE[motor]
        raws = [session.move_while_recording(motor, middle + sign * swing)
                for sign in (0.5, 1.0, -0.5, -1.0)]
        session.move_while_recording(motor, middle)
        seen[motor] = (min(raws), max(raws))
    return seen


def read_servo_arm(arm: VirtualSO100, tmp_path):
    """Connect a ServoArm with the saved calibration, read the joints, disconnect (limp)."""
    robot = ServoArm(ServoArmConfig(type="so100_follower", port=arm.port, id=ARM_ID,
                                    calibration_dir=str(tmp_path)))
    robot.connect()
    try:
        return dict(zip(MOTOR_NAMES, robot.read_joint_positions().tolist()))
    finally:
        robot.disconnect()


# ---------------------------------------------------------------------------------------------


def test_a_fresh_arm_is_calibrated_saved_and_reads_its_pose(arm, tmp_path, session_factory):
    session = session_factory()
    session.expect("middle of its range of motion")
    session.press_enter()
    seen = record_ranges(session)
    session.press_enter()
    assert session.finish() == 0
    assert "Calibration saved to" in session.screen.text()

    # LeRobot's file, LeRobot's fields in LeRobot's order.
    path = calibration_file(tmp_path)
    records = json.loads(path.read_text())
    assert list(records) == list(MOTOR_NAMES)
    assert all(list(record) == list(FIELDS) for record in records.values())
    assert [records[m]["id"] for m in MOTOR_NAMES] == [1, 2, 3, 4, 5, 6]
    assert all(record["drive_mode"] == 0 for record in records.values())
    calibration = load_calibration(path)

    # Ranges: wrist_roll a full turn; the others exactly what was moved, centred on the
    # middle pose, which homing put at half a turn (2047).
    assert (calibration["wrist_roll"].range_min, calibration["wrist_roll"].range_max) == (0, 4095)
    for motor, (low, high) in seen.items():
        record = calibration[motor]
        assert record.range_min <= low and record.range_max >= high, motor
        assert (record.range_min, record.range_max) == (low, high), motor
        assert abs((low + high) / 2 - 2047) <= 1, motor
    # A perfect operator finds the virtual arm's own mounting offsets (to one tick: the middle
    # pose of a full-range joint sits between two ticks), and the gripper's whole range.
    truth = arm.calibration()
    for motor in MOTOR_NAMES:
        assert abs(calibration[motor].homing_offset - truth[motor].homing_offset) <= 1, motor
    assert calibration["gripper"] == truth["gripper"]

    # The motors' EEPROM holds the same, and kept it (written unlocked: survives power off).
    assert_motors_hold(arm, calibration)
    arm.power_cycle()
    assert_motors_hold(arm, calibration)
    assert_limp(arm)

    # The calibrated arm as the env sees it: the middle pose reads 0 deg (gripper 50 %) ...
    at_middle = read_servo_arm(arm, tmp_path)
    for motor in MOTOR_NAMES:
        assert at_middle[motor] == pytest.approx(MIDDLE[motor], abs=1.0), (motor, at_middle)
    # ... and any other pose reads what the joints are at.
    pose = {"shoulder_pan": 25.0, "shoulder_lift": 12.0, "elbow_flex": -30.0,
            "wrist_flex": 20.0, "wrist_roll": -90.0, "gripper": 80.0}
    for motor, value in pose.items():
        arm.move_by_hand(motor, value)
    elsewhere = read_servo_arm(arm, tmp_path)
    truth_now = dict(zip(MOTOR_NAMES, arm.joint_positions().tolist()))
    for motor in MOTOR_NAMES:
        assert truth_now[motor] == pytest.approx(pose[motor], abs=0.2)
        assert elsewhere[motor] == pytest.approx(truth_now[motor], abs=1.0), (motor, elsewhere)
    assert_limp(arm)


def test_an_existing_file_and_enter_writes_it_to_the_motors(arm, tmp_path, session_factory):
    expected = arm.calibration()
    arm.save_calibration(calibration_file(tmp_path))
    saved = calibration_file(tmp_path).read_text()
    assert arm.register("elbow_flex", "Homing_Offset") == 0  # factory: nothing there yet
    session = session_factory()
    session.expect("Press ENTER to use the calibration file")
    session.press_enter()
    assert session.finish() == 0
    assert "Wrote the calibration of" in session.screen.text()
    assert_motors_hold(arm, expected)
    assert calibration_file(tmp_path).read_text() == saved  # used, not rewritten
    assert_limp(arm)
    arm.power_cycle()  # written with the EEPROM unlocked, so it lasts (LeRobot's SO arms: not)
    assert_motors_hold(arm, expected)


def test_an_older_lerobot_releases_file_is_used_and_copied_to_the_current_name(
        arm, tmp_path, session_factory, monkeypatch):
    """LeRobot 0.4 looks under so_follower/ and so misses a file an older release wrote under
    so101_follower/; hiljax reads that one and saves a copy where both now look."""
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    expected = arm.calibration()
    legacy = tmp_path / "robots" / "so101_follower" / f"{ARM_ID}.json"
    arm.save_calibration(legacy)
    session = session_factory(calibration_dir=None)
    session.expect("Press ENTER to use the calibration file")
    assert str(legacy) in session.screen.text()
    session.press_enter()
    assert session.finish() == 0
    assert_motors_hold(arm, expected)
    current = tmp_path / "robots" / "so_follower" / f"{ARM_ID}.json"
    assert load_calibration(current) == load_calibration(legacy)
    assert_limp(arm)


def test_c_at_an_existing_file_calibrates_again(arm, tmp_path, session_factory):
    arm.save_calibration(calibration_file(tmp_path))
    saved = calibration_file(tmp_path).read_text()
    session = session_factory()
    session.expect("Press ENTER to use the calibration file")
    session.press_enter("c")
    session.expect("middle of its range of motion")
    session.press_enter()
    seen = record_ranges(session)
    session.press_enter()
    assert session.finish() == 0
    assert "Wrote the calibration of" not in session.screen.text()
    assert "Calibration saved to" in session.screen.text()
    assert calibration_file(tmp_path).read_text() != saved
    calibration = load_calibration(calibration_file(tmp_path))
    for motor, (low, high) in seen.items():  # the new ranges, not the file's
        assert (calibration[motor].range_min, calibration[motor].range_max) == (low, high)
    assert_motors_hold(arm, calibration)
    assert_limp(arm)


class TtyScreen(io.StringIO):
    """A screen that says it is a terminal (a person's SSH session)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_the_live_table_is_lerobots_and_redrawn_in_place_on_a_terminal(tty):
    screen = TtyScreen() if tty else io.StringIO()
    console = Console(io.StringIO(), screen)
    mins, maxes = {"shoulder_pan": 980, "gripper": 12}, {"shoulder_pan": 3000, "gripper": 2100}
    _show(console, mins, {"shoulder_pan": 2047, "gripper": 2000}, maxes)
    _show(console, mins, {"shoulder_pan": 1000, "gripper": 15}, maxes)
    end = "\x1b[K\n" if tty else "\n"  # on a terminal, also erase what was there
    lines = [f"{'NAME':<15} | {'MIN':>6} | {'POS':>6} | {'MAX':>6}",  # LeRobot's layout
             f"{'shoulder_pan':<15} | {980:>6} | {2047:>6} | {3000:>6}",
             f"{'gripper':<15} | {12:>6} | {2000:>6} | {2100:>6}"]
    first = "".join(line + end for line in lines)
    lines[1:] = [f"{'shoulder_pan':<15} | {980:>6} | {1000:>6} | {3000:>6}",
                 f"{'gripper':<15} | {12:>6} | {15:>6} | {2100:>6}"]
    second = "".join(line + end for line in lines)
    # On a terminal the cursor goes back up over the 3 lines; a pipe or a log gets both tables.
    assert screen.getvalue() == first + ("\x1b[3A" if tty else "") + second
    rows = ROW.findall(first.replace("\x1b[K", ""))  # what the session tests read
    assert [(row[0], *map(int, row[1:])) for row in rows] == [("shoulder_pan", 980, 2047, 3000),
                                                             ("gripper", 12, 2000, 2100)]


def test_input_closed_at_a_prompt_fails_and_leaves_the_arm_limp(arm, tmp_path, session_factory):
    session = session_factory()
    session.expect("middle of its range of motion")
    session.close_input()
    assert session.finish() == 1
    assert not calibration_file(tmp_path).exists()
    assert_limp(arm)


def test_input_closed_while_recording_saves_nothing(arm, tmp_path, session_factory):
    """A dropped SSH session is not the person's ENTER: the ranges are not complete."""
    session = session_factory()
    session.expect("middle of its range of motion")
    session.press_enter()
    session.expect("Recording positions")
    for motor, swing in SWING.items():  # every joint moved: only the EOF is wrong
        session.move_while_recording(motor, MIDDLE[motor] + swing)
    session.close_input()
    assert session.finish() == 1
    assert not calibration_file(tmp_path).exists()
    assert_limp(arm)


def test_a_joint_that_did_not_move_is_named_and_nothing_saved(arm, tmp_path, session_factory,
                                                               caplog):
    caplog.set_level(logging.ERROR, logger="hiljax.calibrate")
    session = session_factory()
    session.expect("middle of its range of motion")
    session.press_enter()
    session.expect("Recording positions")
    for motor, swing in SWING.items():
        if motor != "wrist_flex":
            session.move_while_recording(motor, MIDDLE[motor] - swing)
    session.press_enter()
    assert session.finish() == 1
    assert not calibration_file(tmp_path).exists()
    assert "wrist_flex (id 4) did not move" in caplog.text
    assert "Calibration saved" not in session.screen.text()
    assert_limp(arm)
