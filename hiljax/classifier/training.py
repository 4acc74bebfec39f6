"""Training the reward classifier: a pure train state, jitted rounds, early stopping.

    classifier, history = train_classifier(data, config)      # the CLI and the notebook call this

1. The frozen backbone's features of every frame are computed once (features.py).
2. The frames are split BY EPISODE into training and validation (data.py).
3. Rounds of `eval_every` AdamW steps (gradient clipped), each round ONE jitted call scanning
   over its steps. Every batch is class-balanced: equal numbers of each class present in the
   training split, drawn with replacement, so 20 positives among 400 frames still train well.
4. After each round the validation loss decides: the parameters of the lowest validation loss
   are kept, and `patience` rounds without a lower loss stop the training.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .analysis import binary_scores, pick_threshold
from .config import ClassifierConfig, compiled_view
from .data import ClassifierData, split_by_episode
from .features import extract_features, pad_batch
from .losses import classification_metrics
from .model import (
    backbone_feature_shapes,
    class_probabilities,
    init_backbone_params,
    init_network_params,
    make_network,
)
from .predict import RewardClassifier

log = logging.getLogger(__name__)

EVAL_BATCH = 256  # validation frames per jitted call


class TrainState(flax.struct.PyTreeNode):
    params: dict  # the trainable network (spatial embeddings, projections, head)
    opt_state: optax.OptState
    step: jax.Array  # gradient steps done (int32 scalar)


class TrainingSet(NamedTuple):
    """The training split on the device, with a table for class-balanced sampling."""

    features: dict  # key -> (N, h, w, C) float16
    labels: jax.Array  # (N,) int32
    class_table: jax.Array  # (num_present_classes, max_count): frame indices of each class
    class_counts: jax.Array  # (num_present_classes,) valid entries per row of class_table


def make_optimizer(config: ClassifierConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm),
                       optax.adamw(config.learning_rate, weight_decay=config.weight_decay))


def create_train_state(config: ClassifierConfig, params: dict) -> TrainState:
    return TrainState(params=params, opt_state=make_optimizer(config).init(params),
                      step=jnp.zeros((), jnp.int32))


def make_training_set(features: dict[str, np.ndarray], labels: np.ndarray) -> TrainingSet:
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"the training split holds only class(es) {present.tolist()}: a "
                         "classifier needs frames of at least two classes (e.g. successes)")
    members = [np.flatnonzero(labels == c) for c in present]
    table = np.zeros((len(present), max(len(m) for m in members)), np.int32)
    for row, indices in enumerate(members):
        table[row, :len(indices)] = indices
    return TrainingSet(features={k: jnp.asarray(v) for k, v in features.items()},
                       labels=jnp.asarray(labels, jnp.int32), class_table=jnp.asarray(table),
                       class_counts=jnp.asarray([len(m) for m in members], jnp.int32))


def balanced_indices(key: jax.Array, class_table: jax.Array, class_counts: jax.Array,
                     batch_size: int) -> jax.Array:
    """(batch_size,) frame indices: slot i holds class row i % num_classes, drawn uniformly
    with replacement among that class's frames (equal counts when batch_size divides evenly)."""
    rows = jnp.arange(batch_size) % class_table.shape[0]
    positions = jax.random.randint(key, (batch_size,), 0, class_counts[rows])
    return class_table[rows, positions]


def train_loss(params: dict, config: ClassifierConfig, features: dict, labels: jax.Array,
               dropout_key: jax.Array) -> tuple[jax.Array, dict]:
    logits = make_network(config).apply({"params": params}, features, train=True,
                                        rngs={"dropout": dropout_key})
    metrics = classification_metrics(logits, labels, config.num_classes)
    return metrics["loss"], metrics


def train_step(config: ClassifierConfig, state: TrainState, data: TrainingSet, key: jax.Array
               ) -> tuple[TrainState, dict]:
    """One AdamW step on one class-balanced batch (traceable; see train_round)."""
    k_sample, k_dropout = jax.random.split(key)
    indices = balanced_indices(k_sample, data.class_table, data.class_counts, config.batch_size)
    features = {k: v[indices].astype(jnp.float32) for k, v in data.features.items()}
    grads, metrics = jax.grad(train_loss, has_aux=True)(state.params, config, features,
                                                        data.labels[indices], k_dropout)
    updates, opt_state = make_optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), metrics


def train_round(config: ClassifierConfig, state: TrainState, data: TrainingSet, key: jax.Array,
                num_steps: int) -> tuple[TrainState, dict]:
    """`num_steps` train steps in one compiled scan; metrics averaged over the steps."""
    return _train_round_jit(compiled_view(config), state, data, key, num_steps)


