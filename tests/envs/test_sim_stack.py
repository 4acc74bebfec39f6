"""The full make_robot_env stack on the MuJoCo so100 (configs/env_sim.json): kinematics and
simulator agree, the workspace holds, reset returns, and a scripted person picks the cube."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from hiljax.control import ScriptedController
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "env_sim.json"
CFG = load_env_config(CONFIG)
LOW = np.array(CFG.wrapper.ee_action_space_params.bounds["min"])
HIGH = np.array(CFG.wrapper.ee_action_space_params.bounds["max"])
STEP = CFG.wrapper.ee_action_space_params.x_step_size
STAY = 1.0


@pytest.fixture(scope="module")
def env():
    environment = make_robot_env(CFG)
    yield environment
    environment.close()


def _tip(env):
    return env.unwrapped.robot.gripper_tip_position()  # the simulator's site, not FK


@pytest.mark.parametrize("delta", [(1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1),
                                   (-0.5, 0.5, 0.5)])
def test_ee_deltas_move_the_simulated_tip_by_the_commanded_amount(env, delta):
    env.reset(seed=1)
    before = _tip(env)
    env.step(np.array([*delta, STAY], np.float32))
    np.testing.assert_allclose(_tip(env) - before, np.array(delta) * STEP, atol=3e-3)


def test_the_workspace_bounds_hold(env):
    for direction in ([1, 1, 1], [-1, -1, -1], [1, -1, -1], [-1, 1, 1]):
        env.reset(seed=2)
        for _ in range(20):
            env.step(np.array([*direction, STAY], np.float32))
        tip = _tip(env)
        assert np.all(tip >= LOW - 5e-3) and np.all(tip <= HIGH + 5e-3), tip


def test_reset_returns_to_the_configured_joints(env):
    env.reset(seed=3)
    for _ in range(10):
        env.step(np.array([1, -1, 1, 0], np.float32))  # wander off and close the gripper
    observation, _ = env.reset(seed=3)
    np.testing.assert_allclose(observation["observation.state"][:6],
                               CFG.wrapper.fixed_reset_joint_positions, atol=1.5)


def _pick_script(phase_steps=(12, 12, 6)):
    """A scripted person: above the cube, down to it, close, lift (targets from the cube
    position it sees at the start of the episode)."""
    approach, descend, close = np.cumsum(phase_steps)
    cube = {}

    def target(step, observation):
        if step == 0:
            cube["xyz"] = observation["observation.environment_state"].astype(float)
        if step < approach:
            return cube["xyz"] + [0, 0, 0.05]
        if step < close:
            return cube["xyz"] + [0, 0, 0.002]
        return cube["xyz"] + [0, 0, 0.09]

    def gripper(step, observation):
        return "open" if step < descend else "close"

    return target, gripper


def test_a_scripted_person_picks_and_lifts_the_cube(env):
    robot = env.unwrapped.robot
    target, gripper = _pick_script()
    controller = ScriptedController(target, lambda obs: robot.gripper_tip_position(), gain=50.0,
                                    gripper=gripper, end_on_reach=False)
    picking = make_robot_env(CFG, robot=robot, controller=controller)
    for seed in (0, 1):
        picking.reset(seed=seed)
        grasped_width = None
        for step in range(60):
            _, reward, terminated, truncated, info = picking.step(np.zeros(4, np.float32))
            assert info["is_intervention"] is True
            if step == 31:
                grasped_width = robot.read_joint_positions()[-1]
                assert robot.cube_grasped()
            if terminated or truncated:
                break
        assert terminated and reward == 1.0 and info["next.success"], (seed, step)
        assert 5.0 < grasped_width < 95.0  # the jaws stopped on the cube, not fully closed
