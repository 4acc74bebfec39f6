"""The SAC losses of reference_facts §2, as pure functions `loss(params, agent, batch, key)`.

`params` is the subtree being differentiated; everything else is read from `agent`. `batch` is
ONE minibatch (leading axis B):
    observations / next_observations: {key: (B, ...)}; actions (B, action_dim) with the gripper
    command as the last column when a discrete critic exists; rewards, dones, discrete_penalty (B,);
    observation_features / next_observation_features: {image key: (B, h, w, C)} from a frozen
    backbone, or absent when the backbone is trained (then features come from pixels here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from hiljax.networks.encoder import apply_backbone
from hiljax.networks.heads import sample_tanh_gaussian

if TYPE_CHECKING:
    from .sac import SACAgent


def encode(agent: SACAgent, critic_params: dict, observations: dict, features: dict | None,
           *, train: bool = False, key: jax.Array | None = None) -> jax.Array:
    """Latent features (B, latent_total) from the shared encoder held in `critic_params`."""
    nets, config = agent.nets, agent.config
    if features is None and config.image_keys:
        features = apply_backbone(nets.backbone, critic_params["backbone"], observations,
                                  config.image_keys)
    rngs = {"dropout": key} if train else {}
    return nets.encoder.apply({"params": critic_params["encoder"]}, observations, features,
                              train=train, rngs=rngs)


def _continuous(agent: SACAgent, actions: jax.Array) -> jax.Array:
    return actions[..., : agent.config.continuous_action_dim]


def _policy_sample(agent: SACAgent, actor_params: dict, latent: jax.Array, key: jax.Array):
    mean, std = agent.nets.actor.apply({"params": actor_params}, latent)
    return sample_tanh_gaussian(mean, std, key, agent.config.policy_kwargs.use_tanh_squash)


def _min_target_q(agent: SACAgent, q_values: jax.Array, key: jax.Array) -> jax.Array:
    """Min over the target critics, or over a random subset of them (REDQ-style subsampling)."""
    n_sub = agent.config.num_subsample_critics
    if n_sub is not None and n_sub < agent.config.num_critics:
        chosen = jax.random.choice(key, agent.config.num_critics, (n_sub,), replace=False)
        q_values = q_values[chosen]
    return q_values.min(axis=0)


def critic_loss(critic_params: dict, agent: SACAgent, batch: dict, key: jax.Array):
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
    # The latents go out too (stop-gradient) so the discrete critic need not encode again.
    latents = jax.lax.stop_gradient({"observation": latent, "next_observation": latent_next,
                                     "next_observation_target": latent_next_target})
    return loss, {"critic_loss": loss, "q_mean": q.mean(), "target_q_mean": target.mean(),
                  "latents": latents}


def discrete_critic_loss(discrete_params: dict, agent: SACAgent, batch: dict, key: jax.Array):
    """Double DQN on the gripper command: argmax by the online head, value by the target head."""
    del key
    config, nets = agent.config, agent.nets
    latents = batch.get("latents") or _discrete_critic_latents(agent, batch)
    latent = jax.lax.stop_gradient(latents["observation"])
    latent_next = jax.lax.stop_gradient(latents["next_observation"])
    latent_next_target = jax.lax.stop_gradient(latents["next_observation_target"])

    best_next = jnp.argmax(nets.discrete_critic.apply({"params": discrete_params}, latent_next),
                           axis=-1)
    next_q_target = nets.discrete_critic.apply(
        {"params": agent.target_params["discrete_critic"]}, latent_next_target
    )
    next_value = jnp.take_along_axis(next_q_target, best_next[:, None], axis=-1)[:, 0]
    target = (batch["rewards"] + batch["discrete_penalty"]
              + (1.0 - batch["dones"]) * config.discount * next_value)
    target = jax.lax.stop_gradient(target)

    taken = jnp.clip(jnp.round(batch["actions"][:, -1]), 0, config.num_discrete_actions - 1)
    q_all = nets.discrete_critic.apply({"params": discrete_params}, latent)  # (B, num_actions)
    q_taken = jnp.take_along_axis(q_all, taken.astype(jnp.int32)[:, None], axis=-1)[:, 0]
    loss = jnp.mean((q_taken - target) ** 2)
    return loss, {"discrete_critic_loss": loss, "discrete_q_mean": q_taken.mean()}


def _discrete_critic_latents(agent: SACAgent, batch: dict) -> dict:
    """Encoder outputs for the discrete critic when the critic step did not hand them over.

    In the UTD round the discrete critic reuses the critic loss's latents (computed before that
    step's critic update, the observation one with dropout): the same inputs, three encoder
    passes fewer.
    """
    critic_params, next_features = agent.params["critic"], batch.get("next_observation_features")
    return {
        "observation": encode(agent, critic_params, batch["observations"],
                              batch.get("observation_features")),
        "next_observation": encode(agent, critic_params, batch["next_observations"],
                                   next_features),
        "next_observation_target": encode(agent, agent.target_params["critic"],
                                          batch["next_observations"], next_features),
    }


def actor_loss(actor_params: dict, agent: SACAgent, batch: dict, key: jax.Array):
    critic_params = agent.params["critic"]
    latent = jax.lax.stop_gradient(
        encode(agent, critic_params, batch["observations"], batch.get("observation_features"))
    )
    actions, log_prob = _policy_sample(agent, actor_params, latent, key)
    q = agent.nets.critic.apply({"params": critic_params["ensemble"]}, latent, actions)
    loss = jnp.mean(agent.temperature * log_prob - q.min(axis=0))
    return loss, {"actor_loss": loss, "entropy": -log_prob.mean(), "log_probs": log_prob}


def temperature_loss(temperature_params: dict, agent: SACAgent, batch: dict, key: jax.Array):
    """`batch["log_probs"]`: log pi(a|s) of the actor step's fresh samples (as jaxrl and SERL do;
    sampling the policy again would cost a forward pass for the same statistic)."""
    del key
    log_prob = jax.lax.stop_gradient(batch["log_probs"])
    alpha = jnp.exp(temperature_params["log_alpha"])
    loss = jnp.mean(-alpha * (log_prob + agent.config.resolved_target_entropy))
    return loss, {"temperature_loss": loss, "temperature": alpha}
