"""Build every SAC module from a `SACConfig`, and initialise their parameters.

Parameter layout (a plain nested dict, one subtree per optimiser):
    params = {
        "backbone": frozen vision backbone params ({} without cameras, or when trainable),
        "critic": {"encoder": ..., "ensemble": ..., ["backbone": ... when trainable]},
        "actor": policy head,
        "discrete_critic": gripper Q head ({} without a discrete gripper),
        "temperature": {"log_alpha": scalar},
    }
The encoder sits in the critic subtree: the critic loss trains it, and the actor and the discrete
critic read its output through stop_gradient (shared_encoder=True, as the reference).
"""

import dataclasses
import functools
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hiljax.config import SACConfig, is_image_key

from .backbone import make_backbone, sac_backbone
from .encoder import ObservationEncoder
from .heads import CriticEnsemble, DiscreteCritic, TanhGaussianPolicy

log = logging.getLogger(__name__)

STATE_KEY_ORDER = ("observation.environment_state", "observation.state")


@dataclasses.dataclass(frozen=True)
class SACNetworks:
    backbone: nn.Module | None
    encoder: ObservationEncoder
    critic: CriticEnsemble
    actor: TanhGaussianPolicy
    discrete_critic: DiscreteCritic | None


def _state_keys(config: SACConfig) -> tuple[str, ...]:
    keys = [k for k in config.input_features if not is_image_key(k)]
    known = [k for k in STATE_KEY_ORDER if k in keys]
    return tuple(known + sorted(set(keys) - set(known)))


@functools.lru_cache(maxsize=32)
def make_sac_networks(config: SACConfig) -> SACNetworks:
    """Module definitions only (no parameters); cached so every caller shares one instance."""
    critic_kw = config.critic_network_kwargs
    discrete_kw = config.discrete_critic_network_kwargs
    return SACNetworks(
        backbone=(make_backbone(config.vision_encoder_name, config.image_normalization)
                  if config.image_keys else None),
        encoder=ObservationEncoder(
            image_keys=config.image_keys,
            state_keys=_state_keys(config),
            latent_dim=config.latent_dim,
            pooling_dim=config.image_embedding_pooling_dim,
            dropout_rate=config.image_encoder_dropout,
            layer_norm_eps=config.layer_norm_eps,
        ),
        critic=CriticEnsemble(config.num_critics, critic_kw.hidden_dims, critic_kw.activate_final,
                              config.layer_norm_eps),
        actor=TanhGaussianPolicy(
            action_dim=config.continuous_action_dim,
            hidden_dims=config.actor_network_kwargs.hidden_dims,
            activate_final=config.actor_network_kwargs.activate_final,
            std_min=config.policy_kwargs.std_min,
            std_max=config.policy_kwargs.std_max,
            init_final=config.policy_kwargs.init_final,
            layer_norm_eps=config.layer_norm_eps,
        ),
        discrete_critic=(
            DiscreteCritic(config.num_discrete_actions, discrete_kw.hidden_dims,
                           discrete_kw.activate_final, config.layer_norm_eps)
            if config.num_discrete_actions else None
        ),
    )


def example_observation(config: SACConfig, batch: int = 1) -> dict[str, np.ndarray]:
    """Zeros shaped like one batch of observations (images uint8 HWC, states float32)."""
    return {
        key: np.zeros((batch,) + tuple(shape), np.uint8 if is_image_key(key) else np.float32)
        for key, shape in config.input_features.items()
    }


def init_params(config: SACConfig, key: jax.Array, backbone_params=None) -> dict:
    """Fresh parameters for every network. The backbone is `backbone_params` if given, else
    the one `hiljax.networks.backbone.sac_backbone` builds from the config (the weights file, or
    a random one from the config's seed: what every actor rebuilds)."""
    nets = make_sac_networks(config)
    # Five keys, the first unused since the backbone has its own: the others stay as they were.
    _, k_encoder, k_critic, k_actor, k_discrete = jax.random.split(key, 5)
    obs = example_observation(config)

    features = {}
    if nets.backbone is not None:
        images = jnp.asarray(obs[config.image_keys[0]])
        if backbone_params is None:
            backbone_params = sac_backbone(config)
        feature_map = nets.backbone.apply({"params": backbone_params}, images)
        features = {k: feature_map for k in config.image_keys}
        log.info("vision backbone %s: feature map %s", type(nets.backbone).__name__,
                 feature_map.shape[1:])
    encoder_params = nets.encoder.init(k_encoder, obs, features)["params"]
    latent = nets.encoder.apply({"params": encoder_params}, obs, features)
    actions = jnp.zeros((1, config.continuous_action_dim))

    critic = {
        "encoder": encoder_params,
        "ensemble": nets.critic.init(k_critic, latent, actions)["params"],
    }
    frozen_backbone = {}
    if backbone_params is not None:
        if config.freeze_vision_encoder:
            frozen_backbone = backbone_params
        else:
            critic["backbone"] = backbone_params
    discrete = (nets.discrete_critic.init(k_discrete, latent)["params"]
                if nets.discrete_critic is not None else {})
    return {
        "backbone": frozen_backbone,
        "critic": critic,
        "actor": nets.actor.init(k_actor, latent)["params"],
        "discrete_critic": discrete,
        "temperature": {"log_alpha": jnp.asarray(np.log(config.temperature_init), jnp.float32)},
    }


def backbone_params_of(params: dict):
    """The backbone parameters wherever they live (frozen: top level; trainable: in the critic)."""
    return params["critic"].get("backbone", params["backbone"])
