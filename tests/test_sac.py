"""The SAC agent: losses on hand-made batches, optimiser isolation, image paths, acting."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hiljax.agents import sac_losses
from hiljax.agents.sac import SACAgent, backbone_features, sample_actions
from hiljax.networks.augment import random_shift
from tests.sac_helpers import fill_buffer, random_actions, random_observation, tiny_config


def _minibatch(config, rng, batch=6, done=0.0, reward=1.0, penalty=0.0):
    return {
        "observations": jax.tree.map(jnp.asarray, random_observation(config, rng, (batch,))),
        "next_observations": jax.tree.map(jnp.asarray, random_observation(config, rng, (batch,))),
        "actions": jnp.asarray(random_actions(config, rng, (batch,))),
        "rewards": jnp.full((batch,), reward, jnp.float32),
        "dones": jnp.full((batch,), done, jnp.float32),
        "discrete_penalty": jnp.full((batch,), penalty, jnp.float32),
    }


def _q(agent, batch):
    latent = sac_losses.encode(agent, agent.params["critic"], batch["observations"], None)
    actions = batch["actions"][:, : agent.config.continuous_action_dim]
    return agent.nets.critic.apply({"params": agent.params["critic"]["ensemble"]}, latent, actions)


def test_critic_loss_at_terminal_is_regression_on_reward():
    config = tiny_config(num_critics=3)
    agent = SACAgent.create(config, jax.random.key(0))
    batch = _minibatch(config, np.random.default_rng(0), done=1.0, reward=2.5)
    loss, (metrics, latents) = sac_losses.critic_loss(agent.params["critic"], agent, batch,
                                                      jax.random.key(1))
    q = _q(agent, batch)  # (3, B)
    assert q.shape == (3, 6)
    np.testing.assert_allclose(loss, jnp.sum(jnp.mean((q - 2.5) ** 2, axis=1)), rtol=1e-5)
    np.testing.assert_allclose(metrics["target_q_mean"], 2.5, rtol=1e-6)
    assert all(jnp.ndim(v) == 0 for v in metrics.values())  # scalars to log, nothing else
    assert latents.observation.shape == latents.next_observation_target.shape == (6, 16)


def test_critic_target_bootstraps_with_entropy_backup():
    """y = r + gamma * (min_i Q'_i(s', a') - alpha * log pi(a'|s')), checked piece by piece."""
    config = tiny_config(discount=0.9, temperature_init=0.3)
    agent = SACAgent.create(config, jax.random.key(0))
    batch = _minibatch(config, np.random.default_rng(1), reward=0.5)
    key = jax.random.key(3)
    _, (metrics, _) = sac_losses.critic_loss(agent.params["critic"], agent, batch, key)
    _, k_next, _ = jax.random.split(key, 3)
    latent_next = sac_losses.encode(agent, agent.params["critic"], batch["next_observations"], None)
    next_a, next_logp = sac_losses._policy_sample(agent, agent.params["actor"], latent_next, k_next)
    next_q = agent.nets.critic.apply({"params": agent.target_params["critic"]["ensemble"]},
                                     latent_next, next_a).min(axis=0)
    expected = 0.5 + 0.9 * (next_q - 0.3 * next_logp)
    np.testing.assert_allclose(metrics["target_q_mean"], expected.mean(), rtol=1e-5)

    no_backup = dataclasses.replace(config, use_backup_entropy=False)
    agent_nb = agent.replace(config=no_backup)
    _, (metrics_nb, _) = sac_losses.critic_loss(agent.params["critic"], agent_nb, batch, key)
    np.testing.assert_allclose(metrics_nb["target_q_mean"], (0.5 + 0.9 * next_q).mean(),
                               rtol=1e-5)


def test_discrete_critic_target_adds_penalty():
    config = tiny_config(num_discrete_actions=3)
    agent = SACAgent.create(config, jax.random.key(0))
    batch = _minibatch(config, np.random.default_rng(2), done=1.0, reward=1.0, penalty=-0.05)
    loss, _ = sac_losses.discrete_critic_loss(agent.params["discrete_critic"], agent, batch)
    latent = sac_losses.encode(agent, agent.params["critic"], batch["observations"], None)
    q_all = agent.nets.discrete_critic.apply({"params": agent.params["discrete_critic"]}, latent)
    taken = batch["actions"][:, -1].astype(jnp.int32)
    q_taken = q_all[jnp.arange(6), taken]
    np.testing.assert_allclose(loss, jnp.mean((q_taken - 0.95) ** 2), rtol=1e-5)


def test_temperature_moves_towards_target_entropy():
    config = tiny_config(target_entropy=100.0)  # far above the policy's entropy: alpha must grow
    agent = SACAgent.create(config, jax.random.key(0))
    batch = _minibatch(config, np.random.default_rng(3))
    _, (actor_metrics, log_probs) = sac_losses.actor_loss(agent.params["actor"], agent, batch,
                                                          jax.random.key(0))
    assert log_probs.shape == (6,) and "log_probs" not in actor_metrics
    np.testing.assert_allclose(actor_metrics["entropy"], -log_probs.mean(), rtol=1e-6)
    target_entropy = config.resolved_target_entropy
    loss, _ = sac_losses.temperature_loss(agent.params["temperature"], log_probs, target_entropy)
    np.testing.assert_allclose(loss, -agent.temperature * (log_probs.mean() + 100.0), rtol=1e-5)
    grad = jax.grad(lambda p: sac_losses.temperature_loss(p, log_probs, target_entropy)[0])(
        agent.params["temperature"])
    assert grad["log_alpha"] < 0  # gradient descent raises log_alpha


def test_default_target_entropy():
    assert tiny_config(continuous_action_dim=3).resolved_target_entropy == -1.5
    assert tiny_config(continuous_action_dim=3, num_discrete_actions=3).resolved_target_entropy == -2.0


def test_critic_only_rounds_never_move_the_actor():
    config = tiny_config(utd_ratio=3, policy_update_freq=2, num_discrete_actions=3)
    buffer = fill_buffer(config, 100)
    rng = np.random.default_rng(0)
    agent = SACAgent.create(config, jax.random.key(0))
    sample = lambda: buffer.sample(config.batch_size, rng, num_batches=config.utd_ratio)
    after_policy, metrics0 = agent.update(sample())  # step 0: policy update happens
    assert np.isfinite(metrics0["actor_loss"])
    critic_only, metrics1 = after_policy.update(sample())  # step 1: critic-only round
    assert np.isnan(metrics1["actor_loss"])
    for name in ("actor", "temperature"):
        for a, b in zip(jax.tree.leaves(after_policy.params[name]),
                        jax.tree.leaves(critic_only.params[name])):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(jax.tree.leaves(after_policy.opt_states[name]),
                        jax.tree.leaves(critic_only.opt_states[name])):
            np.testing.assert_array_equal(a, b)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.any(a != b),
                                         after_policy.params["critic"], critic_only.params["critic"]))
    assert any(bool(m) for m in moved)
    assert int(critic_only.step) == 2


