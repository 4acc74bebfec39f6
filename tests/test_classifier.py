"""The reward classifier on synthetic frames: losses and metrics against hand computations,
balanced batches, the episode-wise split, early stopping, a frozen backbone with trained
embeddings, save/load (and refusing broken files), prediction checks, plots, RewardWrapper.

Frames are 32x32 (ResNet10 -> 1x1x512 features) and the networks tiny, so the module stays
fast; tests/test_classifier_sim.py learns from the simulator's real 128x128 frames.
"""

import dataclasses
import json
import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

from hiljax.classifier import (
    ClassifierConfig,
    ClassifierData,
    ClassifierFileError,
    RewardClassifier,
    confusion_matrix,
    labels_from_rewards,
    load_classifier,
    load_classifier_config,
    pick_threshold,
    plots,
    precision_recall_curve,
    save_classifier,
    split_by_episode,
    train_classifier,
)
from hiljax.classifier.losses import classification_loss, classification_metrics
from hiljax.classifier.model import init_backbone_params, init_network_params
from hiljax.classifier.training import balanced_indices, make_training_set
from hiljax.config import ConfigError
from hiljax.envs.wrappers import RewardWrapper
from hiljax.networks.resnet_weights import save_resnet10

FRONT, WRIST = "observation.images.front", "observation.images.wrist"
SIZE = 32
TINY = ClassifierConfig(latent_dim=16, hidden_dim=32, image_embedding_pooling_dim=4,
                        batch_size=16, max_steps=150, eval_every=25, patience=3,
                        learning_rate=3e-3, validation_fraction=0.25, seed=0)


def success_frame(rng, positive: bool, channel: int) -> np.ndarray:
    """Dark noise; a success shows a bright square (front: red, wrist: green), jittered."""
    frame = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    if positive:
        top, left = rng.integers(6, 12, 2)
        frame[top:top + 14, left:left + 14, channel] = 255
    return frame


def synthetic_data(num_episodes=12, frames_per_episode=10, positives_per_episode=2, seed=0,
                   random_labels=False) -> ClassifierData:
    """Episodes ending in `positives_per_episode` success frames (as recorded demos do)."""
    rng = np.random.default_rng(seed)
    step = np.tile(np.arange(frames_per_episode), num_episodes)
    labels = (step >= frames_per_episode - positives_per_episode).astype(np.int64)
    shown = rng.permutation(labels) if random_labels else labels
    images = {key: np.stack([success_frame(rng, bool(s), channel) for s in shown])
              for key, channel in ((FRONT, 0), (WRIST, 1))}
    episodes = np.repeat(np.arange(num_episodes), frames_per_episode)
    return ClassifierData(images, labels, episodes)


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


@pytest.fixture(scope="module")
def trained(data):
    classifier, history = train_classifier(data, TINY, progress=False)
    return classifier, history


def observation_of(data: ClassifierData, index: int) -> dict:
    obs = {key: frames[index] for key, frames in data.images.items()}
    obs["observation.state"] = np.zeros(9, np.float32)  # ignored by the classifier
    return obs


# ---------------------------------------------------------------------------------------------
# Losses and metrics against hand computations.


def test_binary_loss_is_sigmoid_cross_entropy():
    logits = jnp.array([[0.0], [2.0], [-1.0]])
    labels = jnp.array([1, 0, 0])
    expected = (math.log(2.0) + math.log(1 + math.exp(2.0)) + math.log(1 + math.exp(-1.0))) / 3
    assert float(classification_loss(logits, labels, 2)) == pytest.approx(expected, rel=1e-5)


def test_multiclass_loss_is_softmax_cross_entropy():
    logits = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = jnp.array([2, 0])
    first = -(3.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    expected = (first + math.log(3.0)) / 2
    assert float(classification_loss(logits, labels, 3)) == pytest.approx(expected, rel=1e-5)


def test_binary_metrics_count_the_success_class():
    # predictions (logit >= 0): 1, 1, 0, 0, 1; labels: 1, 0, 1, 0, 1 -> tp 2, fp 1, fn 1
    logits = jnp.array([[0.5], [3.0], [-0.1], [-2.0], [0.0]])
    labels = jnp.array([1, 0, 1, 0, 1])
    metrics = {k: float(v) for k, v in classification_metrics(logits, labels, 2).items()}
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)


