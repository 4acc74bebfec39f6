"""The whole real-robot path on a laptop: make_robot_env(robot.type = "so100") -> ServoArm ->
FeetechMotorsBus -> a real pseudo-terminal -> the virtual SO-100 with the MuJoCo arm behind it.
An EE-delta episode moves the end effector by what was commanded."""

from pathlib import Path

import numpy as np
import pytest

from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.virtual import VirtualSO100, so100_joints
from hiljax.kinematics import RobotKinematics

TEMPLATE = Path(__file__).resolve().parents[2] / "configs" / "env_real_so100_template.json"


@pytest.fixture
def mujoco_arm(tmp_path):
    from hiljax.envs.sim.servo_arm import MujocoServoPhysics

    arm = VirtualSO100(physics=MujocoServoPhysics(so100_joints()), calibrated=True)
    arm.start()
    arm.save_calibration(tmp_path / "my_follower.json")  # the template's robot.id
    yield arm
    arm.stop()


def _env(arm, tmp_path):
    cfg = load_env_config(TEMPLATE, [
        f"robot.port={arm.port}", f"robot.calibration_dir={tmp_path}",
        "wrapper.ee_action_space_params.control_mode=null", "wrapper.display_cameras=false",
        "wrapper.reset_time_s=1.0",
        "wrapper.control_time_s=5.0"])
    return make_robot_env(cfg)


def _tip(env) -> np.ndarray:
    joints = env.unwrapped.robot.read_joint_positions()[:5].astype(np.float64)
    return RobotKinematics("so100").fk_gripper_tip(joints)[:3, 3]


def test_an_ee_delta_episode_moves_the_real_driver_by_the_commanded_amount(mujoco_arm, tmp_path):
    env = _env(mujoco_arm, tmp_path)
    try:
        env.reset()
        start = _tip(env)
        assert env.unwrapped.realtime  # a real arm runs at the env's fps
        for action in ([1.0, 0.0, 0.0, 1.0],) * 3 + ([0.0, 1.0, -1.0, 1.0],) * 2:
            env.step(np.asarray(action, np.float32))
        for _ in range(20):  # hold: the servos settle on the last commanded pose
            env.step(np.asarray([0.0, 0.0, 0.0, 1.0], np.float32))
        moved = _tip(env) - start
        # 3 x 2 cm along x, then 2 x 2 cm along +y and -z (x_y_z step sizes 0.02 m).
        # Within a few millimetres: the servos hold the pose against gravity (about 4 mm here).
        np.testing.assert_allclose(moved, [0.06, 0.04, -0.04], atol=0.008)
    finally:
        env.close()
    assert all(mujoco_arm.register(m, "Torque_Enable") == 0 for m in range(1, 7))


def test_the_actor_runs_an_episode_on_the_virtual_arm(mujoco_arm, tmp_path):
    """driver -> bus -> Robot -> HILSerlRobotEnv -> actor -> transport: one whole episode."""
    from hiljax.actor import Actor
    from hiljax.config import ActorConfig
    from tests.sac_helpers import tiny_config
    from transport.factory import make_actor_transport, make_learner_transport

    env = _env(mujoco_arm, tmp_path)
    learner = make_learner_transport("inproc").start()
    features = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    policy = tiny_config(input_features=features, continuous_action_dim=3, num_discrete_actions=3)
    actor = Actor(ActorConfig(policy=policy, warmup_steps=10_000, transport="inproc"), env,
                  make_actor_transport("inproc", learner.address))
    try:
        stats = actor.run_episode()
        assert actor.interaction_step == 50  # control_time_s 5.0 at 10 fps
        assert stats["Interaction step"] == 50
        received = learner.poll_transitions(timeout=5.0)
        assert len(received) == 1
    finally:
        actor.transport.close()
        learner.stop()
        env.close()
