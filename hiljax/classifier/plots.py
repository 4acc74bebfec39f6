"""Figures for the classifier notebook: training curves, confusion matrix, precision/recall vs
threshold, and a grid of frames with labels and predicted probabilities.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot state, so it works with
the Agg backend, in threads, and in a notebook, which displays a returned Figure) and saves a
PNG when given `path`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .analysis import confusion_matrix, pick_threshold, precision_recall_curve
from .training import TrainingHistory

__all__ = ["pick_threshold", "plot_confusion_matrix", "plot_episode_probabilities",
           "plot_frame_grid", "plot_precision_recall", "plot_training_curves"]

PathLike = str | os.PathLike


def _finish(figure: Figure, path: PathLike | None) -> Figure:
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def plot_training_curves(history: TrainingHistory, path: PathLike | None = None) -> Figure:
    """Loss and accuracy over gradient steps, train (balanced batches) and validation."""
    figure = Figure(figsize=(10, 3.6))
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(history.steps, history.train.get(metric, []), label="train (balanced batches)")
        if history.validation:
            ax.plot(history.steps, history.validation[metric], label="validation")
            ax.axvline(history.best_step, color="grey", linestyle=":", label="kept (best)")
        ax.set_xlabel("gradient step")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(figure, path)


def plot_confusion_matrix(labels, predictions, num_classes: int = 2,
                          class_names: Sequence[str] | None = None,
                          path: PathLike | None = None) -> Figure:
    """Counts of (true class, predicted class); `predictions` are class indices."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    names = list(class_names or (["failure", "success"] if num_classes == 2
                                 else [str(c) for c in range(num_classes)]))
    figure = Figure(figsize=(1.2 * num_classes + 2.5, 1.2 * num_classes + 2))
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(column, row, str(count), ha="center", va="center", color=color)
    ax.set_xticks(range(num_classes), names)
    ax.set_yticks(range(num_classes), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix")
    return _finish(figure, path)


def plot_precision_recall(probabilities, labels, min_precision: float = 0.95,
                          threshold: float | None = None, path: PathLike | None = None) -> Figure:
    """Precision and recall of `P >= t` against t, with the threshold `pick_threshold` picks
    (and `threshold`, e.g. the deployed one, when given)."""
    thresholds, precision, recall = precision_recall_curve(probabilities, labels)
    picked = pick_threshold(probabilities, labels, min_precision)
    figure = Figure(figsize=(6, 3.8))
    ax = figure.subplots()
    ax.step(thresholds, precision, where="post", label="precision")
    ax.step(thresholds, recall, where="post", label="recall")
    ax.axhline(min_precision, color="grey", linestyle=":", label=f"target {min_precision:.2f}")
    if picked is not None:
        ax.axvline(picked, color="green", linestyle="--", label=f"picked {picked:.3f}")
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle="-.", label=f"deployed {threshold:.3f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("threshold on P(success)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _finish(figure, path)


def plot_episode_probabilities(probabilities, labels, episode_index, threshold: float,
                               max_episodes: int = 6, path: PathLike | None = None) -> Figure:
    """P(success) frame by frame along whole episodes, the frames labelled success shaded and
    the threshold drawn: where the classifier fires in an episode, and how early or late."""
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    episode_index = np.asarray(episode_index).reshape(-1)
    episodes = np.unique(episode_index)[:max_episodes]
    figure = Figure(figsize=(10, 1.5 + 1.1 * len(episodes)))
    axes = np.atleast_1d(figure.subplots(len(episodes), 1, sharex=True, squeeze=False)[:, 0])
    for ax, episode in zip(axes, episodes):
        rows = np.flatnonzero(episode_index == episode)
        steps = np.arange(len(rows))
        ax.fill_between(steps, 0, 1, where=labels[rows] >= 1, step="mid", color="tab:green",
                        alpha=0.15, label="labelled success")
        ax.plot(steps, probabilities[rows], marker=".", label="P(success)")
        ax.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.2f}")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(f"ep {int(episode)}")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("frame in episode")
    return _finish(figure, path)


def plot_frame_grid(images: Mapping[str, np.ndarray] | np.ndarray, labels,
                    probabilities=None, max_frames: int = 16, columns: int = 8,
                    success_class: int = 1, path: PathLike | None = None) -> Figure:
    """Frames with their label (and P(success) when given); one row per camera per frame row.

    images: (N, H, W, 3) uint8, or key -> such arrays (the cameras of each frame stacked).
    Titles are green when the prediction (P >= 0.5) agrees with `label == success_class`,
    red when not.
    """
    cameras = images if isinstance(images, Mapping) else {"": images}
    labels = np.asarray(labels).reshape(-1)
    count = min(max_frames, len(labels))
    columns = max(1, min(columns, count))
    rows = -(-count // columns) * len(cameras)
    figure = Figure(figsize=(1.6 * columns, 1.75 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).reshape(rows, columns)
    for ax in axes.flat:
        ax.axis("off")
    for index in range(count):
        block, column = divmod(index, columns)
        for offset, frames in enumerate(cameras.values()):
            ax = axes[block * len(cameras) + offset, column]
            ax.imshow(frames[index])
            if offset == 0:
                ax.set_title(_frame_title(labels[index], probabilities, index), fontsize=8,
                             color=_title_color(labels[index], probabilities, index,
                                                success_class))
    return _finish(figure, path)


def _frame_title(label, probabilities, index: int) -> str:
    if probabilities is None:
        return f"label {int(label)}"
    return f"label {int(label)}  p={float(probabilities[index]):.2f}"


def _title_color(label, probabilities, index: int, success_class: int) -> str:
    if probabilities is None:
        return "black"
    agrees = (float(probabilities[index]) >= 0.5) == (int(label) == success_class)
    return "green" if agrees else "red"
