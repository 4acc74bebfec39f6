"""The Koch leader through the real stack: a Koch follower and a Koch leader, each six emulated
Dynamixel servos on a real pseudo-terminal (tests/hardware/dynamixel_servos.py), the env built
by make_robot_env from a config (robot koch, control_mode leader, teleop koch_leader), the
take-over held on a foot pedal (a key posted to pygame's queue: KEYDOWN starts, KEYUP ends).
Also the Koch leader's degrees against LeRobot's -100..100 reading of the same calibration."""

import json
from pathlib import Path

import numpy as np
import pytest

from hiljax.control.leader import leader_arm
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.envs.wrappers import BatchCompatibleWrapper
from hiljax.hardware.motors import MotorCalibration
from hiljax.hardware.motors.calibration import NormMode, save_calibration
from hiljax.hardware.motors.dynamixel_table import MODEL_NUMBER_TABLE
from hiljax.hardware.robots import ARMS, MOTOR_NAMES, ServoArm, ServoArmConfig
from hiljax.kinematics import RobotKinematics
from tests.hardware.dynamixel_servos import (
    DRIVE_MODE,
    HOMING,
    TORQUE,
    VirtualDynamixelBus,
    VirtualServo,
)

pygame = pytest.importorskip("pygame")

TEMPLATE = Path(__file__).resolve().parents[2] / "configs" / "env_real_so101_template.json"
KOCH = RobotKinematics("koch")
STEP = 0.02  # the template's EE step sizes
RANGE = (1024, 3072)  # every motor's calibrated range: 2048 (the middle) reads 0 degrees
MID = sum(RANGE) / 2
START = (0.0, 40.0, 50.0, 30.0, 0.0, 50.0)  # the follower; the gripper in percent
LEADER_START = (5.0, 35.0, 55.0, 25.0, 0.0, 40.0)  # where the person left the leader
PEDAL = "b"  # the key a USB foot pedal sends
POLICY = np.array([0.0, 0.0, 0.0, 1.0], np.float32)  # the policy holds still


def calibration(drive_modes=None, span=RANGE) -> dict[str, MotorCalibration]:
    """LeRobot's Koch calibration records (the leader's elbow is inverted: drive mode 1, and
    an offset that brings its Present_Position = Homing_Offset - Actual back into the range)."""
    drive_modes = drive_modes or {}
    return {name: MotorCalibration(id=i + 1, drive_mode=drive_modes.get(name, 0),
                                   homing_offset=4096 * drive_modes.get(name, 0),
                                   range_min=span[0], range_max=span[1])
            for i, name in enumerate(MOTOR_NAMES)}


def present_ticks(pose) -> list[int]:
    """Present_Position of each motor for a pose (degrees; the gripper percent of the range)."""
    joints = [round(d * 4095 / 360 + MID) for d in pose[:5]]
    return [*joints, round(RANGE[0] + pose[5] / 100 * (RANGE[1] - RANGE[0]))]


def read_pose(servos: VirtualDynamixelBus) -> np.ndarray:
    ticks = np.array([servos.servos[i].present for i in range(1, 7)], np.float64)
    return np.array([*(ticks[:5] - MID) * 360 / 4095,
                     (ticks[5] - RANGE[0]) / (RANGE[1] - RANGE[0]) * 100])


def move_to_ticks(servos: VirtualDynamixelBus, presents) -> None:
    """Put the horns where the servos read `presents` (each servo's sign and offset)."""
    for motor_id, present in enumerate(presents, start=1):
        servo = servos.servos[motor_id]
        sign = -1 if servo.memory[DRIVE_MODE] & 1 else 1
        servo.move_to(sign * (present - servo.get(HOMING, 4, signed=True)))


def move_by_hand(servos: VirtualDynamixelBus, pose) -> None:
    """A person puts the limp arm at `pose`."""
    move_to_ticks(servos, present_ticks(pose))


