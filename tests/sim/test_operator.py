"""The scripted operator (control_mode "sim_operator") through the full make_robot_env stack:
it does the task alone, takes over a stuck or drifting policy and hands back, follows its
schedule, is deterministic, and its config is checked."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from hiljax.config import ConfigError, from_dict
from hiljax.envs.configs import HILSerlRobotEnvConfig, SimOperatorConfig, load_env_config
from hiljax.envs.factory import make_robot_env, make_sim_operator
from hiljax.envs.fake_robot import FakeRobot
from hiljax.envs.sim.operator import DEMO, DRIFT, STUCK, SimOperator
from hiljax.envs.wrappers import make_intervention_wrapper

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "env_sim.json"
ZEROS = np.zeros(4, np.float32)  # no motion, gripper command 0 = close: a stuck policy
AWAY = np.array([-1.0, 0.0, 1.0, 1.0], np.float32)  # back and up, gripper stays: drifting


def sim_config(*overrides: str) -> HILSerlRobotEnvConfig:
    return load_env_config(CONFIG, ["wrapper.ee_action_space_params.control_mode=sim_operator",
                                    *[f"wrapper.sim_operator.{o}" for o in overrides]])


def operator_of(env) -> SimOperator:
    while not hasattr(env, "controller"):
        env = env.env
    return env.controller


def run_episode(env, policy, seed: int, max_steps: int = 200):
    """(steps: list of (is_intervention, action_intervention), terminated, reward, info)."""
    env.reset(seed=seed)
    steps = []
    for step in range(max_steps):
        action = policy(step) if callable(policy) else policy
        _, reward, terminated, truncated, info = env.step(action)
        steps.append((info["is_intervention"], info["action_intervention"]))
        if terminated or truncated:
            break
    return steps, terminated, reward, info


def test_the_shipped_sim_config_turns_the_operator_on():
    cfg = load_env_config(CONFIG)
    assert cfg.wrapper.ee_action_space_params.control_mode == "sim_operator"
    env = make_robot_env(cfg)
    operator = operator_of(env)
    assert isinstance(operator, SimOperator) and operator.robot is env.unwrapped.robot
    np.testing.assert_allclose(operator.step_sizes, 0.02)
    env.close()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_demonstrations_pick_and_lift_through_the_full_stack(seed):
    env = make_robot_env(sim_config("demo_episodes=100"))
    operator = operator_of(env)
    policy = np.array([1.0, 1.0, 1.0, 2.0], np.float32)  # ignored: every step is the operator's
    steps, terminated, reward, info = run_episode(env, policy, seed, max_steps=40)
    assert terminated and reward == 1.0 and info["next.success"], (seed, len(steps))
    assert info["episode_end"] is None  # the sim's task reward ended it, not a request
    assert all(flag for flag, _ in steps) and operator.takeovers == [(0, DEMO)]
    assert not np.allclose(steps[0][1], policy)
    assert len(steps) <= 15


def test_it_follows_a_knocked_cube_and_opens_an_empty_closed_gripper():
    env = make_robot_env(sim_config("demo_episodes=100"))
    robot = env.unwrapped.robot
    env.reset(seed=5)
    for _ in range(3):  # above the cube and on the way down
        env.step(ZEROS)
    robot.reset_scene(np.random.default_rng(99))  # knocked elsewhere
    robot.send_joint_targets(np.append(robot.read_joint_positions()[:5], 0.0))  # jaws shut
    assert robot.read_joint_positions()[-1] < 10
    for step in range(40):
        _, reward, terminated, truncated, _ = env.step(ZEROS)
        if terminated or truncated:
            break
    assert terminated and reward == 1.0, step


def test_a_stuck_policy_is_taken_over_after_the_patience_and_the_episode_succeeds():
    patience = 6
    env = make_robot_env(sim_config("p_start=1.0", "p_end=1.0", f"stuck_patience={patience}"))
    operator = operator_of(env)
    steps, terminated, reward, _ = run_episode(env, ZEROS, seed=0)
    flags = [flag for flag, _ in steps]
    assert terminated and reward == 1.0
    assert flags.index(True) == patience and operator.takeovers[0] == (patience, STUCK)
    first_hand_back = flags.index(False, patience)  # corrections, not a whole demonstration
    assert first_hand_back - patience >= operator.cfg.min_intervention_steps
    assert len(operator.takeovers) == operator.cfg.finish_after_takeovers  # the last one finished
    for flag, executed in steps:  # the executed action is in the info, whoever chose it
        if not flag:
            np.testing.assert_array_equal(executed, ZEROS)
    flag, executed = steps[-1]
    assert flag and executed[3] in (0.0, 1.0, 2.0) and np.all(np.abs(executed[:3]) <= 1.0)
    np.testing.assert_allclose(executed[:3], operator.get_deltas(), atol=1e-6)


def test_a_drifting_policy_is_taken_over_before_the_patience_runs_out():
    env = make_robot_env(sim_config("p_start=1.0", "p_end=1.0", "stuck_patience=50",
                                    "finish_after_takeovers=null"))
    operator = operator_of(env)
    steps, *_ = run_episode(env, AWAY, seed=1, max_steps=30)
    first = [flag for flag, _ in steps].index(True)
    assert first < 5 and operator.takeovers[0] == (first, DRIFT)
    assert all(reason == DRIFT for _, reason in operator.takeovers)
    assert len(operator.takeovers) >= 2  # handed back, drifted again, taken over again
    assert not np.allclose(steps[first][1], AWAY)  # the operator's correction was executed


def test_an_unwatched_episode_is_never_taken_over():
    env = make_robot_env(sim_config("p_start=0.0", "p_end=0.0"))
    steps, terminated, _, info = run_episode(env, ZEROS, seed=0)
    assert not any(flag for flag, _ in steps) and not terminated and info["episode_end"] is None
    assert len(steps) == 100  # ran into the time limit


def test_episodes_are_deterministic_given_the_seeds():
    def record(seed):
        env = make_robot_env(sim_config("p_start=0.8", "p_end=0.2", "decay_episodes=4",
                                        f"seed={seed}"))
        runs = [run_episode(env, lambda step: AWAY if step % 9 < 2 else ZEROS, seed=s)
                for s in range(4)]
        return [[(flag, executed.tolist()) for flag, executed in steps] for steps, *_ in runs]

    episodes = record(3)
    assert episodes == record(3) and episodes != record(4)
    interventions = [sum(flag for flag, _ in steps) for steps in episodes]
    assert 0 in interventions and max(interventions) > 0  # some watched, some not


def test_the_watch_probability_decays_as_configured(state_robot):
    cfg = SimOperatorConfig(demo_episodes=2, p_start=0.9, p_end=0.1, decay_episodes=400)
    assert [cfg.watch_probability(e) for e in (0, 1)] == [1.0, 1.0]
    np.testing.assert_allclose([cfg.watch_probability(e) for e in (2, 202, 402, 10_000)],
                               [0.9, 0.5, 0.1, 0.1])
    assert SimOperatorConfig(p_end=0.3, decay_episodes=0).watch_probability(0) == 0.3

    def watched(seed):
        operator = SimOperator(state_robot, dataclasses.replace(cfg, seed=seed))
        flags = []
        for _ in range(402):
            operator.reset()
            flags.append((operator.demonstrating, operator.watching))
        return flags

    flags = watched(seed=0)
    assert flags[:2] == [(True, True)] * 2 and not any(demo for demo, _ in flags[2:])
    early, late = (np.mean([w for _, w in flags[start:start + 100]]) for start in (2, 302))
    assert early > 0.7 and late < 0.35 and early > late + 0.4
    assert watched(seed=0) == flags and watched(seed=1) != flags


def test_success_is_reported_only_when_configured():
    cfg = sim_config("demo_episodes=1", "report_success=true")
    cfg = dataclasses.replace(cfg, robot=dataclasses.replace(cfg.robot, task_reward=False))
    env = make_robot_env(cfg)
    _, terminated, reward, info = run_episode(env, ZEROS, seed=2, max_steps=40)
    assert terminated and reward == 1.0 and info["episode_end"] == "success"


@pytest.mark.parametrize("fields, message", [
    ({"p_start": 1.5}, r"sim_operator.p_start must be in \[0, 1\]"),
    ({"patience": 3}, r"unknown field\(s\) \['patience'\]"),
    ({"stuck_patience": "8"}, "sim_operator.stuck_patience: expected an integer"),
    ({"stuck_patience": 0}, "stuck_patience must be >= 1"),
    ({"drift_tolerance": -0.01}, "drift_tolerance must be > 0"),
    ({"min_intervention_steps": 5, "max_intervention_steps": 4}, "min_intervention_steps"),
    ({"finish_after_takeovers": 0}, "finish_after_takeovers must be >= 1 or null"),
    ({"demo_episodes": -1}, "demo_episodes must be >= 0"),
])
def test_bad_operator_configs_are_refused_naming_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(HILSerlRobotEnvConfig, {"wrapper": {"sim_operator": fields}})


def test_the_operator_refuses_what_it_cannot_drive():
    no_gripper = load_env_config(CONFIG, ["wrapper.use_gripper=false"])
    with pytest.raises(ValueError, match="use_gripper"):
        make_robot_env(no_gripper)
    with pytest.raises(ValueError, match="sim_operator' reads the simulator"):
        make_intervention_wrapper(None, "sim_operator", use_gripper=True)
    with pytest.raises(TypeError, match="privileged state"):
        make_sim_operator(load_env_config(CONFIG), FakeRobot())
