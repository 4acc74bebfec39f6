"""Koch (Dynamixel) and the leader arms through ServoArm: LeRobot's per-arm configuration on
connect, read-only leaders, the calibration file's place per arm."""

import numpy as np
import pytest

from hiljax.hardware.motors import MotorBusError, MotorCalibration
from hiljax.hardware.motors.calibration import save_calibration
from hiljax.hardware.motors.dynamixel_table import MODEL_NUMBER_TABLE
from hiljax.hardware.robots import ARMS, ServoArm, ServoArmConfig
from hiljax.hardware.virtual import VirtualSO100
from tests.hardware.dynamixel_servos import VirtualDynamixelBus, VirtualServo

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def koch_calibration(drive_modes=None) -> dict[str, MotorCalibration]:
    drive_modes = drive_modes or {}
    return {name: MotorCalibration(id=i + 1, drive_mode=drive_modes.get(name, 0),
                                   homing_offset=0, range_min=1024, range_max=3072)
            for i, name in enumerate(MOTORS)}


@pytest.fixture
def koch_servos():
    def make(arm: str) -> VirtualDynamixelBus:
        models = ARMS[arm].models
        return VirtualDynamixelBus([VirtualServo(i + 1, MODEL_NUMBER_TABLE[m])
                                    for i, m in enumerate(models)])
    emulators = []

    def started(arm):
        emulators.append(make(arm))
        return emulators[-1]
    yield started
    for emulator in emulators:
        emulator.close()


def test_koch_follower_is_configured_as_lerobot_and_reads_degrees(koch_servos, tmp_path):
    servos = koch_servos("koch_follower")
    save_calibration(tmp_path / "koch.json", koch_calibration())
    robot = ServoArm(ServoArmConfig(type="koch_follower", port=servos.port, id="koch",
                                    calibration_dir=str(tmp_path)))
    robot.connect()
    try:
        memory = {i: s.memory for i, s in servos.servos.items()}
        assert [memory[i][11] for i in range(1, 6)] == [4] * 5  # extended position mode
        assert memory[6][11] == 5  # current-based position for the gripper
        assert int.from_bytes(bytes(memory[3][84:86]), "little") == 1500  # elbow P gain
        assert all(memory[i][64] == 1 for i in range(1, 7))  # follower ends stiff
        positions = robot.read_joint_positions()
        # DEGREES: the middle of the calibrated range (2048) is 0 deg.
        ticks = np.array([servos.servos[i].present for i in range(1, 6)])
        np.testing.assert_allclose(positions[:5], (ticks - 2048) * 360 / 4095, atol=1e-3)
        assert robot.read_joint_currents() is None  # the XL430s report load, not current
        robot.send_joint_targets(np.array([10, -10, 5, 0, 0, 50], np.float32))
        np.testing.assert_allclose(robot.read_joint_positions()[:5], [10, -10, 5, 0, 0],
                                   atol=360 / 4095)
    finally:
        robot.disconnect()
    assert all(s.memory[64] == 0 for s in servos.servos.values())


def test_koch_leader_is_limp_but_for_its_spring_back_gripper(koch_servos, tmp_path):
    servos = koch_servos("koch_leader")
    save_calibration(tmp_path / "lead.json", koch_calibration({"elbow_flex": 1}))
    config = ServoArmConfig(type="koch_leader", port=servos.port, id="lead",
                            calibration_dir=str(tmp_path))
    assert config.calibration_file == tmp_path / "lead.json"
    robot = ServoArm(config)
    robot.connect()
    try:
        torque = {i: s.memory[64] for i, s in servos.servos.items()}
        assert torque == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1}
        assert servos.servos[3].memory[10] & 1 == 1  # elbow drive mode written with the file
        assert robot.read_joint_positions().shape == (6,)
        with pytest.raises(MotorBusError, match="leader arm"):
            robot.send_joint_targets(np.zeros(6, np.float32))
    finally:
        robot.disconnect()
    assert all(s.memory[64] == 0 for s in servos.servos.values())  # leaders always go limp


def test_so_leader_is_read_limp_and_shares_lerobots_calibration_place(tmp_path):
    arm = VirtualSO100(calibrated=True)
    arm.start()
    try:
        arm.save_calibration(tmp_path / "leader.json")
        config = ServoArmConfig(type="so101_leader", port=arm.port, id="leader",
                                calibration_dir=str(tmp_path))
        robot = ServoArm(config)
        robot.connect()
        assert all(arm.register(m, "Torque_Enable") == 0 for m in MOTORS)
        arm.move_by_hand("wrist_flex", 25.0)  # a person moves the leader
        assert robot.read_joint_positions()[3] == pytest.approx(25.0, abs=360 / 4095)
        robot.disconnect()
    finally:
        arm.stop()


def test_each_arm_keeps_its_calibration_where_lerobot_does():
    places = {name: (spec.calibration_kind, spec.device_name) for name, spec in ARMS.items()}
    assert places["so100_follower"] == places["so101_follower"] == ("robots", "so_follower")
    assert places["so101_leader"] == ("teleoperators", "so_leader")
    assert places["koch_follower"] == ("robots", "koch_follower")
    assert places["koch_leader"] == ("teleoperators", "koch_leader")
