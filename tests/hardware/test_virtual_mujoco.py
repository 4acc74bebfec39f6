"""The virtual arm with the MuJoCo so100 behind it: goals written on the wire move the simulated
joints, and Present_Position normalised with the arm's calibration reads the sim's angles.
No rendering is involved (the robot has no cameras)."""

import numpy as np
import pytest

from hiljax.hardware.motors.calibration import normalize
from hiljax.hardware.virtual import (
    TICKS_PER_DEGREE,
    ServoPhysics,
    VirtualSO100,
    so100_joints,
)
from hiljax.hardware.virtual import protocol as p
from tests.hardware.test_virtual_protocol import Client, split_statuses
from tests.hardware.test_virtual_servo import ManualClock, normalised


@pytest.fixture
def setup():
    try:
        from hiljax.envs.sim.servo_arm import MujocoServoPhysics
        physics = MujocoServoPhysics(so100_joints())
    except Exception as error:  # noqa: BLE001 - any MuJoCo start-up failure is a skip reason
        pytest.skip(f"the MuJoCo so100 cannot be built here: {error}")
    assert isinstance(physics, ServoPhysics)
    clock = ManualClock()
    arm = VirtualSO100(physics=physics, calibrated=True, clock=clock)
    arm.start()
    client = Client(arm.port)
    yield arm, physics, client, clock
    client.close()
    arm.stop()


def sim_reading(arm, client):
    request = p.instruction_packet(p.BROADCAST_ID, p.SYNC_READ, bytes([56, 2, 1, 2, 3, 4, 5, 6]))
    raws = [int.from_bytes(d, "little") for _, _, d in split_statuses(client.request(request, 48))]
    return normalised(arm, raws)


def test_goals_move_the_sim_and_readings_match_it(setup):
    arm, physics, client, clock = setup
    start = physics.robot.read_joint_positions().astype(float)  # the sim's home pose
    np.testing.assert_allclose(sim_reading(arm, client)[:5], start[:5], atol=360 / 4095)
    # Torque on for every motor (holds), then move shoulder_pan +30 deg and the elbow -20 deg.
    client.send(p.instruction_packet(p.BROADCAST_ID, p.SYNC_WRITE,
                                     bytes([40, 1]) + b"".join(bytes([i, 1]) for i in range(1, 7))))
    clock.advance(0.3)
    held = physics.robot.read_joint_positions()
    np.testing.assert_allclose(held[:5], start[:5], atol=1.0)
    calibration = arm.calibration()
    targets = {1: start[0] + 30.0, 3: start[2] - 20.0}
    for servo_id, degrees in targets.items():
        record = calibration[arm.motor_names[servo_id - 1]]
        goal = int(degrees * TICKS_PER_DEGREE + (record.range_min + record.range_max) / 2)
        assert client.write(servo_id, 42, goal, 2) == p.status_packet(servo_id, 0)
    for _ in range(4):
        clock.advance(0.5)  # at most max_catch_up_s of sim per request
        arm.joint_positions()
    sim = physics.robot.read_joint_positions()
    assert sim[0] == pytest.approx(targets[1], abs=1.5)
    assert sim[2] == pytest.approx(targets[3], abs=1.5)
    reading = sim_reading(arm, client)
    np.testing.assert_allclose(reading[:5], sim[:5], atol=360 / 4095)
    gripper = normalize(arm.register("gripper", "Present_Position"), calibration["gripper"],
                        arm.norm_modes()["gripper"], apply_drive_mode=True)
    assert gripper == pytest.approx(sim[5], abs=0.1)


def test_moving_the_sim_by_hand_with_torque_off(setup):
    arm, physics, client, clock = setup
    arm.move_by_hand("wrist_flex", -40.0)
    clock.advance(0.5)
    assert physics.robot.read_joint_positions()[3] == pytest.approx(-40.0, abs=0.5)
    assert sim_reading(arm, client)[3] == pytest.approx(-40.0, abs=0.5)
