"""The SAC losses of reference_facts §2, as module-level pure functions.

Each loss takes the subtree being differentiated first and everything else explicitly, and
returns `(loss, (metrics, outputs))`: `metrics` holds only scalars to log; `outputs` is what a
later step of the same round reuses (the critic's latents, the actor's log-probs), or None.

    critic_loss(critic_params, agent, batch, key)              outputs: Latents
    discrete_critic_loss(discrete_params, agent, batch, latents=None)
    actor_loss(actor_params, agent, batch, key)                outputs: log_probs (B,)
    temperature_loss(temperature_params, log_probs, target_entropy)

`agent` is anything shaped like `AgentView` (the SACAgent is); this module never imports the
agent, so the agent module can import it without a cycle. `batch` is ONE minibatch (leading B):
    observations / next_observations: {key: (B, ...)}; actions (B, action_dim) with the gripper
    command as the last column when a discrete critic exists; rewards, dones, discrete_penalty (B,);
    observation_features / next_observation_features: {image key: (B, h, w, C)} from a frozen
    backbone, or absent when the backbone is trained (then features come from pixels here).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp

from hiljax.config import SACConfig
from hiljax.networks.encoder import apply_backbone
from hiljax.networks.heads import sample_tanh_gaussian
from hiljax.networks.sac_networks import SACNetworks


class AgentView(Protocol):
    """What the losses read from the agent (read-only)."""

    @property
    def config(self) -> SACConfig: ...
    @property
    def nets(self) -> SACNetworks: ...
    @property
    def params(self) -> dict: ...
    @property
    def target_params(self) -> dict: ...
    @property
    def temperature(self) -> jax.Array: ...


class Latents(NamedTuple):
    """Encoder outputs (B, latent_total) of one minibatch, gradient stopped."""

    observation: jax.Array  # online encoder (with dropout in the UTD round)
    next_observation: jax.Array  # online encoder
    next_observation_target: jax.Array  # target encoder


def encode(agent: AgentView, critic_params: dict, observations: dict, features: dict | None,
           *, train: bool = False, key: jax.Array | None = None) -> jax.Array:
    """Latent features (B, latent_total) from the shared encoder held in `critic_params`."""
    nets, config = agent.nets, agent.config
    if features is None and config.image_keys:
        features = apply_backbone(nets.backbone, critic_params["backbone"], observations,
                                  config.image_keys)
    rngs = {"dropout": key} if train else {}
    return nets.encoder.apply({"params": critic_params["encoder"]}, observations, features,
                              train=train, rngs=rngs)


def _continuous(agent: AgentView, actions: jax.Array) -> jax.Array:
    return actions[..., : agent.config.continuous_action_dim]


def _policy_sample(agent: AgentView, actor_params: dict, latent: jax.Array, key: jax.Array):
    mean, std = agent.nets.actor.apply({"params": actor_params}, latent)
    return sample_tanh_gaussian(mean, std, key, agent.config.policy_kwargs.use_tanh_squash)


def _min_target_q(agent: AgentView, q_values: jax.Array, key: jax.Array) -> jax.Array:
    """Min over the target critics, or over a random subset of them (REDQ-style subsampling)."""
    n_sub = agent.config.num_subsample_critics
    if n_sub is not None and n_sub < agent.config.num_critics:
        chosen = jax.random.choice(key, agent.config.num_critics, (n_sub,), replace=False)
        q_values = q_values[chosen]
    return q_values.min(axis=0)


def critic_loss(critic_params: dict, agent: AgentView, batch: dict, key: jax.Array):
    """Ensemble TD loss. Outputs the latents (stop-gradient) so the discrete critic need not
    encode the same minibatch again."""
    k_dropout, k_next_action, k_subsample = jax.random.split(key, 3)
    config = agent.config
    next_features = batch.get("next_observation_features")

    # Bootstrap target: next action from the current policy on the online encoder's latent.
    latent_next = encode(agent, critic_params, batch["next_observations"], next_features)
    next_actions, next_log_prob = _policy_sample(
        agent, agent.params["actor"], jax.lax.stop_gradient(latent_next), k_next_action
    )
    target_critic = agent.target_params["critic"]
    latent_next_target = encode(agent, target_critic, batch["next_observations"], next_features)
    next_q = agent.nets.critic.apply(
        {"params": target_critic["ensemble"]}, latent_next_target, next_actions
    )  # (num_critics, B)
    next_q = _min_target_q(agent, next_q, k_subsample)
    if config.use_backup_entropy:
        next_q = next_q - agent.temperature * next_log_prob
    target = batch["rewards"] + (1.0 - batch["dones"]) * config.discount * next_q
    target = jax.lax.stop_gradient(target)

    latent = encode(agent, critic_params, batch["observations"],
                    batch.get("observation_features"), train=True, key=k_dropout)
    q = agent.nets.critic.apply({"params": critic_params["ensemble"]}, latent,
                                _continuous(agent, batch["actions"]))  # (num_critics, B)
    loss = jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1))
    latents = jax.lax.stop_gradient(Latents(latent, latent_next, latent_next_target))
    metrics = {"critic_loss": loss, "q_mean": q.mean(), "target_q_mean": target.mean()}
    return loss, (metrics, latents)


def discrete_critic_loss(discrete_params: dict, agent: AgentView, batch: dict,
                         latents: Latents | None = None):
    """Double DQN on the gripper command: argmax by the online head, value by the target head.

    `latents`: the critic loss's outputs for this minibatch (the UTD round passes them: same
    inputs, three encoder passes fewer), or None to encode here without dropout.
    """
    config, nets = agent.config, agent.nets
    if latents is None:
        latents = discrete_critic_latents(agent, batch)
    latents = jax.lax.stop_gradient(latents)

    best_next = jnp.argmax(
        nets.discrete_critic.apply({"params": discrete_params}, latents.next_observation), axis=-1
    )
    next_q_target = nets.discrete_critic.apply(
        {"params": agent.target_params["discrete_critic"]}, latents.next_observation_target
    )
    next_value = jnp.take_along_axis(next_q_target, best_next[:, None], axis=-1)[:, 0]
    target = (batch["rewards"] + batch["discrete_penalty"]
              + (1.0 - batch["dones"]) * config.discount * next_value)
    target = jax.lax.stop_gradient(target)

    taken = jnp.clip(jnp.round(batch["actions"][:, -1]), 0, config.num_discrete_actions - 1)
    q_all = nets.discrete_critic.apply({"params": discrete_params},
                                       latents.observation)  # (B, num_actions)
    q_taken = jnp.take_along_axis(q_all, taken.astype(jnp.int32)[:, None], axis=-1)[:, 0]
    loss = jnp.mean((q_taken - target) ** 2)
    return loss, ({"discrete_critic_loss": loss, "discrete_q_mean": q_taken.mean()}, None)


def discrete_critic_latents(agent: AgentView, batch: dict) -> Latents:
    """The discrete critic's inputs when no critic step handed them over (no dropout)."""
    critic_params, next_features = agent.params["critic"], batch.get("next_observation_features")
    return Latents(
        observation=encode(agent, critic_params, batch["observations"],
                           batch.get("observation_features")),
        next_observation=encode(agent, critic_params, batch["next_observations"], next_features),
        next_observation_target=encode(agent, agent.target_params["critic"],
                                       batch["next_observations"], next_features),
    )