@functools.partial(jax.jit, static_argnames=("config", "num_steps"))
def _train_round_jit(config: ClassifierConfig, state: TrainState, data: TrainingSet,
                     key: jax.Array, num_steps: int) -> tuple[TrainState, dict]:
    state, metrics = jax.lax.scan(lambda s, k: train_step(config, s, data, k), state,
                                  jax.random.split(key, num_steps))
    return state, jax.tree_util.tree_map(jnp.mean, metrics)


@functools.partial(jax.jit, static_argnames=("config",))
def _eval_logits(config: ClassifierConfig, params: dict, features: dict) -> jax.Array:
    features = {k: v.astype(jnp.float32) for k, v in features.items()}
    return make_network(config).apply({"params": params}, features, train=False)


def evaluation_logits(config: ClassifierConfig, params: dict, features: dict[str, np.ndarray],
                      batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Logits (N, outputs) of cached features, in padded fixed-size batches (one compile)."""
    num_frames = len(next(iter(features.values())))
    chunks = []
    for start in range(0, num_frames, batch_size):
        chunk = {k: pad_batch(v[start:start + batch_size], batch_size) for k, v in features.items()}
        count = min(batch_size, num_frames - start)
        chunks.append(np.asarray(_eval_logits(compiled_view(config), params, chunk))[:count])
    return np.concatenate(chunks) if chunks else np.zeros((0, config.num_outputs), np.float32)


def evaluate(config: ClassifierConfig, params: dict, features: dict[str, np.ndarray],
             labels: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """(metrics as floats, logits) of the network on cached features."""
    logits = evaluation_logits(config, params, features)
    metrics = classification_metrics(jnp.asarray(logits), jnp.asarray(labels, jnp.int32),
                                     config.num_classes)
    return {k: float(v) for k, v in metrics.items()}, logits


@dataclasses.dataclass
class TrainingHistory:
    """Metrics after every round (train: averaged over the round's batches) and the outcome."""

    steps: list[int] = dataclasses.field(default_factory=list)
    train: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    validation: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    best_step: int = 0
    stopped_early: bool = False
    train_episodes: list[int] = dataclasses.field(default_factory=list)
    validation_episodes: list[int] = dataclasses.field(default_factory=list)

    def record(self, step: int, train: dict[str, float], validation: dict[str, float] | None):
        self.steps.append(step)
        for name, value in train.items():
            self.train.setdefault(name, []).append(float(value))
        for name, value in (validation or {}).items():
            self.validation.setdefault(name, []).append(float(value))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Split:
    features: dict[str, np.ndarray]
    labels: np.ndarray
    episodes: np.ndarray


def resolve_config(config: ClassifierConfig, data: ClassifierData) -> ClassifierConfig:
    """`config` with its image_keys filled in from the data (empty = every camera)."""
    keys = config.image_keys or data.image_keys
    missing = [k for k in keys if k not in data.images]
    if missing:
        raise ValueError(f"image_keys {missing} are not in the data; it has {data.image_keys}")
    if data.labels.size and (data.labels.min() < 0 or data.labels.max() >= config.num_classes):
        raise ValueError(f"labels must be in [0, {config.num_classes}), found "
                         f"{sorted(set(data.labels.tolist()))[:8]}")
    return dataclasses.replace(config, image_keys=tuple(keys))


def train_classifier(data: ClassifierData, config: ClassifierConfig, progress: bool = True,
                     key: jax.Array | None = None) -> tuple[RewardClassifier, TrainingHistory]:
    """Train a reward classifier on `data`; returns it (best validation parameters) and history.

    key: the JAX key for initialisation, batches and dropout (default: from config.seed).
    """
    config = resolve_config(config, data)
    key = jax.random.key(config.seed) if key is None else key
    k_backbone, k_network, k_train = jax.random.split(key, 3)
    image_shapes = {k: data.image_shapes[k] for k in config.image_keys}
    backbone_params = init_backbone_params(config, k_backbone, image_shapes[config.image_keys[0]])

    started = time.perf_counter()
    features = extract_features(config, backbone_params,
                                {k: data.images[k] for k in config.image_keys}, progress=progress)
    feature_seconds = time.perf_counter() - started
    log.info("backbone features of %d frames x %d camera(s): %.1f s (%.0f frames/s)",
             data.num_frames, len(config.image_keys), feature_seconds,
             data.num_frames / max(feature_seconds, 1e-9))

    train_idx, val_idx = split_by_episode(data, config.validation_fraction, config.seed)
    train, validation = (_Split({k: v[idx] for k, v in features.items()}, data.labels[idx],
                                np.unique(data.episode_index[idx])) for idx in (train_idx, val_idx))
    _log_split("train", train, config.num_classes)
    _log_split("validation", validation, config.num_classes)

    shapes = backbone_feature_shapes(config, backbone_params, image_shapes)
    state = create_train_state(config, init_network_params(config, k_network, shapes))
    history = TrainingHistory(train_episodes=train.episodes.tolist(),
                              validation_episodes=validation.episodes.tolist())
    started = time.perf_counter()
    best_params = _fit(config, state, make_training_set(train.features, train.labels),
                       validation, k_train, history, progress)
    training_seconds = time.perf_counter() - started

    threshold, at_threshold = _choose_threshold(config, best_params, validation)
    summary = _summary(config, history, train, validation, threshold, at_threshold)
    summary.update(feature_seconds=feature_seconds, training_seconds=training_seconds)
    return RewardClassifier(config, backbone_params, best_params, image_shapes, threshold,
                            summary), history


def _fit(config: ClassifierConfig, state: TrainState, train_set: TrainingSet, validation: _Split,
         key: jax.Array, history: TrainingHistory, progress: bool) -> dict:
    """The round loop with early stopping; returns the kept (best validation) parameters."""
    has_validation = len(validation.labels) > 0
    best_params, best_loss, stale_rounds = state.params, np.inf, 0
    with tqdm(total=config.max_steps, unit="step", desc="training", disable=not progress) as bar:
        while int(state.step) < config.max_steps:
            num_steps = min(config.eval_every, config.max_steps - int(state.step))
            key, k_round = jax.random.split(key)
            state, train_metrics = train_round(config, state, train_set, k_round, num_steps)
            step = int(state.step)
            val_metrics = (evaluate(config, state.params, validation.features, validation.labels)[0]
                           if has_validation else None)
            history.record(step, jax.device_get(train_metrics), val_metrics)
            bar.update(num_steps)
            bar.set_postfix(loss=f"{float(train_metrics['loss']):.3f}",
                            val_acc="-" if val_metrics is None else f"{val_metrics['accuracy']:.3f}")
            if val_metrics is None:
                best_params, history.best_step = state.params, step
                continue
            loss = val_metrics["loss"]
            stale_rounds = 0 if loss < best_loss - config.min_delta else stale_rounds + 1
            if loss < best_loss:
                best_params, history.best_step, best_loss = state.params, step, loss
            if stale_rounds >= config.patience:
                history.stopped_early = True
                log.info("early stop at step %d: validation loss has not improved for %d rounds",
                         step, stale_rounds)
                break
    return best_params


def _choose_threshold(config: ClassifierConfig, params: dict, validation: _Split
                      ) -> tuple[float, dict | None]:
    """The saved threshold (configured, or picked on validation) and the validation scores of
    `P(success) >= threshold`."""
    if len(validation.labels) == 0:
        return config.threshold, None
    logits = evaluation_logits(config, params, validation.features)
    success = config.resolved_success_class
    probabilities = np.asarray(class_probabilities(jnp.asarray(logits), config.num_classes))
    probabilities = probabilities[:, success]
    is_success = validation.labels == success
    threshold = config.threshold
    if config.threshold_min_precision is not None:
        picked = pick_threshold(probabilities, is_success, config.threshold_min_precision)
        if picked is None:
            log.warning("no threshold reaches precision %.2f on validation; keeping %.2f",
                        config.threshold_min_precision, threshold)
        else:
            threshold = picked
    return threshold, binary_scores(probabilities, is_success, threshold)


def _class_counts(split: _Split, num_classes: int) -> list[int]:
    return np.bincount(split.labels, minlength=num_classes).tolist()


def _log_split(name: str, split: _Split, num_classes: int) -> None:
    counts = _class_counts(split, num_classes)
    detail = (f"{counts[1]} positive / {counts[0]} negative" if num_classes == 2
              else f"per class {counts}")
    log.info("%s split: %d episodes, %d frames (%s)", name, len(split.episodes),
             len(split.labels), detail)


def _summary(config: ClassifierConfig, history: TrainingHistory, train: _Split,
             validation: _Split, threshold: float, at_threshold: dict | None) -> dict:
    """The training outcome saved with the classifier (JSON-ready)."""
    best = None
    if history.validation:
        index = history.steps.index(history.best_step)
        best = {name: values[index] for name, values in history.validation.items()}
    return {
        "train": {"episodes": len(train.episodes), "frames": len(train.labels),
                  "class_counts": _class_counts(train, config.num_classes)},
        "validation": {"episodes": len(validation.episodes), "frames": len(validation.labels),
                       "class_counts": _class_counts(validation, config.num_classes)},
        "steps": history.steps[-1] if history.steps else 0,
        "best_step": history.best_step,
        "stopped_early": history.stopped_early,
        "best_validation": best,
        "threshold": threshold,
        "validation_at_threshold": at_threshold,
    }
