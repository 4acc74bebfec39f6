"""The hard own task (configs/sim_pick_lift_hard.json): the cube anywhere in a 20 x 20 cm area
with a yaw of +-45 degrees, a wrist-roll action, and the scripted person turning the wrist."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from hiljax.config import ConfigError, apply_overrides, from_dict
from hiljax.control import ScriptedController
from hiljax.control.keymap import KeyboardState, KeyEvent, keyboard_commands
from hiljax.control.mapping import MappingConfig, PadState, pad_commands
from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig, load_env_config
from hiljax.envs.factory import make_robot, make_robot_env
from hiljax.envs.sim import SimRobot
from hiljax.envs.sim.operator import SimOperator, SimState, expert_roll, finger_yaw_error
from hiljax.envs.sim.task import CubeSpawn
from hiljax.envs.wrappers import JointMaskingActionSpace
from hiljax.kinematics import RobotKinematics

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HARD = CONFIGS / "sim_pick_lift_hard.json"
WRIST_ROLL = 4
STILL = np.array([0.0, 0.0, 0.0, 0.0, 1.0], np.float32)  # no motion, no roll, gripper stays


def hard_config(*overrides: str) -> HILSerlRobotEnvConfig:
    """The hard task's env (the run config's `env`) without cameras: the state-only sim is
    what these tests need."""
    env = json.loads(HARD.read_text())["env"]
    return from_dict(HILSerlRobotEnvConfig, apply_overrides(env, ["robot.cameras=[]", *overrides]))


def relative_yaw_deg(robot: SimRobot) -> float:
    """The cube's yaw from the radial direction (what the spawn draws), in degrees."""
    x, y = robot.environment_state()[:2]
    return float(np.degrees(robot.cube_yaw() - np.arctan2(y, x)))


def inner_env(env, attribute: str):
    while not hasattr(env, attribute):
        env = env.env
    return env


def test_the_spawn_area_and_yaw_come_from_the_config_and_the_default_is_the_easy_task():
    assert make_robot(RobotConfig(cameras=()), fps=10).cube_spawn == CubeSpawn()
    cfg = hard_config()
    robot = make_robot(cfg.robot, fps=cfg.fps)
    assert robot.cube_spawn == CubeSpawn((0.07, 0.27), (-0.10, 0.10), 45.0)
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(300):
        robot.reset_scene(rng)
        starts.append((*robot.environment_state()[:2], relative_yaw_deg(robot)))
    x, y, yaw = np.array(starts).T
    assert 0.07 <= x.min() < 0.09 and 0.25 < x.max() <= 0.27
    assert -0.10 <= y.min() < -0.08 and 0.08 < y.max() <= 0.10
    assert -45.0 <= yaw.min() < -40.0 and 40.0 < yaw.max() <= 45.0
    # The tip may go wherever a cube may start: the EE bounds contain the area.
    bounds = cfg.wrapper.ee_action_space_params.bounds
    assert bounds["min"][0] <= 0.07 and 0.27 <= bounds["max"][0]
    assert bounds["min"][1] <= -0.10 and 0.10 <= bounds["max"][1]


@pytest.mark.parametrize("fields, message", [
    ({"robot": {"cube_x_range": [0.2, 0.1]}}, "cube_x_range must be"),
    ({"robot": {"cube_yaw_deg": -5}}, "cube_yaw_deg must be in"),
    ({"robot": {"cube_y_range": [-0.2, 0.1]}}, "inside ee_action_space_params.bounds on y"),
    ({"wrapper": {"ee_action_space_params": {"roll_step_size": 0}}}, "roll_step_size must be"),
    ({"robot": {"type": "gym_hil"}, "task": "PandaPickCubeBase-v0",
      "wrapper": {"ee_action_space_params": {"roll_step_size": 10}}}, "roll_step_size to null"),
])
def test_bad_cube_areas_and_roll_steps_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(HILSerlRobotEnvConfig, fields)


