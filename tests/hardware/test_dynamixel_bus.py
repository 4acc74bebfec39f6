"""DynamixelMotorsBus against emulated X-series servos on a real pseudo-terminal: a Koch
follower's six motors (XL430-W250 ids 1-2, XL330-M288 ids 3-6)."""

import logging

import pytest

from hiljax.hardware.motors import (
    ChecksumError,
    HandshakeError,
    Motor,
    MotorCalibration,
    MotorStatusError,
    MotorTimeoutError,
    NormMode,
)
from hiljax.hardware.motors.dynamixel import DynamixelMotorsBus
from hiljax.hardware.motors.dynamixel_table import MODEL_NUMBER_TABLE, READ
from tests.hardware.dynamixel_servos import VirtualDynamixelBus, VirtualServo

KOCH = {"shoulder_pan": (1, "xl430-w250"), "shoulder_lift": (2, "xl430-w250"),
        "elbow_flex": (3, "xl330-m288"), "wrist_flex": (4, "xl330-m288"),
        "wrist_roll": (5, "xl330-m288"), "gripper": (6, "xl330-m288")}
# Generous for a Python emulator on a busy machine; a silent motor costs 3 x this.
LATENCY_S = 0.1


def koch_motors(pan_mode=NormMode.RANGE_M100_100) -> dict[str, Motor]:
    modes = {"shoulder_pan": pan_mode, "gripper": NormMode.RANGE_0_100}
    return {name: Motor(i, model, modes.get(name, NormMode.RANGE_M100_100))
            for name, (i, model) in KOCH.items()}


def calibration(**changes) -> dict[str, MotorCalibration]:
    """min 1000, max 3000 (the facts' worked numbers), offset 0, drive mode 0, unless changed."""
    out = {n: MotorCalibration(id=i, drive_mode=0, homing_offset=0, range_min=1000,
                               range_max=3000) for n, (i, _) in KOCH.items()}
    for name, fields in changes.items():
        out[name] = MotorCalibration(**{**vars(out[name]), **fields})
    return out


@pytest.fixture
def servos():
    emulator = VirtualDynamixelBus([VirtualServo(i, MODEL_NUMBER_TABLE[model])
                                    for i, model in KOCH.values()])
    yield emulator
    emulator.close()


@pytest.fixture
def make_bus(servos):
    buses = []

    def make(motors=None, **kwargs) -> DynamixelMotorsBus:
        bus = DynamixelMotorsBus(servos.port, motors or koch_motors(), latency_s=LATENCY_S,
                                 **kwargs)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.disconnect(disable_torque=False)


@pytest.fixture
def bus(make_bus):
    bus = make_bus()
    bus.connect()
    return bus


def torque(servos) -> dict[int, int]:
    return {i: s.memory[64] for i, s in servos.servos.items()}


# ---------------------------------------------------------------------------------- handshake
def test_handshake_pings_every_motor(bus, servos):
    assert bus.is_connected
    assert [i for i, _ in servos.instructions(0x01)] == [1, 2, 3, 4, 5, 6]


def test_handshake_names_a_missing_motor_and_closes_the_port(make_bus, servos):
    with servos.lock:
        absent = servos.servos.pop(4)
    bus = make_bus()
    with pytest.raises(HandshakeError, match=rf"{servos.port}.*wrist_flex \(id 4\) did not answer"):
        bus.connect()
    assert not bus.is_connected and not bus.link.is_open
    with servos.lock:
        servos.servos[4] = absent
    bus.connect()  # the failed attempt left nothing open
    assert bus.is_connected


def test_handshake_names_a_wrong_model_and_an_alert(make_bus, servos):
    with servos.lock:
        servos.servos[6] = VirtualServo(6, 1190)
    servos.servos[2].error_bits = 0x80
    with pytest.raises(HandshakeError) as caught:
        make_bus().connect()
    message = str(caught.value)
    assert "gripper (id 6) is xl330-m077, expected xl330-m288 (model number 1200)" in message
    assert "shoulder_lift (id 2) answered with an error" in message and "hardware alert" in message


