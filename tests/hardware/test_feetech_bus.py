"""FeetechMotorsBus on a real pseudo-terminal: handshake, calibrated reads and writes, torque,
and the failures a person meets (silent motor, noisy cable, unplugged adapter)."""

from __future__ import annotations

import time

import pytest

from hiljax.hardware.motors import (
    ChecksumError,
    HandshakeError,
    Motor,
    MotorCalibration,
    MotorStatusError,
    MotorTimeoutError,
    NormMode,
    PortError,
)
from hiljax.hardware.motors.feetech import FeetechMotorsBus
from tests.hardware.test_feetech_protocol import PtyResponder, ServoBank

NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TORQUE_ENABLE, LOCK, GOAL_POSITION, HOMING_OFFSET = 40, 55, 42, 31


def make_bus(port, calibrated=True, retries=2):
    motors = {name: Motor(i + 1, "sts3215", NormMode.DEGREES) for i, name in enumerate(NAMES)}
    calibration = {name: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0,
                                          range_min=1000, range_max=3000)
                   for i, name in enumerate(NAMES)} if calibrated else None
    return FeetechMotorsBus(port, motors, calibration, retries=retries)


@pytest.fixture
def arm():
    """(bank, responder, bus): six STS3215 behind a pty; the bus is not yet connected."""
    bank = ServoBank()
    with PtyResponder(bank) as responder:
        bus = make_bus(responder.port)
        try:
            yield bank, responder, bus
        finally:
            bus.disconnect(disable_torque=False)


@pytest.fixture
def connected(arm):
    bank, responder, bus = arm
    bus.connect()
    bank.requests.clear()
    bank.writes.clear()
    return bank, responder, bus


def test_connect_pings_every_motor_and_checks_firmware(arm):
    bank, _, bus = arm
    bus.connect()
    assert bus.is_connected
    pings = [p[2] for p in bank.requests if p[4] == 0x01]
    firmware_reads = [(p[2], p[5]) for p in bank.requests if p[4] == 0x02 and p[5] in (0, 1)]
    assert pings == [1, 2, 3, 4, 5, 6]
    assert sorted(firmware_reads) == sorted((i, a) for i in range(1, 7) for a in (0, 1))


def test_connect_with_a_missing_motor_names_it_and_closes_the_port(arm):
    bank, responder, bus = arm
    bank.silent.add(6)
    with pytest.raises(HandshakeError) as caught:
        bus.connect()
    assert "gripper (id 6)" in str(caught.value) and responder.port in str(caught.value)
    assert not bus.is_connected and not bus.link.is_open
    bank.silent.clear()
    bus.connect()  # the failed attempt left nothing open, so a retry works
    assert bus.is_connected


def test_connect_with_a_wrong_model_names_it(arm):
    bank, responder, bus = arm
    bank.set(3, 3, 2, 2825)
    with pytest.raises(HandshakeError, match=r"elbow_flex \(id 3\) should be sts3215 "
                                             r"\(model number 777\), found sts3250") as caught:
        bus.connect()
    assert responder.port in str(caught.value)
    assert not bus.link.is_open


def test_connect_with_mixed_firmware_is_refused(arm):
    bank, _, bus = arm
    bank.memory[4][0:2] = bytes([3, 9])
    with pytest.raises(HandshakeError, match=r"wrist_flex \(id 4\) 3.9"):
        bus.connect()
    assert not bus.link.is_open


def test_sync_read_in_degrees_through_the_calibration(connected):
    _, _, bus = connected
    positions = bus.sync_read("Present_Position")
    assert positions == pytest.approx({name: 4.1319 for name in NAMES}, abs=1e-4)
    assert bus.read("Present_Position", "gripper") == pytest.approx(4.1319, abs=1e-4)


def test_sync_write_goals(connected):
    bank, _, bus = connected
    bus.sync_write("Goal_Position", {"shoulder_pan": 10.0, "gripper": -10.0})
    time.sleep(0.05)  # a sync write has no reply to wait for
    assert bank.get(1, GOAL_POSITION, 2) == 2113  # int(10 * 4095 / 360 + 2000)
    assert bank.get(6, GOAL_POSITION, 2) == 1886  # int(-113.75 + 2000)