def test_num_subsample_critics_runs():
    config = tiny_config(num_critics=5, num_subsample_critics=2)
    agent = SACAgent.create(config, jax.random.key(0))
    agent, metrics = agent.update(fill_buffer(config, 40).sample(8, np.random.default_rng(0), 1))
    assert np.isfinite(metrics["critic_loss"])


def test_bad_batch_gets_a_clear_error():
    config = tiny_config()
    agent = SACAgent.create(config, jax.random.key(0))
    batch = fill_buffer(config, 40).sample(8, np.random.default_rng(0), num_batches=1)
    batch["observations"]["observation.state"] = batch["observations"]["observation.state"][..., :3]
    with pytest.raises(ValueError, match=r"observations.observation.state: expected shape"):
        agent.update(batch)
    with pytest.raises(ValueError, match="leading axes"):
        agent.update(fill_buffer(config, 40).sample(8, np.random.default_rng(0)))


def test_random_shift_is_an_edge_padded_crop_per_image():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (16, 12, 10, 3), dtype=np.uint8))
    shifted = random_shift(images, jax.random.key(0), pad=2)
    assert shifted.shape == images.shape and shifted.dtype == jnp.uint8
    padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    offsets = []
    for i in range(16):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(padded[i, dy:dy + 12, dx:dx + 10], shifted[i])]
        assert matches, f"image {i} is not a crop of its padded self"
        offsets.append(matches[0])
    assert len(set(offsets)) > 1  # independent per image
    np.testing.assert_array_equal(random_shift(images, jax.random.key(0), pad=0), images)


