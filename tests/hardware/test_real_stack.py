"""The whole real-robot path on a laptop: make_robot_env(robot.type = "so100") -> ServoArm ->
FeetechMotorsBus -> a real pseudo-terminal -> the virtual SO-100 with the MuJoCo arm behind it.
An EE-delta episode moves the end effector by what was commanded."""

import time
from pathlib import Path

import numpy as np
import pytest

from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.virtual import VirtualSO100, so100_joints
from hiljax.kinematics import RobotKinematics

TEMPLATE = Path(__file__).resolve().parents[2] / "configs" / "env_real_so100_template.json"
# The template's cameras (/dev/video0, /dev/video2) and their crops are a person's; these
# tests have none, or a video file.
NO_CAMERAS = ["robot.cameras=[]", "wrapper.crop_params_dict=null", "wrapper.resize_size=null"]


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
        *NO_CAMERAS, f"robot.port={arm.port}", f"robot.calibration_dir={tmp_path}",
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


def test_an_actor_whose_learner_is_gone_leaves_the_virtual_arm_limp(mujoco_arm, tmp_path):
    """on_learner_lost="disconnect": the learner never answers, so mid-episode the actor stops,
    closes the env and the real driver switches torque off on every motor (over the pty)."""
    import threading

    from hiljax.actor import Actor
    from hiljax.config import ActorConfig
    from tests.sac_helpers import tiny_config
    from transport.factory import make_actor_transport

    env = _env(mujoco_arm, tmp_path)
    features = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    policy = tiny_config(input_features=features, continuous_action_dim=3, num_discrete_actions=3)
    config = ActorConfig(policy=policy, warmup_steps=10_000, transport="zmq",
                         learner_timeout_s=0.5, on_learner_lost="disconnect")
    transport = make_actor_transport("zmq", "127.0.0.1:9")  # nobody listens there
    stop = threading.Event()
    actor = Actor(config, env, transport, make_env=lambda: _env(mujoco_arm, tmp_path), stop=stop)
    runner = threading.Thread(target=actor.run_episode, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while any(mujoco_arm.register(m, "Torque_Enable") for m in range(1, 7)):
            assert time.monotonic() < deadline, "the arm kept its torque"
            time.sleep(0.05)
        assert 0 < actor.interaction_step < 50  # stopped mid-episode
    finally:
        stop.set()
        runner.join(timeout=20)
        transport.close()
    assert not runner.is_alive() and actor.env is None  # closed, not rebuilt


def _video(path: Path, width: int = 64, height: int = 48, frames: int = 10) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    for index in range(frames):
        writer.write(np.full((height, width, 3), 20 * index, np.uint8))
    writer.release()
    return path


def test_an_actor_episode_with_cameras_and_a_leader_taking_over(tmp_path):
    """Virtual follower + virtual leader (two ptys), a camera from a video file, control_mode
    leader from the config: the person takes over mid-episode and the learner receives the
    episode with the intervention steps flagged and the person's actions in the policy's space."""
    import threading

    pygame = pytest.importorskip("pygame")
    from hiljax.actor import Actor
    from hiljax.config import ActorConfig
    from tests.sac_helpers import tiny_config
    from transport.factory import make_actor_transport, make_learner_transport

    follower, leader = VirtualSO100(calibrated=True), VirtualSO100(calibrated=True)
    follower.start()
    leader.start()
    follower.save_calibration(tmp_path / "my_follower.json")
    leader.save_calibration(tmp_path / "my_leader.json")
    video = _video(tmp_path / "front.avi")
    cfg = load_env_config(TEMPLATE, [
        f"robot.port={follower.port}", f"robot.calibration_dir={tmp_path}",
        (f'robot.cameras={{"front": {{"type": "file", "index_or_path": "{video}", "width": 64, '
         f'"height": 48, "fps": 30}}}}'),
        "wrapper.crop_params_dict=null", "wrapper.resize_size=[32,32]",
        "wrapper.ee_action_space_params.control_mode=leader", "wrapper.display_cameras=false",
        (f'teleop={{"type": "so100_leader", "port": "{leader.port}", "id": "my_leader", '
         f'"calibration_dir": "{tmp_path}"}}'),
        "wrapper.reset_time_s=1.0", "wrapper.control_time_s=3.0"])
    env = make_robot_env(cfg)
    learner = make_learner_transport("inproc").start()
    features = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    assert features["observation.images.front"] == (32, 32, 3)
    policy = tiny_config(input_features=features, continuous_action_dim=3, num_discrete_actions=3)
    actor = Actor(ActorConfig(policy=policy, warmup_steps=10_000, transport="inproc"), env,
                  make_actor_transport("inproc", learner.address))

    def person():  # takes over at step 8, moves the (limp) leader, lets go at step 20
        space = pygame.key.key_code("space")
        for step, action in ((8, "take"), (20, "release")):
            while actor.interaction_step < step:
                threading.Event().wait(0.01)
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=space))
            pygame.event.post(pygame.event.Event(pygame.KEYUP, key=space))
            if action == "take":
                threading.Event().wait(0.3)
                leader.move_by_hand("shoulder_pan", 10.0)

    helper = threading.Thread(target=person, daemon=True)
    try:
        helper.start()
        stats = actor.run_episode()
        helper.join(timeout=10)
        batch = learner.poll_transitions(timeout=5.0)
        assert len(batch) == 1 and stats["Episode intervention"] == 1
        from hiljax import wire

        episode = wire.decode_transitions(batch[0].codec, batch[0].payload)
        flags = episode["is_intervention"]
        assert flags[:8].sum() == 0 and flags[10:19].all() and not flags[-5:].any()
        actions = episode["actions"][flags]
        assert (np.abs(actions[:, :3]) <= 1).all() and set(actions[:, 3]) <= {0.0, 1.0, 2.0}
        assert np.abs(actions[:, 1]).max() > 0.1  # the leader's pan swung the EE sideways
        assert episode.observations["observation.images.front"].shape[1:] == (32, 32, 3)
    finally:
        actor.transport.close()
        learner.stop()
        env.close()
        follower.stop()
        leader.stop()
    assert all(follower.register(m, "Torque_Enable") == 0 for m in range(1, 7))


def test_a_stack_that_fails_after_the_arm_connected_leaves_it_limp(tmp_path):
    """A leader on a port that does not exist: make_robot_env fails after the follower
    connected (stiff), and the follower it built goes limp again."""
    arm = VirtualSO100(calibrated=True)
    arm.start()
    try:
        arm.save_calibration(tmp_path / "my_follower.json")
        cfg = load_env_config(TEMPLATE, [
            f"robot.port={arm.port}", f"robot.calibration_dir={tmp_path}", "robot.cameras=[]",
            "wrapper.crop_params_dict=null", "wrapper.resize_size=null",
            "wrapper.ee_action_space_params.control_mode=leader",
            (f'teleop={{"port": "{tmp_path}/no_such_port", "id": "x", '
             f'"calibration_dir": "{tmp_path}"}}')])
        with pytest.raises(Exception, match="calibration|port"):
            make_robot_env(cfg)
        assert all(arm.register(m, "Torque_Enable") == 0 for m in range(1, 7))
    finally:
        arm.stop()
