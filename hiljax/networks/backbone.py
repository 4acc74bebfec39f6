"""The one place a vision backbone is built: the SAC learner, every actor and the reward
classifier all get theirs from here.

    frozen_backbone(config)            the SAC's frozen backbone (what an actor needs to act)
    init_backbone(name, shape, key, weights_path)
                                       pretrained weights when a file is named, else random

A pretrained file may be in any layout `hiljax.networks.resnet_weights` reads (the SERL pickle,
helper2424/resnet10 safetensors, hiljax safetensors). A missing or unreadable file is a
ConfigError at start-up, naming the file. A random backbone is drawn from a key derived from the
config's seed alone, so a learner and an actor built from the same config hold the same weights
(the learner sends a digest with its parameters and the actor checks it).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp

from hiljax.config import ConfigError, SACConfig

from .encoder import SmallCNN
from .resnet_weights import WeightFormatError, load_resnet10

log = logging.getLogger(__name__)

# fold_in constant for the backbone's key: independent of how the other networks split theirs.
_BACKBONE_STREAM = 0xBAC


@functools.lru_cache(maxsize=8)
def make_backbone(name: str | None, image_normalization: str = "imagenet") -> nn.Module:
    """The module for `vision_encoder_name` / `model_name`: "resnet10", else the small CNN.
    `image_normalization` ("imagenet" or "none") is how the ResNet10 scales pixels."""
    if name == "resnet10":
        from .resnet import ResNet10

        return ResNet10(imagenet_normalize=image_normalization == "imagenet")
    return SmallCNN()


def load_pretrained_backbone(name: str | None, path: str) -> dict:
    """Pretrained parameters from `path`, or ConfigError saying why they cannot be used."""
    if name != "resnet10":
        raise ConfigError(f"pretrained_vision_weights ({path}) needs the resnet10 backbone, "
                          f"not {name!r}")
    if not Path(path).is_file():
        raise ConfigError(f"pretrained_vision_weights: no file at {path}")
    try:
        params = load_resnet10(path)
    except (OSError, WeightFormatError) as error:
        raise ConfigError(f"pretrained_vision_weights: cannot read {path}: {error}") from error
    log.info("vision backbone %s: pretrained weights from %s", name, path)
    return params


def init_backbone(name: str | None, image_shape: tuple[int, int, int], key: jax.Array,
                  weights_path: str | None = None) -> dict:
    """Backbone parameters: the weights file when one is named, else a random initialisation."""
    if weights_path is not None:
        return load_pretrained_backbone(name, weights_path)
    return _random_backbone(name, tuple(int(d) for d in image_shape), key)


# Jitted: flax's eager init of ResNet10 dispatches op by op (about 2x slower).
@functools.partial(jax.jit, static_argnames=("name", "image_shape"))
def _random_backbone(name: str | None, image_shape: tuple[int, int, int], key: jax.Array):
    example = jnp.zeros((1, *image_shape), jnp.uint8)
    return make_backbone(name).init(key, example)["params"]


def backbone_key(config: SACConfig) -> jax.Array:
    """The key of the SAC's random backbone: from the config's seed alone (see module doc)."""
    return jax.random.fold_in(jax.random.key(config.seed), _BACKBONE_STREAM)


def sac_backbone(config: SACConfig) -> dict:
    """The SAC's backbone parameters ({} without cameras), trained or frozen."""
    if not config.image_keys:
        return {}
    shape = config.input_features[config.image_keys[0]]  # one backbone serves every camera
    return init_backbone(config.vision_encoder_name, shape, backbone_key(config),
                         config.pretrained_vision_weights)


def frozen_backbone(config: SACConfig) -> dict:
    """What an actor needs besides the published parameters: the frozen backbone ({} when there
    is none, or when it is trained and therefore travels with the parameters)."""
    return sac_backbone(config) if config.freeze_vision_encoder else {}