# ---------------------------------------------------------------------------------- reading
def test_sync_read_normalises_through_the_calibration(make_bus, servos):
    bus = make_bus(koch_motors(pan_mode=NormMode.DEGREES))
    bus.connect()
    servos.servos[1].move_to(3000)
    bus.write_calibration(calibration(shoulder_pan={"homing_offset": -953}))
    for motor_id, actual in {2: 2000, 3: 1500, 4: 2500, 5: 500, 6: 2500}.items():
        servos.servos[motor_id].move_to(actual)
    raw = bus.sync_read("Present_Position", normalize=False)
    assert raw["shoulder_pan"] == 2047  # Present = Actual + Homing_Offset = 3000 - 953
    got = bus.sync_read("Present_Position")
    assert got["shoulder_pan"] == pytest.approx(4.1319, abs=1e-4)  # (2047 - 2000) * 360 / 4095
    assert got["shoulder_lift"] == pytest.approx(0.0)
    assert got["elbow_flex"] == pytest.approx(-50.0)
    assert got["wrist_flex"] == pytest.approx(50.0)
    assert got["wrist_roll"] == pytest.approx(-100.0)  # below range_min: saturates
    assert got["gripper"] == pytest.approx(75.0)


def test_half_turn_homing_makes_the_pose_read_2047(bus, servos):
    actuals = {1: 3000, 2: 100, 3: 2047, 4: 4095, 5: 0, 6: 1234}
    for motor_id, actual in actuals.items():
        servos.servos[motor_id].move_to(actual)
    offsets = bus.set_half_turn_homings()
    assert offsets == {n: 2047 - actuals[i] for n, (i, _) in KOCH.items()}
    assert servos.servos[1].get(20, 4) == 0xFFFFFC47  # -953, two's complement on the wire
    assert set(bus.sync_read("Present_Position", normalize=False).values()) == {2047}


def test_registers_the_xl430_lacks_are_key_errors_and_signs_decode(bus, servos):
    with pytest.raises(KeyError, match="xl430-w250 has no register 'Goal_Current'"):
        bus.read("Goal_Current", "shoulder_pan")
    servos.servos[1].set(126, 2, -25)
    servos.servos[3].set(126, 2, -300)
    assert bus.read("Present_Load", "shoulder_pan") == -25
    assert bus.read("Present_Current", "elbow_flex") == -300


def test_values_needing_byte_stuffing_cross_the_wire_both_ways(bus, servos):
    # -131073 = 0xFFFDFFFF: little-endian FF FF FD FF, a header inside the params.
    bus.write("Homing_Offset", "gripper", -131073, normalize=False)
    assert servos.servos[6].get(20, 4, signed=True) == -131073
    assert bus.read("Homing_Offset", "gripper", normalize=False) == -131073
    with pytest.raises(ValueError):
        bus.write("Homing_Offset", "gripper", 1 << 31, normalize=False)
    with pytest.raises(ValueError):
        bus.write("Return_Delay_Time", "gripper", -1, normalize=False)


# ---------------------------------------------------------------------------------- writing
def test_sync_write_moves_the_goals(bus, servos):
    bus.write_calibration(calibration())
    bus.enable_torque()
    bus.sync_write("Goal_Position", {"shoulder_lift": 50.0, "elbow_flex": -50.0, "gripper": 25.0})
    raw = bus.sync_read("Goal_Position", ["shoulder_lift", "elbow_flex", "gripper"],
                        normalize=False)  # answered after the sync write: it has landed
    assert raw == {"shoulder_lift": 2500, "elbow_flex": 1500, "gripper": 1500}
    assert [servos.servos[i].actual for i in (2, 3, 6)] == [2500, 1500, 1500]
    present = bus.sync_read("Present_Position", ["shoulder_lift", "elbow_flex", "gripper"])
    assert present == pytest.approx({"shoulder_lift": 50.0, "elbow_flex": -50.0, "gripper": 25.0})


def test_degrees_goal_uses_the_facts_formula(make_bus, servos):
    bus = make_bus(koch_motors(pan_mode=NormMode.DEGREES))
    bus.connect()
    bus.write_calibration(calibration())
    bus.enable_torque(["shoulder_pan"])
    bus.write("Goal_Position", "shoulder_pan", 10.0)
    assert servos.servos[1].get(116, 4) == 2113  # int(10 * 4095 / 360 + 2000)


def test_drive_mode_is_written_read_back_and_inverted_by_the_servo(bus, servos):
    elbow = servos.servos[3]
    elbow.memory[10] = 0b100  # another Drive_Mode bit (profile type) set by someone
    record = calibration(elbow_flex={"drive_mode": 1, "homing_offset": 4000})
    assert not bus.is_calibrated  # no calibration on the bus yet
    bus.write_calibration(record)
    assert elbow.memory[10] == 0b101  # bit 0 set, the other bit kept
    assert bus.read_calibration() == record and bus.is_calibrated
    elbow.move_to(1500)  # Present = -1500 + 4000 = 2500: the servo inverts, not software
    assert bus.read("Present_Position", "elbow_flex") == pytest.approx(50.0)
    bus.enable_torque(["elbow_flex"])
    bus.write("Goal_Position", "elbow_flex", -50.0)
    assert elbow.get(116, 4) == 1500 and elbow.actual == 2500  # the horn turned the other way
    assert bus.read("Present_Position", "elbow_flex") == pytest.approx(-50.0)
    bus.disable_torque(["elbow_flex"])
    elbow.write(10, b"\x04")  # a fresh motor: drive mode lost
    assert not bus.is_calibrated