def test_binary_metrics_without_predicted_positives_are_zero_not_nan():
    metrics = classification_metrics(jnp.array([[-1.0], [-2.0]]), jnp.array([1, 0]), 2)
    assert float(metrics["precision"]) == 0.0 and float(metrics["recall"]) == 0.0
    assert float(metrics["accuracy"]) == 0.5


def test_multiclass_metrics_are_macro_averages_over_the_classes_seen():
    # predictions 0, 1, 1, 2; labels 0, 1, 2, 2 (class 3 of 4 never occurs: left out)
    logits = jnp.eye(4)[jnp.array([0, 1, 1, 2])] * 5.0
    labels = jnp.array([0, 1, 2, 2])
    metrics = {k: float(v) for k, v in classification_metrics(logits, labels, 4).items()}
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["precision"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert metrics["recall"] == pytest.approx((1 + 1 + 1 / 2) / 3)


def test_confusion_matrix_and_the_precision_recall_curve_by_hand():
    np.testing.assert_array_equal(confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0]), [[2, 0], [1, 1]])
    thresholds, precision, recall = precision_recall_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    np.testing.assert_allclose(thresholds, [0.1, 0.35, 0.4, 0.8])
    np.testing.assert_allclose(precision, [2 / 4, 2 / 3, 1 / 2, 1.0])
    np.testing.assert_allclose(recall, [1.0, 1.0, 0.5, 0.5])


def test_pick_threshold_takes_the_highest_recall_reaching_the_precision_target():
    probabilities, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    # the midpoint between the chosen probability and the next lower one (widest margin)
    assert pick_threshold(probabilities, labels, min_precision=0.95) == pytest.approx(0.6)
    assert pick_threshold(probabilities, labels, min_precision=0.6) == pytest.approx(0.225)
    assert pick_threshold([0.9, 0.95], [1, 1], min_precision=0.9) == pytest.approx(0.45)
    assert pick_threshold(probabilities, [0, 0, 0, 0], min_precision=0.5) is None


# ---------------------------------------------------------------------------------------------
# Labels, data, balanced batches and the split.


