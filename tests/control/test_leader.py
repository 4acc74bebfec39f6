"""The leader arm through the real stack: two virtual SO-100s on real pseudo-terminals, the
follower driven by make_robot_env (so101 template, ServoArm so101_follower), the leader read and
geared through the real driver (ServoArm so101_leader). Take-over by a posted pygame `space`
key, and automatically by pushing the leader."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hiljax.control import (
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    GRIPPER_STAY,
    InputController,
    LeaderArmController,
    LeaderSettings,
    leader_gripper_command,
    make_leader_controller,
)
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.robots import ARMS, ServoArm, ServoArmConfig
from hiljax.hardware.virtual import FirstOrderPhysics, VirtualSO100, so100_joints
from hiljax.kinematics import RobotKinematics

pygame = pytest.importorskip("pygame")

TEMPLATE = Path(__file__).resolve().parents[2] / "configs" / "env_real_so101_template.json"
KINEMATICS = RobotKinematics("so100")
STEP_SIZES = (0.02, 0.02, 0.02)  # the template's ee_action_space_params
IDLE = (0.0, 0.0, 0.0, 1.0)  # the policy holds still (gripper: stay)
MOTORS = range(1, 7)


def tip(joints) -> np.ndarray:
    return KINEMATICS.fk_gripper_tip(np.asarray(joints, np.float64)[:5])[:3, 3]


def stiff_follower() -> VirtualSO100:
    """A follower whose servos settle well inside a control period (10 ms time constant, not
    50): each step then ends where it was commanded, so an open-loop replay of delta actions
    has no servo lag to drift on and measures only what the actions say."""
    return VirtualSO100(physics=FirstOrderPhysics(so100_joints(), time_constant_s=0.01),
                        calibrated=True)


@pytest.fixture
def arms(tmp_path):
    follower, leader = stiff_follower(), VirtualSO100(calibrated=True)
    follower.start()
    leader.start()
    follower.save_calibration(tmp_path / "my_follower.json")  # the template's robot.id
    leader.save_calibration(tmp_path / "my_leader.json")
    yield follower, leader
    follower.stop()
    leader.stop()


def leader_arm(virtual: VirtualSO100, tmp_path) -> ServoArm:
    return ServoArm(ServoArmConfig(type="so101_leader", port=virtual.port, id="my_leader",
                                   calibration_dir=str(tmp_path)))


def make_env(virtual: VirtualSO100, tmp_path, controller=None):
    # control_mode null: the injected controller is the only one (the factory refuses "leader"
    # until it builds the leader itself). reset_time_s 1.0: the reset move (50 commands 15 ms
    # apart) ends before the first observation, so a replay starts from the same pose.
    cfg = load_env_config(TEMPLATE, [
        "robot.cameras=[]", "wrapper.crop_params_dict=null", "wrapper.resize_size=null",
        f"robot.port={virtual.port}", f"robot.calibration_dir={tmp_path}",
        "wrapper.display_cameras=false", "wrapper.reset_time_s=1.0",
        "wrapper.ee_action_space_params.control_mode=null"])
    follower = ServoArm(ServoArmConfig(type="so101_follower", port=virtual.port,
                                       id="my_follower", calibration_dir=str(tmp_path),
                                       max_relative_target=cfg.robot.max_relative_target))
    return make_robot_env(cfg, robot=follower, controller=controller)


class Recorder:
    """Steps an env and keeps what the actor would store."""

    def __init__(self, env):
        self.env, self.actions, self.flags = env, [], []

    def step(self, action=IDLE, times: int = 1) -> dict:
        for _ in range(times):
            _, _, _, _, info = self.env.step(np.asarray(action, np.float32))
            self.actions.append(np.asarray(info["action_intervention"]))
            self.flags.append(info["is_intervention"])
        return info


def press_space() -> None:
    code = pygame.key.key_code("space")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code))
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=code))


def motor_index(motor: str) -> int:
    return ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll",
            "gripper").index(motor)


def torques(virtual: VirtualSO100) -> list[int]:
    return [virtual.register(m, "Torque_Enable") for m in MOTORS]


def test_space_takes_over_and_the_follower_goes_where_the_leader_is(arms, tmp_path):
    follower, leader = arms
    controller = LeaderArmController(leader_arm(leader, tmp_path), KINEMATICS, STEP_SIZES,
                                     use_gripper=True)  # events: the keyboard (pygame)
    env = make_env(follower, tmp_path, controller)
    run = Recorder(env)
    try:
        env.reset()
        run.step(times=8)
        assert not any(run.flags)
        assert torques(leader) == [1] * 6  # geared: the leader went to the follower's pose
        np.testing.assert_allclose(leader.joint_positions(), follower.joint_positions(), atol=1.0)

        press_space()
        assert run.step()["is_intervention"] is True
        assert torques(leader) == [0] * 6  # the person holds a limp leader
        held = leader.joint_positions()
        for motor, change in (("shoulder_pan", 12.0), ("elbow_flex", -15.0),
                              ("wrist_flex", -10.0)):
            leader.move_by_hand(motor, held[motor_index(motor)] + change)
        run.step(times=10)
        assert np.linalg.norm(tip(follower.joint_positions()) - tip(leader.joint_positions())) \
            < 0.003
        assert np.abs(tip(leader.joint_positions()) - tip(held)).max() > 0.03  # it did move

        leader.move_by_hand("gripper", 5.0)  # squeeze the leader's gripper
        run.step(times=12)  # max_relative_target: 10 % of the gripper's range a step
        assert follower.joint_positions()[5] < 2.0
        grippers = [a[3] for a, flag in zip(run.actions, run.flags) if flag]
        assert grippers.count(GRIPPER_CLOSE) == 1 and set(grippers) == {GRIPPER_CLOSE,
                                                                        GRIPPER_STAY}
        recorded_tip, recorded_gripper = tip(follower.joint_positions()), \
            follower.joint_positions()[5]

        press_space()
        assert run.step(times=3)["is_intervention"] is False
        assert torques(leader) == [1] * 6  # geared again
    finally:
        env.close()
    assert torques(leader) == [0] * 6  # stop() leaves the leader limp

    actions = np.stack(run.actions)
    assert actions.shape == (len(run.flags), 4) and actions.dtype == np.float32
    assert np.all(np.abs(actions[:, :3]) <= 1.0) and set(actions[:, 3]) <= {0.0, 1.0, 2.0}
    assert np.abs(actions[:, :3]).max() == 1.0  # the leader was more than a step away

    replay(actions, tmp_path, recorded_tip, recorded_gripper)


def replay(actions, tmp_path, recorded_tip, recorded_gripper) -> None:
    """The stored actions, replayed on a fresh follower with nobody intervening, move it the
    same way."""
    fresh = stiff_follower()
    fresh.start()
    env = make_env(fresh, tmp_path)
    try:
        env.reset()
        for action in actions:
            env.step(action)
        joints = fresh.joint_positions()
    finally:
        env.close()
        fresh.stop()
    assert np.linalg.norm(tip(joints) - recorded_tip) < 0.003
    assert abs(joints[5] - recorded_gripper) < 2.0


def test_automatic_mode_gears_the_leader_and_a_push_takes_over(arms, tmp_path):
    follower, leader = arms
    controller = LeaderArmController(leader_arm(leader, tmp_path), KINEMATICS, STEP_SIZES,
                                     use_gripper=True, automatic=True, events=InputController(),
                                     settings=LeaderSettings(release_steps=3))
    env = make_env(follower, tmp_path, controller)
    run = Recorder(env)
    try:
        env.reset()
        run.step((1.0, 0.0, 0.0, 1.0), times=2)  # the policy moves the follower 4 cm along x
        run.step(times=8)
        assert not any(run.flags)
        assert torques(leader) == [1] * 6
        for motor in MOTORS:  # low gains, and the goals are the follower's joints
            assert [leader.register(motor, r) for r in ("P_Coefficient", "I_Coefficient",
                                                        "D_Coefficient")] == [4, 0, 4]
            assert abs(leader.register(motor, "Goal_Position")
                       - follower.register(motor, "Present_Position")) <= 2
        np.testing.assert_allclose(leader.joint_positions(), follower.joint_positions(), atol=1.0)

        pushed = leader.joint_positions()
        leader.move_by_hand("shoulder_pan", pushed[0] + 20.0)  # the person grabs and pushes it
        assert run.step()["is_intervention"] is True
        assert torques(leader) == [0] * 6
        run.step(times=6)
        assert np.linalg.norm(tip(follower.joint_positions()) - tip(leader.joint_positions())) \
            < 0.003
        run.step(times=6)  # held still with the follower on it: control goes back
        assert run.flags[-1] is False
        assert torques(leader) == [1] * 6
    finally:
        env.close()
    taken = run.flags[10:]
    assert taken[0] and taken.index(False) >= 4  # the follower had to catch up first


@pytest.mark.parametrize("leader, follower, last, expected", [
    (100.0, 100.0, None, GRIPPER_STAY),
    (60.0, 40.0, None, GRIPPER_STAY),  # inside the +-0.3 band
    (80.0, 40.0, None, GRIPPER_OPEN),
    (5.0, 100.0, None, GRIPPER_CLOSE),
    (5.0, 40.0, (GRIPPER_CLOSE, 5.0), GRIPPER_STAY),  # sent once
    (50.0, 0.0, (GRIPPER_OPEN, 50.0), GRIPPER_STAY),
    (50.0, 100.0, (GRIPPER_OPEN, 50.0), GRIPPER_STAY),  # half-open leader: no open/close ping-pong
    (10.0, 100.0, (GRIPPER_OPEN, 50.0), GRIPPER_CLOSE),  # the leader itself closed
])
def test_gripper_command_from_the_two_grippers(leader, follower, last, expected):
    assert leader_gripper_command(leader, follower, last) == expected


def test_what_the_controller_refuses(tmp_path):
    with pytest.raises(ValueError, match="not a leader"):
        make_leader_controller(ServoArmConfig(type="so101_follower", port="/dev/null"),
                               step_sizes=STEP_SIZES)
    with pytest.raises(ValueError, match="geared"):
        LeaderArmController(None, KINEMATICS, STEP_SIZES, automatic=True,
                            events=InputController(), settings=LeaderSettings(follow=False))
    # A Koch leader on LeRobot's own bus (-100..100): refused; leader_arm reads it in degrees.
    koch = SimpleNamespace(is_connected=True, bus=ARMS["koch_leader"].make_bus("/dev/null"))
    with pytest.raises(ValueError, match="leader_arm"):
        LeaderArmController(koch, KINEMATICS, STEP_SIZES, events=InputController()).start()
    controller = make_leader_controller(
        ServoArmConfig(type="so101_leader", port="/dev/null", id="x"), step_sizes=STEP_SIZES,
        control_mode="leader_automatic", events=InputController())
    assert controller.automatic and isinstance(controller.leader, ServoArm)