def test_rolling_the_wrist_turns_the_fingers_but_does_not_move_the_tip(state_robot):
    kinematics = RobotKinematics("so100")
    rng = np.random.default_rng(3)
    low, high = kinematics.joint_limits_deg.T
    for joints in rng.uniform(low, high, size=(20, 5)):
        rolled = np.array([np.append(joints[:4], roll) for roll in np.linspace(-180, 180, 9)])
        tips = np.array([kinematics.fk_gripper_tip(j)[:3, 3] for j in rolled])
        np.testing.assert_allclose(tips, np.broadcast_to(tips[0], tips.shape), atol=1e-9)
    # The simulator agrees, and a positive roll turns a gripper pointing down clockwise.
    home = state_robot.read_joint_positions()
    state_robot.set_joint_positions(np.append(home[:4], 0.0))
    tip, closing = state_robot.gripper_tip_position(), state_robot.gripper_rotation()[:, 1]
    state_robot.set_joint_positions(np.append(home[:4], 30.0))
    turned = state_robot.gripper_rotation()[:, 1]
    np.testing.assert_allclose(state_robot.gripper_tip_position(), tip, atol=1e-9)
    turn = np.degrees(np.arctan2(turned[1], turned[0]) - np.arctan2(closing[1], closing[0]))
    assert turn == pytest.approx(-30.0, abs=0.5)
    state_robot.set_joint_positions(home)


def test_the_ee_wrapper_applies_droll_and_leaves_the_3d_action_alone():
    three_d = make_robot_env(load_env_config(CONFIGS / "env_sim.json",
                                             ["wrapper.ee_action_space_params.control_mode=null"]))
    assert three_d.action_space.shape == (4,)
    env = make_robot_env(hard_config("wrapper.ee_action_space_params.control_mode=null"))
    assert env.action_space.shape == (5,)
    robot = env.unwrapped.robot
    env.reset(seed=0)
    tip = robot.gripper_tip_position()
    roll = robot.read_joint_positions()[WRIST_ROLL]
    for droll, turn in ((1.0, 10.0), (-0.5, -5.0), (3.0, 10.0)):  # clipped to one step size
        env.step(np.array([0, 0, 0, droll, 1], np.float32))
        roll, before = robot.read_joint_positions()[WRIST_ROLL], roll
        assert roll - before == pytest.approx(turn, abs=0.3)
    np.testing.assert_allclose(robot.gripper_tip_position(), tip, atol=2e-3)
    for _ in range(20):  # from 15 degrees: the joint's limit (180) stops it
        env.step(np.array([0, 0, 0, 1, 1], np.float32))
    assert robot.read_joint_positions()[WRIST_ROLL] == pytest.approx(180.0, abs=0.5)


def test_the_keyboard_and_the_gamepad_turn_the_roll():
    config = MappingConfig(roll_step_size=0.5)
    held = KeyboardState().apply(KeyEvent("down", "e"))
    assert keyboard_commands(held, config).roll == 0.5
    assert keyboard_commands(held.apply(KeyEvent("down", "q")), config).roll == 0.0
    assert keyboard_commands(KeyboardState().apply(KeyEvent("down", "q")), config).roll == -0.5
    commands = pad_commands(PadState(right_x=0.6, right_y=-0.4), (), MappingConfig())
    assert commands.roll == pytest.approx(0.6) and commands.deltas[2] == pytest.approx(0.4)
    assert pad_commands(PadState(right_x=0.05), (), MappingConfig()).roll == 0.0  # deadzone


def test_a_4d_human_action_reaches_the_stored_action_and_the_robot():
    def roll_fn(step, observation):
        return 0.5

    controller = ScriptedController(lambda step, obs: (0.17, 0.0, 0.08),
                                    lambda obs: obs["observation.state"][-3:], gripper="stay",
                                    end_on_reach=False, roll_fn=roll_fn)
    env = make_robot_env(hard_config("wrapper.ee_action_space_params.control_mode=null"),
                         controller=controller)
    robot = env.unwrapped.robot
    env.reset(seed=0)
    roll = robot.read_joint_positions()[WRIST_ROLL]
    _, _, _, _, info = env.step(np.zeros(5, np.float32))
    assert info["is_intervention"] and info["action_intervention"].shape == (5,)
    assert info["action_intervention"][3] == 0.5 and info["action_intervention"][4] == 1.0
    assert robot.read_joint_positions()[WRIST_ROLL] - roll == pytest.approx(5.0, abs=0.3)
    # Masking the roll out of the policy's action cuts the stored action the same way.
    masked = JointMaskingActionSpace(env, [True, True, True, False, True])
    assert masked.action_space.shape == (4,)
    _, _, _, _, info = masked.step(np.zeros(4, np.float32))
    assert info["action_intervention"].shape == (4,)