def torques(servos: VirtualDynamixelBus) -> list[int]:
    return [servos.servos[i].memory[TORQUE] for i in range(1, 7)]


def koch_arm(arm: str, pose) -> VirtualDynamixelBus:
    models = ARMS[arm].models
    return VirtualDynamixelBus([VirtualServo(i + 1, MODEL_NUMBER_TABLE[m], actual=ticks)
                                for i, (m, ticks) in enumerate(zip(models, present_ticks(pose)))])


def tip(pose) -> np.ndarray:
    return KOCH.fk_gripper_tip(np.asarray(pose, np.float64)[:5])[:3, 3]


def pedal(kind) -> None:
    pygame.event.post(pygame.event.Event(kind, key=pygame.key.key_code(PEDAL)))


@pytest.fixture
def arms(tmp_path):
    follower, leader = koch_arm("koch_follower", START), koch_arm("koch_leader", LEADER_START)
    save_calibration(tmp_path / "my_follower.json", calibration())
    save_calibration(tmp_path / "my_leader.json", calibration({"elbow_flex": 1}))
    yield follower, leader
    follower.close()
    leader.close()


def koch_config(follower, leader, tmp_path):
    """The SO-101 template as a Koch owner edits it, the pedal held to take over, and the
    wrappers further out of the intervention (joint masking, batch axis) switched on."""
    teleop = {"type": "koch_leader", "port": leader.port, "id": "my_leader",
              "calibration_dir": str(tmp_path), "intervention_key_mode": "hold",
              "intervention_keys": [PEDAL]}
    return load_env_config(TEMPLATE, [
        "robot.type=koch", f"robot.port={follower.port}", f"robot.calibration_dir={tmp_path}",
        "robot.cameras=[]", "robot.realtime=false", "wrapper.crop_params_dict=null",
        "wrapper.resize_size=null", "wrapper.fixed_reset_joint_positions=null",
        "wrapper.reset_time_s=0", "wrapper.open_gripper_on_reset=false",
        "wrapper.ee_action_space_params.control_mode=leader",
        ('wrapper.ee_action_space_params.bounds={"min": [-0.5, -0.5, -0.5], '
         '"max": [0.5, 0.5, 0.5]}'),
        "wrapper.joint_masking_action_space=[true, true, true, true]",
        "wrapper.batch_compatible=true", f"teleop={json.dumps(teleop)}"])