def test_labels_from_rewards_follow_lerobot():
    np.testing.assert_array_equal(labels_from_rewards([0.0, 1.0, 0.5, -0.1, 2.0]), [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(labels_from_rewards([0.0, 2.0, 1.0], num_classes=3), [0, 2, 1])
    with pytest.raises(ValueError, match="integer rewards"):
        labels_from_rewards([0.0, 0.5], num_classes=3)
    with pytest.raises(ValueError, match="integer rewards"):
        labels_from_rewards([0.0, 3.0], num_classes=3)


def test_classifier_data_refuses_bad_arrays():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    labels, episodes = np.zeros(4, int), np.zeros(4, int)
    with pytest.raises(ValueError, match="uint8"):
        ClassifierData({FRONT: frames.astype(np.float32)}, labels, episodes)
    with pytest.raises(ValueError, match="3 frames"):
        ClassifierData({FRONT: frames[:3]}, labels, episodes)
    with pytest.raises(ValueError, match="observation.images"):
        ClassifierData({"front": frames}, labels, episodes)
    with pytest.raises(ValueError, match="episode_index"):
        ClassifierData({FRONT: frames}, labels, episodes[:2])


def test_balanced_batches_hold_equal_class_counts_with_20_positives_in_400():
    labels = np.zeros(400, np.int64)
    labels[np.random.default_rng(0).choice(400, 20, replace=False)] = 1
    train_set = make_training_set({FRONT: np.zeros((400, 1, 1, 4), np.float16)}, labels)
    sample = jax.jit(balanced_indices, static_argnums=3)
    seen = set()
    for seed in range(5):
        indices = np.asarray(sample(jax.random.key(seed), train_set.class_table,
                                    train_set.class_counts, 64))
        np.testing.assert_array_equal(np.bincount(labels[indices], minlength=2), [32, 32])
        seen.update(indices[labels[indices] == 1].tolist())
    assert len(seen) >= 15  # drawn across all 20 positives, with replacement


def test_a_training_split_of_one_class_is_refused():
    with pytest.raises(ValueError, match="at least two classes"):
        make_training_set({FRONT: np.zeros((5, 1, 1, 4), np.float16)}, np.zeros(5, np.int64))


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_split_is_by_episode_and_never_leaks(fraction, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 15, 17)
    episodes = np.repeat(rng.permutation(100)[:17], lengths)  # ids need not be 0..n-1
    labels = np.zeros(len(episodes), np.int64)
    for episode in np.unique(episodes)[::2]:  # every other episode ends in success
        labels[np.flatnonzero(episodes == episode)[-2:]] = 1
    data = ClassifierData({FRONT: np.zeros((len(labels), 2, 2, 3), np.uint8)}, labels, episodes)
    train, validation = split_by_episode(data, fraction, seed)
    assert len(train) + len(validation) == len(labels)
    assert not set(episodes[train]) & set(episodes[validation])
    assert len(validation) > 0 and len(train) > 0
    assert set(labels[validation]) == {0, 1}  # stratified: successes on both sides
    again = split_by_episode(data, fraction, seed)
    np.testing.assert_array_equal(validation, again[1])


def test_without_a_validation_fraction_everything_trains():
    data = synthetic_data(num_episodes=3)
    train, validation = split_by_episode(data, 0.0, 0)
    assert len(train) == data.num_frames and len(validation) == 0


# ---------------------------------------------------------------------------------------------
# Config.


def test_config_defaults_are_the_reference_values():
    config = ClassifierConfig()
    assert (config.num_classes, config.hidden_dim, config.latent_dim) == (2, 256, 256)
    assert (config.image_embedding_pooling_dim, config.dropout_rate) == (8, 0.1)
    assert (config.learning_rate, config.weight_decay, config.grad_clip_norm) == (1e-4, 0.01, 1.0)
    assert (config.model_name, config.threshold, config.num_outputs) == ("resnet10", 0.7, 1)
    assert ClassifierConfig(num_classes=3).resolved_success_class == 2


@pytest.mark.parametrize("override, message", [
    ("num_classes=1", "num_classes must be >= 2"),
    ("dropout_rate=1.0", r"dropout_rate must be in \[0, 1\)"),
    ("threshold=1.5", "threshold"),
    ("model_name=resnet18", "model_name"),
    ("validation_fraction=1.0", "validation_fraction"),
    ("batch_size=1", "batch_size"),
    ("success_class=0", "binary classifier's success_class is 1"),
    ('image_keys=["front"]', "not an observation.images"),
    ("learning_rate=0", "learning_rate"),
    ("max_steps=ten", "expected an integer"),
    ("min_delta=-0.1", "min_delta must be >= 0"),
    ("no_such_field=1", "unknown field"),
])
def test_bad_config_values_raise_config_error_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_classifier_config(None, [override])


def test_the_shipped_sim_config_loads():
    config = load_classifier_config("configs/classifier_sim.json")
    assert config.image_keys == (FRONT, WRIST) and config.model_name == "resnet10"


# ---------------------------------------------------------------------------------------------
# Training.


def test_it_learns_the_synthetic_success_frames(trained):
    classifier, history = trained
    best = classifier.metrics["best_validation"]
    assert best["accuracy"] >= 0.95, history.validation
    assert history.steps[-1] <= TINY.max_steps
    assert not set(history.train_episodes) & set(history.validation_episodes)


def test_the_backbone_stays_frozen_while_embeddings_and_head_train(data, trained):
    classifier, _ = trained
    k_backbone, k_network, _ = jax.random.split(jax.random.key(TINY.seed), 3)
    config = classifier.config
    initial_backbone = init_backbone_params(config, k_backbone, (SIZE, SIZE, 3))
    for before, after in zip(jax.tree_util.tree_leaves(initial_backbone),
                             jax.tree_util.tree_leaves(classifier.backbone_params)):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    shapes = {key: (1, 1, 512) for key in config.image_keys}
    initial = init_network_params(config, k_network, shapes)
    changed = jax.tree_util.tree_map(lambda a, b: not np.array_equal(a, b), initial,
                                     jax.device_get(classifier.params))
    spatial = changed["encoder"][f"camera_{FRONT.replace('.', '_')}"]["spatial_kernel"]
    assert spatial, "the spatial embeddings must train (the reference's fault)"
    assert all(jax.tree_util.tree_leaves(changed)), changed


def test_pretrained_backbone_weights_are_loaded_and_kept(data, tmp_path):
    weights = init_backbone_params(TINY, jax.random.key(42), (SIZE, SIZE, 3))
    save_resnet10(tmp_path / "resnet10.safetensors", weights)
    config = dataclasses.replace(TINY, max_steps=25,
                                 pretrained_vision_weights=str(tmp_path / "resnet10.safetensors"))
    classifier, _ = train_classifier(data, config, progress=False)
    for before, after in zip(jax.tree_util.tree_leaves(weights),
                             jax.tree_util.tree_leaves(classifier.backbone_params)):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))