def test_eeprom_writes_keep_each_motors_torque(bus, servos):
    bus.enable_torque(["gripper"])
    bus.write_calibration(calibration())  # refused by the servo if torque were still on
    bus.configure_motors()
    assert {i: s.get(9, 1) for i, s in servos.servos.items()} == dict.fromkeys(range(1, 7), 0)
    assert torque(servos) == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1}
    assert servos.servos[6].get(20, 4) == 0 and servos.servos[6].get(52, 4) == 1000


def test_eeprom_write_with_torque_on_names_motor_and_error(bus):
    bus.enable_torque(["elbow_flex"])
    with pytest.raises(MotorStatusError, match=r"elbow_flex \(id 3\).*access error"):
        bus.write("Homing_Offset", "elbow_flex", 10, normalize=False)


# ---------------------------------------------------------------------------------- failures
def test_timeouts_name_motor_and_port_after_bounded_retries(bus, servos):
    elbow = servos.servos[3]
    elbow.drop_replies = 2  # two lost replies: the third attempt gets through
    assert bus.read("ID", "elbow_flex", normalize=False) == 3
    elbow.silent = True
    servos.received.clear()
    with pytest.raises(MotorTimeoutError,
                       match=rf"elbow_flex \(id 3\) on {servos.port}.*3 attempts"):
        bus.read("ID", "elbow_flex", normalize=False)
    assert len(servos.instructions(READ)) == 3
    with pytest.raises(MotorTimeoutError, match=rf"elbow_flex \(id 3\).*{servos.port}"):
        bus.sync_read("Present_Position", normalize=False)


def test_crc_errors_name_motor_and_port_after_bounded_retries(bus, servos):
    wrist = servos.servos[4]
    wrist.corrupt_replies = 2
    assert bus.read("ID", "wrist_flex", normalize=False) == 4
    wrist.corrupt_replies = 3
    with pytest.raises(ChecksumError, match=rf"wrist_flex \(id 4\) on {servos.port}.*3 attempts"):
        bus.read("ID", "wrist_flex", normalize=False)
    wrist.corrupt_replies = 3
    with pytest.raises(ChecksumError, match=rf"wrist_flex \(id 4\) on {servos.port}.*CRC"):
        bus.sync_read("Present_Position", normalize=False)
    wrist.corrupt_replies = 1  # one bad reply: the bus asks wrist_flex again
    assert len(bus.sync_read("Present_Position", normalize=False)) == 6


def test_garbage_before_a_reply_is_skipped(bus, servos):
    servos.servos[5].noise = b"\x00\x13\xff\xff\xfd\x00\x05\xff\xff"
    assert bus.read("ID", "wrist_roll", normalize=False) == 5


def test_a_hardware_alert_in_a_sync_read_keeps_the_value(bus, servos, caplog):
    servos.servos[2].error_bits = 0x80
    with caplog.at_level(logging.WARNING):
        assert len(bus.sync_read("Present_Position", normalize=False)) == 6
        bus.sync_read("Present_Position", normalize=False)
    # One warning naming the motor and the port (not one per read).
    warnings = [r.getMessage() for r in caplog.records if "hardware alert" in r.getMessage()]
    assert len(warnings) == 1 and f"shoulder_lift (id 2) on {bus.port}" in warnings[0]
    assert bus.status_errors == {"shoulder_lift": 0x80}
    with pytest.raises(MotorStatusError, match=r"shoulder_lift \(id 2\).*hardware alert"):
        bus.read("Present_Position", "shoulder_lift", normalize=False)


# ---------------------------------------------------------------------------------- lifecycle
def test_disconnect_turns_torque_off_even_with_a_silent_motor(bus, servos, caplog):
    bus.enable_torque()
    assert set(torque(servos).values()) == {1}
    servos.servos[5].silent = True  # obeys, never answers
    with caplog.at_level(logging.ERROR):
        bus.disconnect()
    assert set(torque(servos).values()) == {0}
    assert "wrist_roll (id 5)" in caplog.text  # logged, and the others still went limp
    assert not bus.is_connected and not bus.link.is_open


def test_broadcast_ping_finds_every_servo(make_bus):
    bus = make_bus()
    bus.connect(handshake=False)
    assert bus.broadcast_ping(timeout_s=0.3) == {i: MODEL_NUMBER_TABLE[m] for i, m in KOCH.values()}