def test_a_pedal_held_hands_a_koch_follower_to_the_koch_leader(arms, tmp_path):
    follower, leader = arms
    env = BatchCompatibleWrapper(make_robot_env(koch_config(follower, leader, tmp_path)))
    flags, actions = [], []

    def step(times: int = 1) -> dict:
        for _ in range(times):
            _, _, _, _, info = env.step(POLICY)
            flags.append(info["is_intervention"])
            actions.append(np.asarray(info["action_intervention"]))
        return info

    try:
        pygame.event.clear()
        env.reset()
        step(3)
        assert not any(flags)
        assert torques(leader) == [1] * 6  # geared: the leader went to the follower
        np.testing.assert_allclose(read_pose(leader), read_pose(follower), atol=0.1)
        np.testing.assert_allclose(read_pose(follower), START, atol=0.5)  # IK: a tick or two
        assert [int.from_bytes(leader.servos[i].memory[84:86], "little")
                for i in range(1, 7)] == [50] * 6  # low Position_P_Gain while geared

        pedal(pygame.KEYDOWN)  # the person steps on the pedal, and keeps it down
        assert step()["is_intervention"] is True
        assert torques(leader) == [0] * 6  # the person holds a limp leader
        assert step()["is_intervention"] is True  # still held: no repeat needed
        np.testing.assert_array_equal(actions[-1], [0.0, 0.0, 0.0, 1.0])  # leader on follower

        moved = (3.0, 38.0, 52.0, 30.0, 0.0, 50.0)  # a small move: deltas below one step
        move_by_hand(leader, moved)
        follower_now = read_pose(follower)
        gap = tip(read_pose(leader)) - tip(follower_now)
        expected = np.clip(gap / STEP, -1.0, 1.0)
        assert 0.1 < np.abs(expected).max() < 1.0
        step()
        # The action is the leader's tip (Koch FK of its degrees) minus the follower's.
        np.testing.assert_allclose(actions[-1][:3], expected, atol=1e-4)
        step(5)
        assert np.linalg.norm(tip(read_pose(follower)) - tip(moved)) < 0.003

        move_by_hand(leader, (*moved[:5], 5.0))  # squeeze the leader's trigger
        step(12)  # max_relative_target: 10 % of the gripper's range a step
        assert read_pose(follower)[5] < 2.0
        grippers = [a[3] for a, flag in zip(actions, flags) if flag]
        assert grippers.count(0.0) == 1 and set(grippers) == {0.0, 1.0}  # one close, sent once

        pedal(pygame.KEYUP)  # the foot comes off: the policy has the arm again
        assert step()["is_intervention"] is False
        assert torques(leader) == [1] * 6  # geared again
        np.testing.assert_array_equal(actions[-1], POLICY)
    finally:
        env.close()
    held = flags[3:-1]
    assert all(held) and len(held) == 1 + 1 + 1 + 5 + 12  # every step the pedal was down
    assert torques(leader) == [0] * 6  # stop() leaves the leader limp
    assert torques(follower) == [0] * 6


def test_the_koch_leader_reads_degrees_through_lerobots_calibration(tmp_path):
    """Same servos, same LeRobot calibration file: LeRobot's reading of the Koch leader's arm
    joints (-100..100 of the calibrated range) and leader_arm's degrees are one linear map
    through that range, the gripper stays 0..100, and the file is left as it was."""
    span = (1000, 3000)  # not centred on 2048: the map must use the file's range
    pose_ticks = [1100, 2000, 2900, 1500, 2600, 2500]
    servos = VirtualDynamixelBus([VirtualServo(i + 1, MODEL_NUMBER_TABLE["xl330-m077"],
                                               actual=t) for i, t in enumerate(pose_ticks)])
    path = tmp_path / "lead.json"
    save_calibration(path, calibration({"elbow_flex": 1}, span=span))
    saved = path.read_text()
    config = ServoArmConfig(type="koch_leader", port=servos.port, id="lead",
                            calibration_dir=str(tmp_path))
    try:
        readings = {}
        for name, arm in (("lerobot", ServoArm(config)), ("degrees", leader_arm(config))):
            arm.connect()
            try:
                # Connect inverted the elbow (the file's drive mode) and sent the spring-back
                # gripper to 50 %: the person puts the arm back.
                move_to_ticks(servos, pose_ticks)
                readings[name] = arm.read_joint_positions().astype(np.float64)
                readings[f"{name}_modes"] = [m.norm_mode for m in arm.bus.motors.values()]
            finally:
                arm.disconnect()
    finally:
        servos.close()
    lerobot, degrees = readings["lerobot"], readings["degrees"]
    assert readings["lerobot_modes"][:5] == [NormMode.RANGE_M100_100] * 5
    assert readings["degrees_modes"][:5] == [NormMode.DEGREES] * 5
    assert np.all(np.abs(lerobot[:5]) <= 100.0)
    half_range_deg = (span[1] - span[0]) / 2 * 360 / 4095
    np.testing.assert_allclose(degrees[:5], lerobot[:5] / 100 * half_range_deg, atol=1e-4)
    np.testing.assert_allclose(degrees[:5], (np.array(pose_ticks[:5]) - 2000) * 360 / 4095,
                               atol=1e-4)
    assert degrees[5] == pytest.approx(lerobot[5]) == pytest.approx(75.0)
    assert path.read_text() == saved