def test_the_roll_is_planned_as_the_smallest_turn_and_a_scene_without_yaw_reads_zero():
    down = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # fingers close on y
    def state(cube_yaw_deg, rotation=down):
        return SimState(tip=np.zeros(3), cube=np.zeros(3), opening=100.0, grasped=False,
                        cube_lift=0.0, success_lift=0.05, cube_yaw=np.radians(cube_yaw_deg),
                        gripper_rotation=rotation)

    for cube_yaw, error in ((90.0, 0.0), (80.0, -10.0), (135.0 - 1.0, 44.0), (-44.0, 46.0 - 90)):
        assert np.degrees(finger_yaw_error(state(cube_yaw))) == pytest.approx(error)
    assert expert_roll(state(80.0), "approach") == pytest.approx(10.0)  # clockwise: -10 yaw
    assert expert_roll(state(80.0), "lift") == 0.0
    assert finger_yaw_error(state(80.0, rotation=None)) == 0.0

    class NoYawScene:  # what gym-hil's GymHilScene reports
        lift_height = 0.1

        def environment_state(self): return np.array([0.5, 0.0, 0.02])
        def gripper_tip_position(self): return np.array([0.5, 0.0, 0.2])
        def read_joint_positions(self): return np.array([100.0])
        def cube_grasped(self): return False
        def cube_lift(self): return 0.0
        def task_success(self): return False

    read = SimState.read(NoYawScene())
    assert read.cube_yaw == 0.0 and read.gripper_rotation is None
    SimOperator(NoYawScene()).update()  # a 3-D operator runs on it
    with pytest.raises(TypeError, match="cube_yaw"):
        SimOperator(NoYawScene(), roll_step_size=10.0)


def run_demonstration(env, seed: int, yaw_deg: float | None = None, max_steps: int = 60):
    """(success, steps, final wrist roll in degrees) of one operator episode; `yaw_deg` turns the cube to that yaw from the
    radial direction after the reset."""
    env.reset(seed=seed)
    robot = env.unwrapped.robot
    if yaw_deg is not None:
        x, y = robot.environment_state()[:2]
        yaw = np.arctan2(y, x) + np.radians(yaw_deg)
        robot.data.qpos[robot._cube_qpos + 3:robot._cube_qpos + 7] = (
            np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
    for step in range(1, max_steps + 1):
        _, reward, terminated, truncated, info = env.step(STILL)
        assert info["is_intervention"]
        if terminated or truncated:
            break
    return reward == 1.0 and terminated, step, float(robot.read_joint_positions()[WRIST_ROLL])


def test_the_scripted_person_picks_the_cube_in_seeded_hard_scenes():
    env = make_robot_env(hard_config("wrapper.sim_operator.demo_episodes=1000"))
    operator = inner_env(env, "controller").controller
    assert operator.roll_step_size == 10.0
    scenes = [(seed, None) for seed in range(10)]
    scenes += [(seed, yaw) for seed in (10, 11, 12) for yaw in (-44.5, 44.5)]
    results = [run_demonstration(env, seed, yaw) for seed, yaw in scenes]
    failed = [scene for scene, (success, *_) in zip(scenes, results) if not success]
    assert not failed, failed
    assert max(steps for _, steps, _ in results) <= 25
    # A cube near +-45 degrees took a large turn of the wrist (either way is as short).
    assert all(abs(roll) > 30.0 for (_, yaw), (*_, roll) in zip(scenes, results) if yaw)
    env.close()


def test_the_run_config_trains_a_4d_policy_on_images_and_the_arm_state_only():
    from hiljax.run.train_config import check_env_matches_policy, load_train_config

    config = load_train_config(HARD)
    env = make_robot_env(config.env)  # with its two cameras
    check_env_matches_policy(env.observation_space, env.action_space, config.policy)
    assert config.policy.continuous_action_dim == 4 and env.action_space.shape == (5,)
    assert set(env.observation_space.spaces) == {"observation.state", "observation.images.front",
                                                 "observation.images.wrist"}
    env.close()