def test_improvements_below_min_delta_do_not_reset_the_patience():
    """A validation loss that only creeps down stops training after `patience` rounds."""
    data = synthetic_data(num_episodes=8, seed=3)
    config = dataclasses.replace(TINY, max_steps=1000, eval_every=20, patience=2, min_delta=10.0)
    _, history = train_classifier(data, config, progress=False)
    assert history.stopped_early and history.steps[-1] == 3 * config.eval_every
    assert history.best_step == history.steps[int(np.argmin(history.validation["loss"]))]


def test_early_stopping_keeps_the_best_validation_parameters():
    data = synthetic_data(num_episodes=8, random_labels=True, seed=3)  # nothing to generalise
    config = ClassifierConfig(latent_dim=16, hidden_dim=32, image_embedding_pooling_dim=4,
                              batch_size=16, max_steps=600, eval_every=20, patience=3,
                              min_delta=0.0, learning_rate=1e-2, dropout_rate=0.0,
                              validation_fraction=0.25)
    classifier, history = train_classifier(data, config, progress=False)
    losses = history.validation["loss"]
    assert history.stopped_early and history.steps[-1] < config.max_steps
    best = int(np.argmin(losses))
    assert history.best_step == history.steps[best] < history.steps[-1]
    assert len(losses) - 1 - best == config.patience
    validation = np.isin(data.episode_index, history.validation_episodes)
    logits = classifier.logits({k: v[validation] for k, v in data.images.items()})
    kept = float(classification_loss(jnp.asarray(logits), jnp.asarray(data.labels[validation]), 2))
    assert kept == pytest.approx(losses[best], rel=1e-3)
    assert kept != pytest.approx(losses[-1], rel=1e-3)


def test_a_precision_target_picks_the_saved_threshold_on_validation(data):
    config = dataclasses.replace(TINY, max_steps=50, threshold_min_precision=0.9)
    classifier, history = train_classifier(data, config, progress=False)
    validation = np.isin(data.episode_index, history.validation_episodes)
    probabilities = classifier.predict_proba({k: v[validation] for k, v in data.images.items()})
    expected = pick_threshold(probabilities, data.labels[validation] == 1, 0.9)
    assert expected is not None and classifier.threshold == pytest.approx(expected, rel=1e-4)
    assert classifier.metrics["validation_at_threshold"]["precision"] >= 0.9
    assert classifier.metrics["threshold"] == classifier.threshold


def test_multiclass_success_is_the_success_class_probability(data):
    labels = data.labels * 2  # classes 0 and 2; class 1 never occurs
    labels[::7] = 1
    multi = ClassifierData(data.images, labels, data.episode_index)
    config = dataclasses.replace(TINY, num_classes=3, max_steps=25, image_keys=(FRONT,))
    classifier, _ = train_classifier(multi, config, progress=False)
    images = {FRONT: data.images[FRONT][:5]}
    probabilities = classifier.class_probabilities(images)
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(classifier.predict_proba(images), probabilities[:, 2], rtol=1e-6)
    assert classifier(observation_of(data, 0)) == pytest.approx(probabilities[0, 2], rel=1e-4)


# ---------------------------------------------------------------------------------------------
# Prediction, save and load.


def test_predict_accepts_an_observation_with_or_without_a_batch_dim(data, trained):
    classifier, _ = trained
    positive = int(np.flatnonzero(data.labels == 1)[0])
    obs = observation_of(data, positive)
    probability = classifier(obs)
    assert isinstance(probability, float) and probability > 0.5
    batched = {k: v[None] for k, v in obs.items()}
    assert classifier(batched) == pytest.approx(probability, abs=1e-6)
    many = classifier.predict_proba({k: v[:40] for k, v in data.images.items()})
    assert many.shape == (40,) and many[positive] == pytest.approx(probability, abs=1e-5)
    assert classifier(observation_of(data, 0)) < 0.5


@pytest.mark.parametrize("change, message", [
    (lambda obs: obs.pop(WRIST), "needs 'observation.images.wrist'.*\\(32, 32, 3\\)"),
    (lambda obs: obs.update({FRONT: obs[FRONT][:16]}), "'observation.images.front'.*\\(32, 32, 3\\)"),
    (lambda obs: obs.update({FRONT: np.stack([obs[FRONT]] * 2)}), "observation.images.front"),
    (lambda obs: obs.update({FRONT: obs[FRONT].astype(np.float32)}), "uint8"),
])
def test_predict_refuses_a_missing_camera_or_a_wrong_shape(data, trained, change, message):
    classifier, _ = trained
    obs = observation_of(data, 0)
    change(obs)
    with pytest.raises(ValueError, match=message):
        classifier(obs)


