"""ResNet10 backbone with the parameter names of the Berkeley SERL / HIL-SERL Flax code.

The names (`conv_init`, `norm_init`, `ResNetBlock_0..3/{Conv_0, Conv_1, MyGroupNorm_0,
MyGroupNorm_1, conv_proj, norm_proj}`) and the numerics (GroupNorm with 4 groups and
epsilon 1e-5, convolutions without bias, stem convolution padded (3, 3) on both sides rather
than SAME) follow `serl_launcher/vision/resnet_v1.py` ("resnetv1-10"), so the released
`resnet10_params.pkl` drops straight in as `{"params": tree}`.

Freezing is the caller's business (stop_gradient on the features, or an optimizer mask):
this is a plain linen Module and its params are a plain pytree.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

STEM_FILTERS = 64
STAGE_FILTERS = (64, 128, 256, 512)
NUM_GROUPS = 4
# Berkeley's MyGroupNorm is built with epsilon=1e-5 (flax's default would be 1e-6).
GROUP_NORM_EPSILON = 1e-5
# The Berkeley stem pads (3, 3) explicitly. For even sizes SAME would pad (2, 3), which
# shifts every feature by one pixel: keep the explicit padding to match the weights.
STEM_PADDING = ((3, 3), (3, 3))

_kaiming = nn.initializers.kaiming_normal()


def _group_norm(name: str, dtype: Any) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=NUM_GROUPS, epsilon=GROUP_NORM_EPSILON, dtype=dtype, name=name)


def _conv(features: int, kernel: int, stride: int, name: str, dtype: Any,
          padding: Any = "SAME") -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                   use_bias=False, kernel_init=_kaiming, dtype=dtype, name=name)


class ResNetBlock(nn.Module):
    """Basic block: conv3x3-GN-ReLU-conv3x3-GN, plus a 1x1 conv + GN shortcut on shape change."""

    filters: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        y = _conv(self.filters, 3, self.stride, "Conv_0", self.dtype)(x)
        y = nn.relu(_group_norm("MyGroupNorm_0", self.dtype)(y))
        y = _conv(self.filters, 3, 1, "Conv_1", self.dtype)(y)
        y = _group_norm("MyGroupNorm_1", self.dtype)(y)
        residual = x
        if residual.shape != y.shape:
            residual = _conv(self.filters, 1, self.stride, "conv_proj", self.dtype)(residual)
            residual = _group_norm("norm_proj", self.dtype)(residual)
        return nn.relu(residual + y)


class ResNet10(nn.Module):
    """ResNet10 feature extractor: images (..., H, W, 3) -> features (..., H/32, W/32, 512).

    Input: uint8 pixels in [0, 255], or floating pixels already scaled to [0, 1] (any float
    dtype is taken to be in [0, 1]; it is NOT divided by 255). Then, with `imagenet_normalize`
    (the default: what the pretrained weights were trained with), the ImageNet mean/std
    normalisation is applied here; without it the convolutions see [0, 1] pixels, as LeRobot
    0.4's SAC feeds its ResNet10. Any number of leading batch dims (including none).
    Spatial output is ceil(H/32) x ceil(W/32); 128x128 gives 4x4x512.

    `dtype` is the compute dtype; parameters stay float32.
    """

    dtype: Any = jnp.float32
    imagenet_normalize: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if x.ndim < 3 or x.shape[-1] != 3:
            raise ValueError(f"ResNet10 expects (..., H, W, 3) images, got shape {x.shape}")
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])  # (N, H, W, 3)
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        else:
            x = x.astype(jnp.float32)
        if self.imagenet_normalize:
            x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        x = x.astype(self.dtype)

        x = _conv(STEM_FILTERS, 7, 2, "conv_init", self.dtype, padding=STEM_PADDING)(x)
        x = nn.relu(_group_norm("norm_init", self.dtype)(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, filters in enumerate(STAGE_FILTERS):
            stride = 1 if i == 0 else 2
            x = ResNetBlock(filters, stride=stride, dtype=self.dtype, name=f"ResNetBlock_{i}")(x)
        return x.reshape(lead + x.shape[1:])  # (..., H/32, W/32, 512)


def resnet10_param_shapes() -> dict[str, tuple[int, ...]]:
    """Every parameter of ResNet10 as {"ResNetBlock_1/conv_proj/kernel": shape}, kernels HWIO."""
    shapes: dict[str, tuple[int, ...]] = {"conv_init/kernel": (7, 7, 3, STEM_FILTERS)}
    shapes.update(_norm_shapes("norm_init", STEM_FILTERS))
    in_ch = STEM_FILTERS
    for i, out_ch in enumerate(STAGE_FILTERS):
        block = f"ResNetBlock_{i}"
        shapes[f"{block}/Conv_0/kernel"] = (3, 3, in_ch, out_ch)
        shapes.update(_norm_shapes(f"{block}/MyGroupNorm_0", out_ch))
        shapes[f"{block}/Conv_1/kernel"] = (3, 3, out_ch, out_ch)
        shapes.update(_norm_shapes(f"{block}/MyGroupNorm_1", out_ch))
        # Block 0 keeps 64 channels at stride 1, so it has no projection shortcut.
        if i > 0:
            shapes[f"{block}/conv_proj/kernel"] = (1, 1, in_ch, out_ch)
            shapes.update(_norm_shapes(f"{block}/norm_proj", out_ch))
        in_ch = out_ch
    return shapes


def _norm_shapes(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}/scale": (channels,), f"{prefix}/bias": (channels,)}