IMAGE_FEATURES = {"observation.state": (4,), "observation.images.front": (32, 32, 3),
                  "observation.images.wrist": (32, 32, 3)}


@pytest.mark.parametrize("freeze", [True, False])
def test_image_agent_trains_encoder_and_keeps_frozen_backbone(freeze):
    config = tiny_config(input_features=IMAGE_FEATURES, freeze_vision_encoder=freeze,
                         num_discrete_actions=3, utd_ratio=2)
    agent = SACAgent.create(config, jax.random.key(0))
    batch = fill_buffer(config, 30).sample(4, np.random.default_rng(0), num_batches=2)
    new, metrics = agent.update(batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if freeze:
        assert new.params["backbone"] and "backbone" not in new.params["critic"]
        for a, b in zip(jax.tree.leaves(agent.params["backbone"]),
                        jax.tree.leaves(new.params["backbone"])):
            np.testing.assert_array_equal(a, b)
    else:
        assert not new.params["backbone"] and "backbone" in new.params["critic"]
        changed = jax.tree.map(lambda a, b: jnp.any(a != b), agent.params["critic"]["backbone"],
                               new.params["critic"]["backbone"])
        assert any(bool(c) for c in jax.tree.leaves(changed))


def test_cached_backbone_features_path():
    config = tiny_config(input_features=IMAGE_FEATURES, cache_backbone_features=True)
    agent = SACAgent.create(config, jax.random.key(0))
    pixels = fill_buffer(config, 20).sample(4, np.random.default_rng(0), num_batches=1)

    def to_features(obs):
        images = {k: obs[k] for k in config.image_keys}
        return {**obs, **backbone_features(config, agent.params, images)}

    batch = {**pixels, "observations": to_features(pixels["observations"]),
             "next_observations": to_features(pixels["next_observations"])}
    assert batch["observations"]["observation.images.front"].shape[:2] == (1, 4)
    _, metrics = agent.update(batch)
    assert np.isfinite(float(metrics["critic_loss"]))


def test_sample_actions_shapes_and_modes():
    config = tiny_config(input_features=IMAGE_FEATURES, num_discrete_actions=3)
    agent = SACAgent.create(config, jax.random.key(0))
    obs = random_observation(config, np.random.default_rng(0), (5,))
    args = (config, agent.actor_parameters(), agent.frozen_backbone_parameters(), obs)
    stochastic = np.asarray(sample_actions(*args, jax.random.key(1)))
    deterministic = np.asarray(sample_actions(*args, jax.random.key(1), deterministic=True))
    again = np.asarray(sample_actions(*args, jax.random.key(2), deterministic=True))
    assert stochastic.shape == (5, 3)
    assert np.all(np.abs(stochastic[:, :2]) <= 1.0)
    assert set(np.unique(stochastic[:, 2])) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(deterministic, again)
    assert not np.array_equal(stochastic[:, :2], deterministic[:, :2])
    assert "backbone" not in agent.actor_parameters()  # frozen backbone travels once, separately
