"""SAC + replay buffer in a plain single-process loop must solve Pendulum-v1.

Goal from the issue: mean return >= -300 over the last 10 episodes within 10,000 env steps,
fixed seed. (A random policy scores about -1200; a solved pendulum about -150.)
"""

import gymnasium as gym
import jax
import numpy as np
import pytest

from hiljax.agents.sac import SACAgent, sample_actions
from hiljax.config import ActorNetworkConfig, CriticNetworkConfig, SACConfig
from hiljax.storage.buffer import ReplayBuffer

TOTAL_STEPS = 10_000
WARMUP_STEPS = 1_000


def pendulum_config() -> SACConfig:
    hidden = (128, 128)
    return SACConfig(
        input_features={"observation.state": (3,)},
        continuous_action_dim=1,
        latent_dim=64,
        batch_size=128,
        utd_ratio=1,
        discount=0.99,
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=hidden),
        actor_network_kwargs=ActorNetworkConfig(hidden_dims=hidden),
        grad_clip_norm=10.0,
        # Berkeley's value is 0.01 and LeRobot's docs recommend it over the 1.0 default; from
        # 1.0 the run learns by episode 20, then the slowly decaying temperature lets it wobble.
        temperature_init=0.1,
        seed=0,
    )


def run_pendulum(config: SACConfig, total_steps: int, seed: int = 0) -> list[float]:
    env = gym.make("Pendulum-v1")
    max_torque = float(env.action_space.high[0])
    agent = SACAgent.create(config, jax.random.key(seed))
    buffer = ReplayBuffer(10 * total_steps, {"observation.state": ((3,), "float32")}, 1)
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)

    obs, _ = env.reset(seed=seed)
    returns, episode_return = [], 0.0
    for step in range(total_steps):
        if step < WARMUP_STEPS:
            action = rng.uniform(-1.0, 1.0, size=(1,)).astype(np.float32)
        else:
            key, k_act = jax.random.split(key)
            batch_obs = {"observation.state": obs[None].astype(np.float32)}
            action = np.asarray(sample_actions(config, agent.actor_parameters(), {}, batch_obs,
                                               k_act))[0]
        next_obs, reward, terminated, truncated, _ = env.step(action * max_torque)
        buffer.add({"observation.state": obs.astype(np.float32)}, action, float(reward),
                   {"observation.state": next_obs.astype(np.float32)}, terminated, truncated)
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        if step >= WARMUP_STEPS:
            batch = buffer.sample(config.batch_size, rng, num_batches=config.utd_ratio)
            agent, _ = agent.update(batch)
    return returns


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sac_solves_pendulum():
    returns = run_pendulum(pendulum_config(), TOTAL_STEPS)
    last10 = float(np.mean(returns[-10:]))
    print(f"Pendulum returns (every 5th): {np.round(returns[::5], 0)}; last 10 mean {last10:.1f}")
    assert len(returns) == TOTAL_STEPS // 200
    assert last10 >= -300.0, f"mean return of the last 10 episodes {last10:.1f} < -300"