def test_signed_registers_are_sign_magnitude(connected):
    bank, _, bus = connected
    bus.write("Homing_Offset", "wrist_roll", -100, normalize=False)
    assert bank.get(5, HOMING_OFFSET, 2) == 0x0864
    assert bus.read("Homing_Offset", "wrist_roll", normalize=False) == -100
    with pytest.raises(ValueError, match="Homing_Offset"):
        bus.write("Homing_Offset", "wrist_roll", 2048, normalize=False)
    with pytest.raises(ValueError, match="unsigned"):
        bus.write("Min_Position_Limit", "wrist_roll", -1, normalize=False)


def test_half_turn_homing_on_the_seam_says_to_move_the_joint(connected):
    bank, _, bus = connected
    bank.set(2, 56, 2, 3000)
    assert bus.set_half_turn_homings(["shoulder_lift"]) == {"shoulder_lift": 953}
    bank.set(3, 56, 2, 4095)
    with pytest.raises(ValueError, match=r"elbow_flex \(id 3\).*seam.*Move the joint"):
        bus.set_half_turn_homings(["elbow_flex"])


def test_a_motor_that_stops_answering(connected):
    bank, responder, bus = connected
    bank.silent.add(3)
    start = time.monotonic()
    with pytest.raises(MotorTimeoutError) as caught:
        bus.sync_read("Present_Position")
    elapsed = time.monotonic() - start
    assert "elbow_flex (id 3)" in str(caught.value) and responder.port in str(caught.value)
    assert elapsed < 1.0  # 3 attempts x ~50 ms; generous bound
    asked = [p[7:-1] for p in bank.requests if p[4] == 0x82]
    assert asked == [bytes(range(1, 7)), b"\x03", b"\x03"]  # retries ask only the silent one
    start = time.monotonic()
    with pytest.raises(MotorTimeoutError, match=r"elbow_flex \(id 3\).*3 attempts"):
        bus.read("Present_Position", "elbow_flex")
    assert time.monotonic() - start < 1.0


def test_a_corrupt_reply_is_retried_then_reported(connected):
    bank, responder, bus = connected
    bank.corrupt[2] = 1  # one bad reply, then good ones: the retry hides it
    assert bus.read("Present_Position", "shoulder_lift", normalize=False) == 2047
    bank.corrupt[2] = 100
    with pytest.raises(ChecksumError, match=r"shoulder_lift \(id 2\).*3 attempts") as caught:
        bus.read("Present_Position", "shoulder_lift")
    assert responder.port in str(caught.value)
    with pytest.raises(ChecksumError, match=r"^motor shoulder_lift \(id 2\) on \S+: corrupt") as caught:
        bus.sync_read("Present_Position")  # names only the motor at fault
    assert "elbow_flex" not in str(caught.value)
    asked = [p[7:-1] for p in bank.requests if p[4] == 0x82]
    assert asked[-3:] == [bytes(range(1, 7)), b"\x02", b"\x02"]  # retries ask only id 2
    bank.corrupt[2] = 1
    assert bus.sync_read("Present_Position", normalize=False)["shoulder_lift"] == 2047


def test_error_bits_name_the_motor(connected):
    bank, _, bus = connected
    bank.error[6] = 0x20
    with pytest.raises(MotorStatusError, match=r"gripper \(id 6\).*overload"):
        bus.read("Present_Position", "gripper")


def test_a_vanished_port_is_a_port_error(connected):
    _, responder, bus = connected
    responder.vanish()
    with pytest.raises(PortError):
        bus.sync_read("Present_Position")
    bus.disconnect()  # logs the failed torque-off, still closes
    assert not bus.link.is_open


def test_disconnect_switches_torque_off_and_unlocks(connected):
    bank, _, bus = connected
    bus.disconnect()
    assert bank.writes == [w for i in range(1, 7) for w in ((i, TORQUE_ENABLE, 0), (i, LOCK, 0))]
    assert not bus.link.is_open


def test_torque_and_configure(connected):
    bank, _, bus = connected
    with bus.torque_disabled(["gripper"]):
        bus.configure_motors()
    assert bank.writes[:2] == [(6, TORQUE_ENABLE, 0), (6, LOCK, 0)]
    assert bank.writes[-2:] == [(6, TORQUE_ENABLE, 1), (6, LOCK, 1)]
    configured = set(bank.writes[2:-2])
    assert configured == {(i, a, v) for i in range(1, 7) for a, v in ((7, 0), (85, 254),
                                                                          (41, 254))}
