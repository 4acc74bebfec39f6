"""The reward classifier network (reference_facts §3), split at the frozen backbone.

    frames --(frozen backbone, shared by the cameras)--> feature maps (h, w, C) per camera
           --ClassifierNetwork--> logits (1 for a binary classifier, else num_classes)

ClassifierNetwork: per camera, spatial learned embeddings -> Dropout -> Dense(latent_dim) ->
LayerNorm -> Tanh (hiljax.networks' ObservationEncoder with no state keys, so the projection's
folded fast path serves prediction); then Dense(hidden_dim) on the concatenation -> Dropout ->
LayerNorm -> ReLU -> Dense(outputs). Everything after the backbone is trained, the spatial
embeddings included (the reference's no_grad wrapper trained only the head: a fault).

The backbone is frozen by construction: its parameters never enter the optimiser, and training
runs on features computed once (hiljax.classifier.features).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hiljax.networks.backbone import init_backbone, make_backbone
from hiljax.networks.encoder import ObservationEncoder

from .config import ClassifierConfig, compiled_view


class ClassifierNetwork(nn.Module):
    """Backbone feature maps of every camera -> logits (B, num_outputs)."""

    image_keys: tuple[str, ...]
    num_outputs: int
    latent_dim: int = 256
    hidden_dim: int = 256
    pooling_dim: int = 8
    dropout_rate: float = 0.1
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, features: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        latent = ObservationEncoder(image_keys=self.image_keys, state_keys=(),
                                    latent_dim=self.latent_dim, pooling_dim=self.pooling_dim,
                                    dropout_rate=self.dropout_rate,
                                    layer_norm_eps=self.layer_norm_eps, name="encoder")(
            {}, features, train)  # (B, latent_dim * num_cameras)
        x = nn.Dense(self.hidden_dim, name="hidden")(latent)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.relu(nn.LayerNorm(epsilon=self.layer_norm_eps, name="hidden_norm")(x))
        return nn.Dense(self.num_outputs, name="logits")(x)


@functools.lru_cache(maxsize=32)
def make_network(config: ClassifierConfig) -> ClassifierNetwork:
    """The network of `config` (its image_keys resolved); cached so jit sees one instance."""
    if not config.image_keys:
        raise ValueError("the classifier's image_keys must be resolved before building it")
    return ClassifierNetwork(
        image_keys=config.image_keys,
        num_outputs=config.num_outputs,
        latent_dim=config.latent_dim,
        hidden_dim=config.hidden_dim,
        pooling_dim=config.image_embedding_pooling_dim,
        dropout_rate=config.dropout_rate,
        layer_norm_eps=config.layer_norm_eps,
    )


def make_backbone_module(config: ClassifierConfig) -> nn.Module:
    return make_backbone(config.model_name, config.image_normalization)


def init_backbone_params(config: ClassifierConfig, key: jax.Array,
                         image_shape: tuple[int, int, int]) -> dict:
    """Pretrained ResNet10 weights when the config names a file, else a random initialisation
    (hiljax.networks.backbone builds both, as for the SAC)."""
    return init_backbone(config.model_name, image_shape, key, config.pretrained_vision_weights)


def init_network_params(config: ClassifierConfig, key: jax.Array,
                        feature_shapes: Mapping[str, tuple[int, ...]]) -> dict:
    """Fresh trainable parameters for backbone feature maps of `feature_shapes` (h, w, C)."""
    shapes = tuple((k, tuple(feature_shapes[k])) for k in config.image_keys)
    return _network_params(compiled_view(config), shapes, key)


@functools.partial(jax.jit, static_argnames=("config", "feature_shapes"))
def _network_params(config: ClassifierConfig, feature_shapes: tuple, key: jax.Array) -> dict:
    features = {k: jnp.zeros((1, *shape), jnp.float32) for k, shape in feature_shapes}
    return make_network(config).init({"params": key}, features, train=False)["params"]


def backbone_feature_shapes(config: ClassifierConfig, backbone_params,
                            image_shapes: Mapping[str, tuple[int, int, int]]
                            ) -> dict[str, tuple[int, ...]]:
    """(h, w, C) of each camera's feature map, from shapes alone (nothing is computed)."""
    backbone = make_backbone_module(config)
    shapes = {}
    for key in config.image_keys:
        frames = jax.ShapeDtypeStruct((1, *image_shapes[key]), jnp.uint8)
        out = jax.eval_shape(lambda p, x: backbone.apply({"params": p}, x), backbone_params, frames)
        shapes[key] = tuple(out.shape[1:])
    return shapes


def class_probabilities(logits: jax.Array, num_classes: int) -> jax.Array:
    """(B, num_classes) class probabilities; a binary logit l gives [1 - sigmoid(l), sigmoid(l)]."""
    if num_classes == 2:
        positive = jax.nn.sigmoid(logits[..., 0])
        return jnp.stack([1.0 - positive, positive], axis=-1)
    return jax.nn.softmax(logits, axis=-1)


def predicted_classes(logits: jax.Array, num_classes: int) -> jax.Array:
    """The decision at the model's own boundary: P >= 0.5 (binary), else the argmax."""
    if num_classes == 2:
        return (logits[..., 0] >= 0.0).astype(jnp.int32)  # sigmoid(l) >= 0.5  <=>  l >= 0
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def count_parameters(tree) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))
