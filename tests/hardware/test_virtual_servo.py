"""The virtual STS3215s: calibration that reads the joints exactly, first-order motion toward
goals, clamping at the limits, moving by hand, Lock / EEPROM semantics, overload."""

import numpy as np
import pytest

from hiljax.hardware.motors.calibration import load_calibration, normalize
from hiljax.hardware.virtual import TICKS_PER_DEGREE, VirtualSO100
from hiljax.hardware.virtual import protocol as p
from hiljax.hardware.virtual.registers import (
    ERROR_OVERLOAD,
    decode_sign_magnitude,
    encode_sign_magnitude,
)
from tests.hardware.test_virtual_protocol import Client, split_statuses

ONE_TICK_DEG = 360 / 4095


class ManualClock:
    """Time that moves only when the test says so (physics runs on it, not on the wall)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return ManualClock()


def make_arm(clock, calibrated=True, **kwargs):
    arm = VirtualSO100(calibrated=calibrated, clock=clock, **kwargs)
    arm.start()
    return arm


@pytest.fixture
def arm(clock):
    arm = make_arm(clock)
    yield arm
    arm.stop()


@pytest.fixture
def client(arm):
    client = Client(arm.port)
    yield client
    client.close()


def read_positions(client) -> list[int]:
    request = p.instruction_packet(p.BROADCAST_ID, p.SYNC_READ, bytes([56, 2, 1, 2, 3, 4, 5, 6]))
    return [int.from_bytes(data, "little") for _, _, data in
            split_statuses(client.request(request, 48))]


def normalised(arm, raws) -> np.ndarray:
    calibration, modes = arm.calibration(), arm.norm_modes()
    return np.array([normalize(raw, calibration[name], modes[name], apply_drive_mode=True)
                     for name, raw in zip(arm.motor_names, raws)])


def test_calibrated_readings_are_the_joint_angles(arm, client):
    poses = [[0, 0, 0, 0, 0, 0], [-120, -20, -90, -110, -179, 0],
             [120, 179, 170, 110, 179, 100], [33.3, 89, 75, 104, -45.6, 62.5]]
    for pose in poses:
        for name, value in zip(arm.motor_names, pose):
            arm.move_by_hand(name, value)
        truth = arm.joint_positions()
        np.testing.assert_allclose(truth, pose, atol=1e-9)
        reading = normalised(arm, read_positions(client))
        np.testing.assert_allclose(reading[:5], truth[:5], atol=ONE_TICK_DEG)
        np.testing.assert_allclose(reading[5], truth[5], atol=100 / 1400)  # gripper: one tick


def test_calibration_matches_eeprom_and_file(arm, client, tmp_path):
    calibration = arm.calibration()
    for record in calibration.values():
        _, offset = client.read(record.id, 31, 2)
        assert decode_sign_magnitude(offset, 11) == record.homing_offset
        assert client.read(record.id, 9, 2)[1] == record.range_min
        assert client.read(record.id, 11, 2)[1] == record.range_max
    assert calibration["wrist_roll"].range_min == 0 and calibration["wrist_roll"].range_max == 4095
    assert calibration["shoulder_lift"].homing_offset < 0  # sign-magnitude on the wire
    assert client.read(2, 31, 2)[1] == encode_sign_magnitude(-900, 11) == 0x0B84
    assert load_calibration(arm.save_calibration(tmp_path / "so100.json")) == calibration


def test_uncalibrated_arm_reads_raw_encoder_ticks(clock):
    arm = make_arm(clock, calibrated=False)
    try:
        assert arm.register("elbow_flex", "Homing_Offset") == 0
        assert arm.register("elbow_flex", "Max_Position_Limit") == 4095
        spec = arm.joints[2]
        assert arm.register("elbow_flex", "Present_Position") == round(spec.zero_tick) % 4096
    finally:
        arm.stop()


def test_goals_move_first_order_and_clamp_at_limits(arm, client, clock):
    assert client.write(1, 40, 1, 1) == p.status_packet(1, 0)  # torque on: holds, no jump
    clock.advance(0.5)
    assert arm.joint_positions()[0] == pytest.approx(0.0)
    goal = 2047 + round(60 * TICKS_PER_DEGREE)  # +60 deg on shoulder_pan
    client.write(1, 42, goal, 2)
    clock.advance(0.01)
    first = arm.joint_positions()[0]
    assert arm.register(1, "Moving") == 1 and arm.register(1, "Present_Velocity") > 1000
    assert arm.register(1, "Present_Load") > 0 and 100 < arm.register(1, "Present_Voltage") <= 120
    clock.advance(0.01)
    second = arm.joint_positions()[0]
    assert 0 < first < second < 60  # on its way, not there at once
    clock.advance(1.0)
    assert arm.joint_positions()[0] == pytest.approx(60, abs=ONE_TICK_DEG)
    # Past the limit: the register holds the clamped goal and the joint stops at 120 deg.
    client.write(1, 42, 4000, 2)
    assert client.read(1, 42, 2)[1] == arm.calibration()["shoulder_pan"].range_max
    clock.advance(1.0)
    clock.advance(1.0)
    assert arm.joint_positions()[0] == pytest.approx(120, abs=ONE_TICK_DEG)


def test_torque_off_and_move_by_hand(arm, client, clock):
    before = client.read(3, 56, 2)[1]
    arm.move_by_hand("elbow_flex", 45.0)
    after = client.read(3, 56, 2)[1]
    assert after - before == round(45 * TICKS_PER_DEGREE)
    arm.move_by_hand(3, ticks=1500)
    assert client.read(3, 56, 2)[1] == 1500
    arm.move_by_hand(3, ticks=100)  # -171 deg: past the mechanical stop at -90 deg
    assert client.read(3, 56, 2)[1] == 2047 - round(90 * TICKS_PER_DEGREE) == 1023
    # Goals drive nothing while torque is off.
    client.write(3, 42, 3000, 2)
    clock.advance(1.0)
    assert client.read(3, 56, 2)[1] == 1023
    # With torque on, a push by hand springs back to the goal.
    client.write(3, 40, 1, 1)
    arm.move_by_hand("elbow_flex", 0.0)
    clock.advance(1.0)
    assert client.read(3, 56, 2)[1] == pytest.approx(1023, abs=1)


def test_eeprom_writes_while_locked_do_not_survive_a_power_cycle(arm, client):
    assert arm.register(4, "Lock") == 1  # powers up locked
    original = arm.register(4, "Min_Position_Limit")
    client.write(4, 9, 1234, 2)
    assert client.read(4, 9, 2)[1] == 1234  # takes effect at once...
    arm.power_cycle(4)
    assert client.read(4, 9, 2)[1] == original  # ...but was never saved
    client.write(4, 55, 0, 1)  # unlock (LeRobot: torque off, then Lock=0)
    client.write(4, 9, 1234, 2)
    arm.power_cycle(4)
    assert client.read(4, 9, 2)[1] == 1234
    assert arm.register(4, "Lock") == 1 and arm.register(4, "Torque_Enable") == 0
    # The id too is EEPROM: a changed id answers under its new number.
    client.write(4, 55, 0, 1)
    client.write(4, 5, 9, 1)
    assert client.silent(p.instruction_packet(4, p.PING))
    assert client.request(p.instruction_packet(9, p.PING), 6) == p.status_packet(9, 0)


def test_read_only_registers_and_middle_calibration(arm, client):
    client.write(1, 3, 1, 2)
    assert client.read(1, 3, 2)[1] == 777
    arm.move_by_hand("shoulder_pan", -30.0)
    client.write(1, 40, 128, 1)  # STS middle calibration: this pose reads 2048
    assert client.read(1, 56, 2)[1] == 2048
    assert arm.register(1, "Torque_Enable") == 0


def test_a_goal_held_against_a_stop_overloads(arm, client, clock):
    client.write(3, 40, 1, 1)
    client.write(3, 42, arm.calibration()["elbow_flex"].range_min, 2)  # -170 deg; stop at -90
    clock.advance(1.0)
    assert arm.joint_positions()[2] == pytest.approx(-90.0)  # stalled at the stop, from now on
    assert client.read(3, 56, 2)[0] == 0  # (the servo samples at each request)
    clock.advance(0.3)  # > Protection_Time (20 x 10 ms)
    error, _ = client.read(3, 56, 2)
    assert error & ERROR_OVERLOAD
    assert arm.register(3, "Present_Load") < -800 and arm.register(3, "Present_Current") > 300
    client.write(3, 42, 2047, 2)  # back off: the error clears
    clock.advance(1.0)
    assert client.read(3, 56, 2) == (0, 2047)


def test_sign_magnitude():
    assert encode_sign_magnitude(-2047, 11) == 0xFFF and decode_sign_magnitude(0xFFF, 11) == -2047
    assert decode_sign_magnitude(encode_sign_magnitude(-5, 15), 15) == -5
    with pytest.raises(ValueError):
        encode_sign_magnitude(2048, 11)
