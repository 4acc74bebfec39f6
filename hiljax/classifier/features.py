"""Frozen-backbone features: computed once per frame, so training runs on features only.

The backbone is the costly part of the classifier (a ResNet10 pass is ~250x the head's FLOPs).
Its parameters never change, so every frame's feature map is computed once, in fixed-size
jitted batches, and kept as float16 (a 4x4x512 map is 16 KiB, a third of the 48 KiB frame).
Prediction rounds its features through the same dtype, so the head sees what it was trained on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from hiljax.networks.encoder import apply_backbone

from .config import ClassifierConfig, compiled_view
from .model import make_backbone_module

FEATURE_DTYPE = jnp.float16
EXTRACTION_BATCH = 32  # frames per jitted backbone call (per camera)


def backbone_features(config: ClassifierConfig, backbone_params, images: Mapping[str, jax.Array]
                      ) -> dict[str, jax.Array]:
    """key -> (B, h, w, C) FEATURE_DTYPE maps of uint8 frames (B, H, W, 3); traceable.

    Cameras of one size share a single backbone call (stacked on the batch axis).
    """
    backbone = make_backbone_module(config)
    by_shape: dict[tuple, list[str]] = {}
    for key in config.image_keys:
        by_shape.setdefault(tuple(images[key].shape), []).append(key)
    features = {}
    for keys in by_shape.values():
        features.update(apply_backbone(backbone, backbone_params, images, keys))
    return {k: features[k].astype(FEATURE_DTYPE) for k in config.image_keys}


@functools.partial(jax.jit, static_argnames=("config",))
def _features_jit(config: ClassifierConfig, backbone_params, images):
    return backbone_features(config, backbone_params, images)


def extract_features(config: ClassifierConfig, backbone_params,
                     images: Mapping[str, np.ndarray], batch_size: int = EXTRACTION_BATCH,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Backbone features of every frame: key -> (N, h, w, C) float16 numpy arrays.

    The last batch is padded to `batch_size`, so one compiled program serves the whole pass.
    """
    keys = config.image_keys
    num_frames = len(images[keys[0]])
    out: dict[str, np.ndarray] = {}
    with tqdm(total=num_frames, unit="frame", desc="backbone features", disable=not progress,
              leave=False) as bar:
        for start in range(0, num_frames, batch_size):
            chunk = {k: pad_batch(images[k][start:start + batch_size], batch_size) for k in keys}
            features = jax.device_get(_features_jit(compiled_view(config), backbone_params,
                                                    chunk))
            count = min(batch_size, num_frames - start)
            for key in keys:
                if key not in out:
                    out[key] = np.empty((num_frames, *features[key].shape[1:]), np.float16)
                out[key][start:start + count] = features[key][:count]
            bar.update(count)
    return out


def pad_batch(frames: np.ndarray, size: int) -> np.ndarray:
    """`frames` (n <= size, ...) padded with zero frames to `size`: one compiled batch shape."""
    if len(frames) == size:
        return frames
    pad = np.zeros((size - len(frames), *frames.shape[1:]), frames.dtype)
    return np.concatenate([frames, pad])
