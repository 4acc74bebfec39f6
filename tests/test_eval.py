"""Evaluation must act with the trained checkpoint (LeRobot #2051 evaluated an untrained one)."""

import dataclasses
import json

import jax
import numpy as np

from hiljax.agents.sac import SACAgent
from hiljax.config import ActorNetworkConfig, CriticNetworkConfig
from hiljax.eval import checkpoint_policy, main
from hiljax.run.checkpoint import load_checkpoint, save_checkpoint
from hiljax.run.train_config import load_train_config, save_train_config
from tests.sac_helpers import fill_buffer


def _trained_run(tmp_path):
    train = load_train_config(None, ["env.wrapper.control_time_s=1.0"])
    policy = dataclasses.replace(
        train.policy, batch_size=16,
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=(32, 32)),
        actor_network_kwargs=ActorNetworkConfig(hidden_dims=(32, 32)),
        discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=(32,)))
    train = dataclasses.replace(train, policy=policy, output_dir=str(tmp_path))
    save_train_config(train, tmp_path / "train_config.json")
    agent = SACAgent.create(policy, jax.random.key(0))
    buffer, rng = fill_buffer(policy, 64), np.random.default_rng(0)
    for _ in range(30):
        agent, _ = agent.update(buffer.sample(16, rng, num_batches=policy.utd_ratio))
    save_checkpoint(tmp_path / "checkpoints", agent)
    return train, agent


def test_the_trained_checkpoint_is_what_acts(tmp_path):
    train, trained = _trained_run(tmp_path)
    restored = load_checkpoint(tmp_path / "checkpoints", with_buffers=False).agent
    fresh = SACAgent.create(train.policy, jax.random.key(0))
    observation = {"observation.state": np.linspace(-1, 1, 9, dtype=np.float32),
                   "observation.environment_state": np.array([0.2, 0.0, 0.01], np.float32)}
    acted = checkpoint_policy(restored)(observation)
    np.testing.assert_array_equal(acted, checkpoint_policy(trained)(observation))
    assert not np.array_equal(acted[:3], checkpoint_policy(fresh)(observation)[:3])


def test_eval_command_reports_the_checkpoint_step(tmp_path, capsys):
    _trained_run(tmp_path)
    assert main(["--checkpoint", str(tmp_path), "--episodes", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["checkpoint_step"] == 30 and result["episodes"] == 2
    assert 0.0 <= result["success_rate"] <= 1.0 and result["mean_episode_length"] <= 10