def test_save_then_load_predicts_identically(data, trained, tmp_path):
    classifier, _ = trained
    save_classifier(classifier, tmp_path / "clf")
    loaded = load_classifier(tmp_path / "clf")
    assert isinstance(loaded, RewardClassifier)
    assert loaded.config == classifier.config and loaded.threshold == classifier.threshold
    assert loaded.image_shapes == {FRONT: (SIZE, SIZE, 3), WRIST: (SIZE, SIZE, 3)}
    assert loaded.metrics["best_validation"] == classifier.metrics["best_validation"]
    np.testing.assert_array_equal(loaded.predict_proba(data.images),
                                  classifier.predict_proba(data.images))
    with pytest.raises(FileExistsError):
        save_classifier(classifier, tmp_path / "clf")
    save_classifier(classifier, tmp_path / "clf", overwrite=True)


def _truncate(directory):
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_weight_byte(directory):
    path = directory / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))


def _edit_config(directory, **fields):
    path = directory / "config.json"
    document = json.loads(path.read_text())
    document["config"].update(fields)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "cannot be read as safetensors"),
    (_flip_a_weight_byte, "checksum mismatch"),
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda d: (d / "config.json").unlink(), "config.json is missing"),
    (lambda d: (d / "config.json").write_text('{"format": "hiljax-rew'), "not valid JSON"),
    (lambda d: _edit_config(d, latent_dim=32), "does not fit its config.json"),
    (lambda d: _edit_config(d, dropout_rate=2.0), "dropout_rate"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 7), "cannot be read"),
])
def test_a_damaged_classifier_raises_a_clear_error(trained, tmp_path, damage, message):
    classifier, _ = trained
    directory = save_classifier(classifier, tmp_path / "clf")
    damage(directory)
    with pytest.raises(ClassifierFileError, match=message):
        load_classifier(directory)


def test_loading_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ClassifierFileError, match="no saved classifier"):
        load_classifier(tmp_path / "nothing")
    assert issubclass(ClassifierFileError, ValueError)


# ---------------------------------------------------------------------------------------------
# The env side and the plots.


class SceneEnv(gym.Env):
    """Two cameras; from step `success_at` on, the scene shows the success square."""

    def __init__(self, data: ClassifierData, success_at: int = 3):
        self.negative = observation_of(data, 0)
        self.positive = observation_of(data, int(np.flatnonzero(data.labels == 1)[0]))
        self.success_at = success_at
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self.negative, {}

    def step(self, action):
        self.t += 1
        obs = self.positive if self.t >= self.success_at else self.negative
        return obs, 0.0, False, False, {}


def test_reward_wrapper_ends_the_episode_when_the_classifier_fires(data, trained):
    classifier, _ = trained
    env = RewardWrapper(SceneEnv(data), classifier, threshold=classifier.threshold)
    env.reset()
    for step in range(1, 10):
        _, reward, terminated, _, info = env.step(None)
        assert 0.0 <= info["reward_classifier_probability"] <= 1.0
        if terminated:
            break
    assert step == 3 and reward == 1.0 and info["next.success"]
    assert info["reward_classifier_probability"] >= classifier.threshold


def test_every_plot_returns_a_figure_and_writes_a_png(data, trained, tmp_path):
    classifier, history = trained
    probabilities = classifier.predict_proba(data.images)
    figures = {
        "curves": plots.plot_training_curves(history, tmp_path / "curves.png"),
        "confusion": plots.plot_confusion_matrix(data.labels, probabilities >= 0.5,
                                                 path=tmp_path / "confusion.png"),
        "pr": plots.plot_precision_recall(probabilities, data.labels, 0.95,
                                          threshold=classifier.threshold,
                                          path=tmp_path / "pr.png"),
        "grid": plots.plot_frame_grid(data.images, data.labels, probabilities, max_frames=10,
                                      columns=5, path=tmp_path / "grid.png"),
        "episodes": plots.plot_episode_probabilities(probabilities, data.labels,
                                                     data.episode_index, classifier.threshold,
                                                     max_episodes=3,
                                                     path=tmp_path / "episodes.png"),
    }
    for name, figure in figures.items():
        assert isinstance(figure, Figure), name
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.pick_threshold is pick_threshold
