"""The reward classifier's configuration: one frozen dataclass, loaded like every hiljax config.

Field names follow LeRobot's `RewardClassifierConfig` where one exists (`num_classes`,
`hidden_dim`, `latent_dim`, `image_embedding_pooling_dim`, `dropout_rate`, `learning_rate`,
`weight_decay`, `grad_clip_norm`, `model_name`); the defaults are the reference's
(reference_facts §3). A bad value raises `ConfigError` naming the field when the object is built.

    config = load_classifier_config("configs/classifier_sim.json", ["max_steps=500"])
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from hiljax.config import IMAGE_NORMALIZATIONS, is_image_key, load_config, require

MODEL_NAMES = ("resnet10", "cnn")
# Fields no compiled computation reads (schedule, split, threshold, weight file); see
# `compiled_view`.
_NOT_COMPILED = ("pretrained_vision_weights", "max_steps", "eval_every", "patience", "min_delta",
                 "validation_fraction", "seed", "success_class", "threshold",
                 "threshold_min_precision")



@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Model, optimiser and training schedule of the reward classifier."""

    # Model. num_classes 2 is binary: ONE logit trained with sigmoid cross-entropy (as the
    # reference); more classes give num_classes logits and softmax cross-entropy.
    num_classes: int = 2
    hidden_dim: int = 256
    latent_dim: int = 256  # per camera, after the spatial embeddings
    image_embedding_pooling_dim: int = 8  # learned spatial features per backbone channel
    dropout_rate: float = 0.1
    # Frozen vision backbone: "resnet10" (the reference's), or "cnn" (hiljax's small random CNN,
    # for quick experiments). Weights: a local file in any layout
    # hiljax.networks.resnet_weights reads; null -> random initialisation from `seed`.
    model_name: str = "resnet10"
    pretrained_vision_weights: str | None = None
    # How the ResNet10 sees pixels: "imagenet" (/255 then ImageNet mean/std) or "none" (/255).
    image_normalization: str = "imagenet"
    layer_norm_eps: float = 1e-5  # torch's (LeRobot's) default, for exact import / export
    # Cameras the classifier looks at; empty = every "observation.images.*" key of the data.
    image_keys: tuple[str, ...] = ()

    # Optimiser: AdamW after clipping the global gradient norm.
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    grad_clip_norm: float = 1.0

    # Schedule. Batches are class-balanced (equal numbers per class, drawn with replacement).
    batch_size: int = 32
    max_steps: int = 2000
    eval_every: int = 50  # gradient steps between validation rounds
    patience: int = 6  # validation rounds without a lower validation loss before stopping
    # A round counts as an improvement only when the validation loss drops by more than this
    # (the best parameters are still kept on any drop): a loss creeping from 1e-4 to 9e-5 is
    # not worth another thousand steps.
    min_delta: float = 1e-3
    # Share of EPISODES held out for validation (0: no validation, no early stopping).
    validation_fraction: float = 0.2
    seed: int = 0

    # Prediction. P(success) is P(class success_class); null -> num_classes - 1 (binary: 1).
    success_class: int | None = None
    threshold: float = 0.7  # P(success) >= threshold counts as success (the env's default)
    # When set, the saved threshold is instead the validation split's highest-recall threshold
    # reaching this precision (hiljax.classifier.thresholds.pick_threshold).
    threshold_min_precision: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "image_keys", tuple(self.image_keys))
        require(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")
        for name in ("hidden_dim", "latent_dim", "image_embedding_pooling_dim", "batch_size",
                     "max_steps", "eval_every", "patience"):
            value = getattr(self, name)
            require(value >= 1, f"{name} must be >= 1, got {value}")
        require(self.min_delta >= 0.0, f"min_delta must be >= 0, got {self.min_delta}")
        require(0.0 <= self.dropout_rate < 1.0,
                 f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        require(self.model_name in MODEL_NAMES,
                 f"model_name must be one of {MODEL_NAMES}, got {self.model_name!r}")
        require(self.pretrained_vision_weights is None or self.model_name == "resnet10",
                 "pretrained_vision_weights needs model_name 'resnet10'")
        require(self.image_normalization in IMAGE_NORMALIZATIONS,
                f"image_normalization must be one of {IMAGE_NORMALIZATIONS}, "
                f"got {self.image_normalization!r}")
        require(0.0 < self.layer_norm_eps < 1.0, "layer_norm_eps must be in (0, 1)")
        for key in self.image_keys:
            require(is_image_key(key), f"image_keys: {key!r} is not an observation.images.* key")
        require(len(set(self.image_keys)) == len(self.image_keys), "image_keys has duplicates")
        require(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(self.grad_clip_norm > 0, f"grad_clip_norm must be > 0, got {self.grad_clip_norm}")
        require(self.batch_size >= self.num_classes,
                 f"batch_size ({self.batch_size}) must hold one frame of each of the "
                 f"{self.num_classes} classes")
        require(0.0 <= self.validation_fraction < 1.0,
                 f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.success_class is not None:
            require(0 <= self.success_class < self.num_classes,
                     f"success_class must be in [0, {self.num_classes}), got {self.success_class}")
            require(self.num_classes > 2 or self.success_class == 1,
                     "a binary classifier's success_class is 1 (its one logit is P(label 1))")
        require(0.0 <= self.threshold <= 1.0, f"threshold must be in [0, 1], got {self.threshold}")
        if self.threshold_min_precision is not None:
            require(0.0 < self.threshold_min_precision <= 1.0,
                     "threshold_min_precision must be in (0, 1] or null")

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def num_outputs(self) -> int:
        """Logits the head produces: 1 for a binary classifier, else num_classes."""
        return 1 if self.is_binary else self.num_classes

    @property
    def resolved_success_class(self) -> int:
        return self.num_classes - 1 if self.success_class is None else self.success_class


@functools.lru_cache(maxsize=64)
def compiled_view(config: ClassifierConfig) -> ClassifierConfig:
    """`config` with the fields no compiled computation reads set to their defaults.

    Jitted functions take the config as a static argument; passing this view means editing
    max_steps, the threshold, the seed... reuses the compiled programs instead of recompiling.
    """
    defaults = ClassifierConfig()
    return dataclasses.replace(config, **{name: getattr(defaults, name) for name in _NOT_COMPILED})


def load_classifier_config(path: str | Path | None = None, overrides: list[str] = ()
                           ) -> ClassifierConfig:
    """ClassifierConfig from a JSON file (or the defaults) plus `key=value` overrides."""
    return load_config(ClassifierConfig, path, overrides)