def actor_loss(actor_params: dict, agent: AgentView, batch: dict, key: jax.Array):
    """Outputs log pi(a|s) (B,) of the fresh samples, for the temperature loss."""
    critic_params = agent.params["critic"]
    latent = jax.lax.stop_gradient(
        encode(agent, critic_params, batch["observations"], batch.get("observation_features"))
    )
    actions, log_prob = _policy_sample(agent, actor_params, latent, key)
    q = agent.nets.critic.apply({"params": critic_params["ensemble"]}, latent, actions)
    loss = jnp.mean(agent.temperature * log_prob - q.min(axis=0))
    return loss, ({"actor_loss": loss, "entropy": -log_prob.mean()}, log_prob)


def temperature_loss(temperature_params: dict, log_probs: jax.Array, target_entropy: float):
    """`log_probs` (B,): log pi(a|s) of the actor step's fresh samples (as jaxrl and SERL do;
    sampling the policy again would cost a forward pass for the same statistic)."""
    assert log_probs.ndim == 1, f"log_probs must be (B,), got {log_probs.shape}"
    log_probs = jax.lax.stop_gradient(log_probs)
    alpha = jnp.exp(temperature_params["log_alpha"])
    loss = jnp.mean(-alpha * (log_probs + target_entropy))
    return loss, ({"temperature_loss": loss, "temperature": alpha}, None)
