"""A trained reward classifier as a plain callable: observation dict -> P(success).

    clf = load_classifier("outputs/classifier")          # hiljax's or LeRobot's directory
    p = clf(observation)          # float; observation["observation.images.front"]: (H, W, 3) uint8
    env = RewardWrapper(env, clf, threshold=clf.threshold)

The backbone and the network run in ONE jitted call. Keys of the observation other than the
classifier's cameras (state, environment state) are ignored. A missing camera, a wrong shape
or a non-uint8 image raises ValueError naming the key and what was expected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .config import ClassifierConfig, compiled_view
from .features import backbone_features, pad_batch
from .io import read_classifier_dir, write_classifier_files
from .model import class_probabilities, make_network

PREDICT_BATCH = 32  # frames per jitted call in predict_proba (the last batch is padded)


@functools.partial(jax.jit, static_argnames=("config",))
def _logits_jit(config: ClassifierConfig, backbone_params, params, images) -> jax.Array:
    features = backbone_features(config, backbone_params, images)
    features = {k: v.astype(jnp.float32) for k, v in features.items()}
    return make_network(config).apply({"params": params}, features, train=False)


class RewardClassifier:
    """Frozen backbone + trained network + the decision threshold; callable on observations."""

    def __init__(self, config: ClassifierConfig, backbone_params, params,
                 image_shapes: Mapping[str, tuple[int, int, int]], threshold: float | None = None,
                 metrics: Mapping | None = None):
        if not config.image_keys or set(image_shapes) != set(config.image_keys):
            raise ValueError(f"image_shapes {sorted(image_shapes)} must name exactly the "
                             f"config's image_keys {list(config.image_keys)}")
        self.config = config
        self.backbone_params = jax.device_put(backbone_params)
        self.params = jax.device_put(params)
        self.image_shapes = {k: tuple(int(d) for d in image_shapes[k]) for k in config.image_keys}
        self.threshold = float(config.threshold if threshold is None else threshold)
        self.metrics = dict(metrics or {})

    @property
    def image_keys(self) -> tuple[str, ...]:
        return self.config.image_keys

    def __call__(self, observation: Mapping[str, np.ndarray]) -> float:
        """P(success) of one observation (images (H, W, 3) or (1, H, W, 3) uint8)."""
        images = {key: self._checked(observation, key, single=True) for key in self.image_keys}
        return float(self._success(self.logits_of_batch(images))[0])

    def is_success(self, observation: Mapping[str, np.ndarray]) -> bool:
        return self(observation) >= self.threshold

    def logits(self, images: Mapping[str, np.ndarray], batch_size: int = PREDICT_BATCH
               ) -> np.ndarray:
        """(N, 1) binary or (N, num_classes) logits of many frames: key -> (N, H, W, 3) uint8."""
        frames = {key: self._checked(images, key, single=False) for key in self.image_keys}
        num_frames = len(frames[self.image_keys[0]])
        if any(len(v) != num_frames for v in frames.values()):
            raise ValueError(f"cameras hold different numbers of frames: "
                             f"{ {k: len(v) for k, v in frames.items()} }")
        chunks = []
        for start in range(0, num_frames, batch_size):
            chunk = {k: v[start:start + batch_size] for k, v in frames.items()}
            count = len(chunk[self.image_keys[0]])
            padded = {k: pad_batch(v, batch_size) for k, v in chunk.items()}
            chunks.append(self.logits_of_batch(padded)[:count])
        if not chunks:
            return np.zeros((0, self.config.num_outputs), np.float32)
        return np.concatenate(chunks)

    def class_probabilities(self, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, num_classes) class probabilities of many frames."""
        logits = self.logits(images)
        return np.asarray(class_probabilities(jnp.asarray(logits), self.config.num_classes))

    def predict_proba(self, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N,) P(success) of many frames: key -> (N, H, W, 3) uint8."""
        return self._success(self.logits(images))

    def logits_of_batch(self, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits of already checked frames, one jitted call (compiled once per batch size)."""
        return np.asarray(_logits_jit(compiled_view(self.config), self.backbone_params,
                                      self.params, images))

    def _success(self, logits: np.ndarray) -> np.ndarray:
        probabilities = class_probabilities(jnp.asarray(logits), self.config.num_classes)
        return np.asarray(probabilities[:, self.config.resolved_success_class])

    def _checked(self, source: Mapping[str, np.ndarray], key: str, single: bool) -> np.ndarray:
        expected = self.image_shapes[key]
        if key not in source:
            raise ValueError(f"the reward classifier needs {key!r}: uint8 images of shape "
                             f"{expected}; the observation has {sorted(source)}")
        frames = np.asarray(source[key])
        if single and frames.shape == expected:
            frames = frames[None]
        shape_ok = frames.ndim == 4 and frames.shape[1:] == expected and \
            (not single or frames.shape[0] == 1)
        if not shape_ok:
            wanted = f"{expected} or {(1, *expected)}" if single else f"(N, *{expected})"
            raise ValueError(f"{key!r}: expected uint8 images of shape {wanted}, got "
                             f"{frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"{key!r}: expected uint8 pixels in [0, 255], got {frames.dtype}")
        return frames

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        save_classifier(self, path, overwrite=overwrite)

    def __repr__(self) -> str:
        return (f"RewardClassifier(cameras={list(self.image_keys)}, "
                f"num_classes={self.config.num_classes}, threshold={self.threshold:.3f})")


def save_classifier(classifier: RewardClassifier, path: str | os.PathLike,
                    overwrite: bool = False) -> Path:
    """Write `classifier` into directory `path` (hiljax.classifier.io's format); refuses to
    replace a saved one unless `overwrite`. Returns the directory."""
    return write_classifier_files(
        path, config=classifier.config, backbone_params=classifier.backbone_params,
        params=classifier.params, image_shapes=classifier.image_shapes,
        threshold=classifier.threshold, metrics=classifier.metrics, overwrite=overwrite)


def load_classifier(path: str | os.PathLike) -> RewardClassifier:
    """The classifier saved in directory `path`, ready to call on observations: one hiljax
    saved, or a LeRobot 0.4 reward classifier (its pretrained_model directory)."""
    return RewardClassifier(**read_classifier_dir(path))
