"""Small SAC configs and filled buffers shared by the agent and checkpoint tests."""

import numpy as np

from hiljax.config import ActorNetworkConfig, CriticNetworkConfig, SACConfig, is_image_key
from hiljax.storage.buffer import ReplayBuffer


def tiny_config(**overrides) -> SACConfig:
    """Tiny networks so every test compiles and runs in well under a second per round."""
    fields = dict(
        input_features={"observation.state": (5,)},
        continuous_action_dim=2,
        latent_dim=16,
        batch_size=8,
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16, 16)),
        actor_network_kwargs=ActorNetworkConfig(hidden_dims=(16, 16)),
        discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16,)),
    )
    fields.update(overrides)
    return SACConfig(**fields)


def observation_spec(config: SACConfig) -> dict:
    return {k: (shape, np.uint8 if is_image_key(k) else np.float32)
            for k, shape in config.input_features.items()}


def random_observation(config: SACConfig, rng: np.random.Generator, lead=()) -> dict:
    out = {}
    for key, shape in config.input_features.items():
        if is_image_key(key):
            out[key] = rng.integers(0, 256, lead + tuple(shape), dtype=np.uint8)
        else:
            out[key] = rng.normal(size=lead + tuple(shape)).astype(np.float32)
    return out


def random_actions(config: SACConfig, rng: np.random.Generator, lead=()) -> np.ndarray:
    actions = rng.uniform(-1, 1, lead + (config.action_dim,)).astype(np.float32)
    if config.num_discrete_actions:
        actions[..., -1] = rng.integers(0, config.num_discrete_actions, lead)
    return actions


def fill_buffer(config: SACConfig, n: int, seed: int = 0, episode_length: int = 10) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(max(n, 1) * 2, observation_spec(config), config.action_dim)
    obs = random_observation(config, rng)
    for t in range(n):
        next_obs = random_observation(config, rng)
        ends = (t + 1) % episode_length == 0
        buffer.add(obs, random_actions(config, rng), float(rng.normal()), next_obs,
                   done=ends and t % 20 == 9, truncated=ends and t % 20 != 9,
                   discrete_penalty=-0.01 * float(rng.integers(0, 2)))
        obs = random_observation(config, rng) if ends else next_obs
    return buffer
