"""Observation encoder shared by the actor and the critics (reference §2).

Images go through a vision backbone first (ResNet10 or the small CNN); the backbone is applied
separately (`backbone_features`) so a frozen backbone's features can be computed once per UTD
round, or once per stored frame, and handed to `ObservationEncoder` as `image_features`.
"""

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def module_name(key: str) -> str:
    """Flax module names cannot hold dots: observation.images.front -> observation_images_front."""
    return key.replace(".", "_")


class SpatialLearnedEmbeddings(nn.Module):
    """Sum over the feature map of features * a learned kernel: (B, h, w, C) -> (B, C * num_features)."""

    num_features: int = 8

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        height, width, channels = features.shape[-3:]
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (height, width, channels, self.num_features)
        )
        # (B, h, w, C, 1) * (h, w, C, F) summed over h, w -> (B, C, F)
        embedded = jnp.einsum("bhwc,hwcf->bcf", features, kernel)
        return embedded.reshape(features.shape[:-3] + (channels * self.num_features,))


class SmallCNN(nn.Module):
    """Default image backbone when no pretrained file is given: 4 strided convs, 128 -> 8x8x32."""

    channels: Sequence[int] = (32, 32, 32, 32)

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images.astype(jnp.float32) / 255.0 if images.dtype == jnp.uint8 else images
        for width in self.channels:
            x = nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME")(x)
            x = nn.relu(x)
        return x


class ObservationEncoder(nn.Module):
    """Concatenation of per-camera latents, the environment-state latent and the state latent."""

    image_keys: tuple[str, ...]
    state_keys: tuple[str, ...]  # "observation.environment_state" first, then "observation.state"
    latent_dim: int = 256
    pooling_dim: int = 8
    dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, observations: Mapping[str, jax.Array],
                 image_features: Mapping[str, jax.Array] | None = None,
                 train: bool = False) -> jax.Array:
        parts = []
        for key in self.image_keys:
            features = image_features[key].astype(jnp.float32)  # (B, h, w, C)
            x = SpatialLearnedEmbeddings(self.pooling_dim, name=f"spatial_{module_name(key)}")(
                features
            )
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.Dense(self.latent_dim, name=f"project_{module_name(key)}")(x)
            x = nn.LayerNorm(name=f"norm_{module_name(key)}")(x)
            parts.append(jnp.tanh(x))
        for key in self.state_keys:
            x = nn.Dense(self.latent_dim, name=f"project_{module_name(key)}")(
                observations[key].astype(jnp.float32)
            )
            x = nn.LayerNorm(name=f"norm_{module_name(key)}")(x)
            parts.append(jnp.tanh(x))
        return jnp.concatenate(parts, axis=-1)


def apply_backbone(backbone: nn.Module, backbone_params, images: Mapping[str, jax.Array],
                   keys: Sequence[str]) -> dict[str, jax.Array]:
    """Run ONE backbone over every camera in a single call (cameras stacked on the batch axis).

    images[key]: (..., H, W, 3), all cameras the same size. Returns key -> (..., h, w, C).
    """
    if not keys:
        return {}
    stacked = jnp.stack([images[k] for k in keys])  # (num_cams, ..., H, W, 3)
    lead = stacked.shape[:-3]
    flat = stacked.reshape((-1,) + stacked.shape[-3:])
    features = backbone.apply({"params": backbone_params}, flat)
    features = features.reshape(lead + features.shape[-3:])
    return {k: features[i] for i, k in enumerate(keys)}
