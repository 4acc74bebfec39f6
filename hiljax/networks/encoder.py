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


def spatial_embed(features: jax.Array, kernel: jax.Array) -> jax.Array:
    """(B, h, w, C) x (h, w, C, F) -> (B, C * F), summing over h, w.

    Written as a matmul batched over channels: XLA's CPU backend runs the plain einsum
    "bhwc,hwcf->bcf" several times slower.
    """
    height, width, channels, num_features = kernel.shape
    lead = features.shape[:-3]
    x = features.reshape((-1, height * width, channels)).transpose(2, 0, 1)  # (C, B, S)
    k = kernel.reshape(height * width, channels, num_features).transpose(1, 0, 2)  # (C, S, F)
    out = jnp.matmul(x, k).transpose(1, 0, 2)  # (B, C, F)
    return out.reshape(lead + (channels * num_features,))


class CameraProjection(nn.Module):
    """Spatial learned embeddings -> Dropout -> Dense(latent) for one camera (reference §2).

    Both linear maps fold into one (h*w*C, latent) matrix when dropout is off (acting, targets,
    stop-gradient latents): one large matmul instead of a slow per-channel contraction. Training
    mode with dropout keeps the two steps, since the mask sits between them.
    """

    latent_dim: int
    num_features: int = 8
    dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, features: jax.Array, train: bool = False) -> jax.Array:
        height, width, channels = features.shape[-3:]
        spatial = self.param("spatial_kernel", nn.initializers.lecun_normal(),
                             (height, width, channels, self.num_features))
        dense = self.param("kernel", nn.initializers.lecun_normal(),
                           (channels * self.num_features, self.latent_dim))
        bias = self.param("bias", nn.initializers.zeros, (self.latent_dim,))
        if train and self.dropout_rate > 0:
            embedded = spatial_embed(features, spatial)
            embedded = nn.Dropout(self.dropout_rate, deterministic=False)(embedded)
            return embedded @ dense + bias
        folded = jnp.einsum("hwcf,cfl->hwcl", spatial,
                            dense.reshape(channels, self.num_features, self.latent_dim))
        flat = features.reshape(features.shape[:-3] + (height * width * channels,))
        return flat @ folded.reshape(height * width * channels, self.latent_dim) + bias


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
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, observations: Mapping[str, jax.Array],
                 image_features: Mapping[str, jax.Array] | None = None,
                 train: bool = False) -> jax.Array:
        parts = []
        for key in self.image_keys:
            features = image_features[key].astype(jnp.float32)  # (B, h, w, C)
            x = CameraProjection(self.latent_dim, self.pooling_dim, self.dropout_rate,
                                 name=f"camera_{module_name(key)}")(features, train)
            x = nn.LayerNorm(epsilon=self.layer_norm_eps, name=f"norm_{module_name(key)}")(x)
            parts.append(jnp.tanh(x))
        for key in self.state_keys:
            x = nn.Dense(self.latent_dim, name=f"project_{module_name(key)}")(
                observations[key].astype(jnp.float32)
            )
            x = nn.LayerNorm(epsilon=self.layer_norm_eps, name=f"norm_{module_name(key)}")(x)
            parts.append(jnp.tanh(x))
        return jnp.concatenate(parts, axis=-1)


def apply_backbone(backbone: nn.Module, backbone_params, images: Mapping[str, jax.Array],
                   keys: Sequence[str]) -> dict[str, jax.Array]:
    """Run ONE backbone over every camera in a single call (cameras stacked on the batch axis).

    images[key]: (..., H, W, 3), all cameras the same size. Returns key -> (..., h, w, C).
    """
    if not keys:
        return {}
    # Cameras stacked after the leading axes (..., num_cams, H, W, 3), so that flattening keeps
    # a sharded leading batch axis contiguous (see hiljax.agents.sac._batch_major).
    stacked = jnp.stack([images[k] for k in keys], axis=-4)
    lead = stacked.shape[:-3]
    flat = stacked.reshape((-1,) + stacked.shape[-3:])
    features = backbone.apply({"params": backbone_params}, flat)
    features = features.reshape(lead + features.shape[-3:])
    return {k: features[..., i, :, :, :] for i, k in enumerate(keys)}
