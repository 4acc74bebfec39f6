"""The SAC agent of HIL-SERL: an immutable pytree whose `update` runs one whole UTD round in jit.

    agent = SACAgent.create(config, key)
    agent, metrics = agent.update(batch)   # batch arrays have a leading (utd_ratio, batch_size)

One jitted call: image augmentation and (frozen) backbone features for all minibatches, then a
`lax.scan` over `utd_ratio` critic + discrete-critic updates (each followed by a Polyak target
update), then the actor and temperature updates when `policy_update_freq` says so. Each network
has its own optimiser state, so critic-only steps never move the actor (a flaw of the Berkeley
code, where one Adam state over the whole tree kept pushing the actor with stale momentum).
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from hiljax.config import SACConfig, is_image_key
from hiljax.networks.augment import random_shift_nd
from hiljax.networks.encoder import apply_backbone
from hiljax.networks.heads import sample_tanh_gaussian, tanh_gaussian_mode
from hiljax.networks.sac_networks import (
    SACNetworks,
    backbone_params_of,
    init_params,
    make_sac_networks,
)
from hiljax.transition import LOSS_FIELDS, step_field, step_shape

from . import sac_losses
from .sac_losses import actor_loss, critic_loss, discrete_critic_loss, temperature_loss

OPTIMISED = ("critic", "actor", "discrete_critic", "temperature")


def make_optimizers(config: SACConfig) -> dict[str, optax.GradientTransformation]:
    def adam(lr):
        return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optax.adam(lr))

    return {
        "critic": adam(config.critic_lr),
        "discrete_critic": adam(config.critic_lr),
        "actor": adam(config.actor_lr),
        "temperature": adam(config.temperature_lr),
    }


class SACAgent(flax.struct.PyTreeNode):
    params: dict
    target_params: dict  # {"critic": ..., "discrete_critic": ...}, Polyak averages
    opt_states: dict  # one optax state per name in OPTIMISED
    step: jax.Array  # UTD rounds done (int32 scalar)
    key: jax.Array
    config: SACConfig = flax.struct.field(pytree_node=False)

    @property
    def nets(self) -> SACNetworks:
        return make_sac_networks(self.config)

    @property
    def temperature(self) -> jax.Array:
        return jnp.exp(self.params["temperature"]["log_alpha"])

    @classmethod
    def create(cls, config: SACConfig, key: jax.Array, backbone_params=None) -> SACAgent:
        k_init, k_agent = jax.random.split(key)
        params = init_params(config, k_init, backbone_params)
        optimizers = make_optimizers(config)
        return cls(
            params=params,
            # Copies, not the same arrays: a round that donates the agent's buffers must not
            # find one buffer twice.
            target_params=jax.tree.map(jnp.copy, {"critic": params["critic"],
                                                  "discrete_critic": params["discrete_critic"]}),
            opt_states={name: optimizers[name].init(params[name]) for name in OPTIMISED},
            step=jnp.zeros((), jnp.int32),
            key=k_agent,
            config=config,
        )

    @classmethod
    def abstract(cls, config: SACConfig) -> SACAgent:
        """The agent's tree of shapes and dtypes for `config`, computing nothing and reading no
        weights file (a pretrained backbone has the shapes of a random one)."""
        shapes_only = dataclasses.replace(config, pretrained_vision_weights=None)
        return jax.eval_shape(lambda: cls.create(shapes_only, jax.random.key(0)))

    def update(self, batch: dict, donate: bool = False) -> tuple[SACAgent, dict]:
        """One UTD round. Every batch array has leading axes (utd_ratio, batch_size).

        `donate=True` hands this agent's device buffers to the round (the learner's loop: no
        second copy of the parameters and optimiser states); the agent must not be used again.
        """
        check_batch(self.config, batch)
        return (update_round_donated if donate else update_round)(self, batch)

    def actor_parameters(self) -> dict:
        """What an actor process needs to act: encoder, policy, gripper head, trained backbone.

        A frozen backbone is left out on purpose: it never changes, so it is sent once
        (`frozen_backbone_parameters`) rather than on every push as the reference does.
        """
        out = {
            "encoder": self.params["critic"]["encoder"],
            "actor": self.params["actor"],
            "discrete_critic": self.params["discrete_critic"],
        }
        if "backbone" in self.params["critic"]:
            out["backbone"] = self.params["critic"]["backbone"]
        return out

    def frozen_backbone_parameters(self) -> dict:
        return self.params["backbone"]


def check_batch(config: SACConfig, batch: dict) -> None:
    """Raise ValueError naming the first field whose shape does not fit `config` (before jit)."""
    required = ("observations", "next_observations", *LOSS_FIELDS)
    missing = [k for k in required if k not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}")
    lead = tuple(batch["rewards"].shape)
    if len(lead) != 2:
        raise ValueError(f"batch arrays need leading axes (utd_ratio, batch_size); rewards has "
                         f"shape {lead}")
    expected = {name: step_shape(step_field(name), lead, config.action_dim)
                for name in LOSS_FIELDS}
    for field in ("observations", "next_observations"):
        for key, shape in config.input_features.items():
            if key not in batch[field]:
                raise ValueError(f"batch[{field!r}] lacks {key!r}")
            if not (config.cache_backbone_features and key in config.image_keys):
                expected[f"{field}.{key}"] = lead + tuple(shape)
    for name, shape in expected.items():
        field, _, key = name.partition(".")
        got = tuple(batch[field][key].shape if key else batch[field].shape)
        if got != shape:
            raise ValueError(f"batch {name}: expected shape {shape}, got {got}")


# ---------------------------------------------------------------------------------------------
# One gradient step of one network.


def _apply_gradients(agent: SACAgent, name: str, loss_fn, *loss_args):
    """One optimiser step on `agent.params[name]`.

    `loss_fn(params, *loss_args) -> (loss, (metrics, outputs))`; returns the new agent, the
    metrics plus this network's gradient norm, and the loss's outputs for a later step.
    """
    (_, (metrics, outputs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        agent.params[name], *loss_args
    )
    optimizer = make_optimizers(agent.config)[name]
    updates, opt_state = optimizer.update(grads, agent.opt_states[name], agent.params[name])
    params = {**agent.params, name: optax.apply_updates(agent.params[name], updates)}
    metrics = {**metrics, f"{name}_grad_norm": optax.tree.norm(grads)}
    agent = agent.replace(params=params, opt_states={**agent.opt_states, name: opt_state})
    return agent, metrics, outputs


def _polyak(agent: SACAgent, name: str) -> SACAgent:
    tau = agent.config.critic_target_update_weight
    new_target = optax.incremental_update(agent.params[name], agent.target_params[name], tau)
    return agent.replace(target_params={**agent.target_params, name: new_target})


def _critic_step(agent: SACAgent, minibatch: dict, key: jax.Array):
    # The discrete critic needs no key, but the split stays: it fixes the critic's key stream.
    k_critic, _ = jax.random.split(key)
    agent, metrics, latents = _apply_gradients(agent, "critic", critic_loss, agent, minibatch,
                                               k_critic)
    agent = _polyak(agent, "critic")
    if agent.config.num_discrete_actions:
        agent, discrete_metrics, _ = _apply_gradients(
            agent, "discrete_critic", discrete_critic_loss, agent, minibatch, latents
        )
        agent = _polyak(agent, "discrete_critic")
        metrics = {**metrics, **discrete_metrics}
    return agent, metrics


def _policy_step(agent: SACAgent, minibatch: dict, key: jax.Array):
    agent, actor_metrics, log_probs = _apply_gradients(agent, "actor", actor_loss, agent,
                                                       minibatch, key)
    agent, temp_metrics, _ = _apply_gradients(
        agent, "temperature", temperature_loss, log_probs, agent.config.resolved_target_entropy
    )
    return agent, {**actor_metrics, **temp_metrics}


# ---------------------------------------------------------------------------------------------
# Preparing a round's images: augmentation, then frozen-backbone features computed once.


def prepare_images(agent: SACAgent, batch: dict, key: jax.Array) -> dict:
    """Augment pixels and attach frozen-backbone features (for all utd_ratio minibatches at once)."""
    config = agent.config
    keys = config.image_keys
    if not keys:
        return batch
    batch = dict(batch)
    if config.cache_backbone_features:
        # The buffer stores features in place of pixels; nothing to augment or recompute.
        batch["observation_features"] = {k: batch["observations"][k] for k in keys}
        batch["next_observation_features"] = {k: batch["next_observations"][k] for k in keys}
        return batch
    for field, field_key in zip(("observations", "next_observations"), jax.random.split(key)):
        # Batch-major while flattened: a data-parallel round's rows stay on their device.
        shifted = {k: random_shift_nd(_batch_major(batch[field][k]), kk,
                                      config.image_augmentation_pad)
                   for k, kk in zip(keys, jax.random.split(field_key, len(keys)))}
        batch[field] = {**batch[field], **{k: _batch_major(v) for k, v in shifted.items()}}
        if config.freeze_vision_encoder:
            features = apply_backbone(agent.nets.backbone, agent.params["backbone"], shifted, keys)
            batch[field.removesuffix("s") + "_features"] = jax.lax.stop_gradient(
                {k: _batch_major(v) for k, v in features.items()})
    return batch


def _batch_major(x: jax.Array) -> jax.Array:
    """(utd, batch, ...) <-> (batch, utd, ...). Shifts and the backbone flatten the leading axes;
    with the batch axis first, the rows a data-parallel round splits over devices stay
    contiguous, so each device augments and encodes only its own frames (with utd first, XLA
    gathers every frame onto every device)."""
    return jnp.swapaxes(x, 0, 1)


def _update_round(agent: SACAgent, batch: dict) -> tuple[SACAgent, dict]:
    key, k_images, k_critics, k_policy = jax.random.split(agent.key, 4)
    batch = prepare_images(agent, batch, k_images)
    num_minibatches = batch["rewards"].shape[0]

    def scan_body(carry, inputs):
        minibatch, step_key = inputs
        carry, metrics = _critic_step(carry, minibatch, step_key)
        return carry, metrics

    agent, critic_metrics = jax.lax.scan(
        scan_body, agent, (batch, jax.random.split(k_critics, num_minibatches))
    )
    metrics = jax.tree.map(lambda m: m[-1], critic_metrics)

    last_minibatch = jax.tree.map(lambda x: x[-1], batch)
    do_policy = agent.step % agent.config.policy_update_freq == 0
    _, policy_metrics_shape = jax.eval_shape(_policy_step, agent, last_minibatch, k_policy)
    agent, policy_metrics = jax.lax.cond(
        do_policy,
        lambda a: _policy_step(a, last_minibatch, k_policy),
        lambda a: (a, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype),
                                   policy_metrics_shape)),
        agent,
    )
    metrics = {**metrics, **policy_metrics, "temperature": agent.temperature,
               "reward_mean": batch["rewards"].mean()}
    return agent.replace(step=agent.step + 1, key=key), metrics


update_round = jax.jit(_update_round)
update_round_donated = jax.jit(_update_round, donate_argnums=0)


# ---------------------------------------------------------------------------------------------
# Acting (for the actor process): jitted, on the parameters that `actor_parameters` returns.


@functools.partial(jax.jit, static_argnames=("config", "deterministic"))
def sample_actions(config: SACConfig, actor_params: dict, backbone_params: dict,
                   observations: dict, key: jax.Array, deterministic: bool = False) -> jax.Array:
    """Actions (B, action_dim) for a batch of raw observations (images uint8 HWC).

    `backbone_params` is the frozen backbone (sent once); ignored when `actor_params` carries
    a trained one. The gripper column, when present, is the argmax of the discrete critic.
    """
    nets = make_sac_networks(config)
    features = None
    if config.image_keys:
        backbone = actor_params.get("backbone", backbone_params)
        features = apply_backbone(nets.backbone, backbone, observations, config.image_keys)
    latent = nets.encoder.apply({"params": actor_params["encoder"]}, observations, features)
    mean, std = nets.actor.apply({"params": actor_params["actor"]}, latent)
    squash = config.policy_kwargs.use_tanh_squash
    if deterministic:
        actions = tanh_gaussian_mode(mean, squash)
    else:
        actions, _ = sample_tanh_gaussian(mean, std, key, squash)
    if config.num_discrete_actions:
        q = nets.discrete_critic.apply({"params": actor_params["discrete_critic"]}, latent)
        gripper = jnp.argmax(q, axis=-1).astype(actions.dtype)
        actions = jnp.concatenate([actions, gripper[:, None]], axis=-1)
    return actions


def backbone_features(config: SACConfig, params: dict, images: dict,
                      dtype=jnp.float16) -> dict:
    """Frozen-backbone features of raw frames (for `cache_backbone_features` at insert time).

    float16 by default: a (4, 4, 512) map then costs 16 KiB per camera, less than the 48 KiB
    uint8 frame it replaces; the encoder computes in float32.
    """
    return _backbone_features_jit(config, backbone_params_of(params), images, dtype)


@functools.partial(jax.jit, static_argnames=("config", "dtype"))
def _backbone_features_jit(config: SACConfig, backbone_params: dict, images: dict,
                           dtype) -> dict:
    nets = make_sac_networks(config)
    features = apply_backbone(nets.backbone, backbone_params, images, config.image_keys)
    return {k: v.astype(dtype) for k, v in features.items()}


def observation_spec(config: SACConfig) -> dict:
    """What the replay buffer stores per observation key (cached features replace pixels)."""
    spec = {key: (tuple(shape), np.uint8 if is_image_key(key) else np.float32)
            for key, shape in config.input_features.items()}
    if config.cache_backbone_features and config.image_keys:
        images = {key: jax.ShapeDtypeStruct((1,) + spec[key][0], np.uint8)
                  for key in config.image_keys}
        params = SACAgent.abstract(config).params
        features = jax.eval_shape(lambda p, i: backbone_features(config, p, i), params, images)
        spec.update({key: (tuple(f.shape[1:]), np.float16) for key, f in features.items()})
    return spec


__all__ = ["SACAgent", "backbone_features", "make_optimizers", "observation_spec", "sac_losses", "sample_actions"]
