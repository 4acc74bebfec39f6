"""Numpy analysis of predicted probabilities: precision/recall per threshold, the threshold
rule, and the confusion matrix (the plots in hiljax.classifier.plots draw these).

The decision rule everywhere is `P(success) >= threshold` (as RewardWrapper applies it).
"""

from __future__ import annotations

import numpy as np


def _as_binary(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if probabilities.shape != labels.shape:
        raise ValueError(f"{probabilities.size} probabilities but {labels.size} labels")
    return probabilities, labels


def precision_recall_curve(probabilities, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall), thresholds ascending = the distinct probabilities.

    At threshold t the predicted positives are the frames with P >= t (never empty, since t
    is one of the probabilities). Recall is 0 when there are no positive labels.
    """
    probabilities, labels = _as_binary(probabilities, labels)
    thresholds = np.unique(probabilities)
    predicted = probabilities[None, :] >= thresholds[:, None]  # (T, N)
    true_positives = np.sum(predicted & labels[None, :], axis=1)
    precision = true_positives / np.maximum(np.sum(predicted, axis=1), 1)
    recall = true_positives / max(int(labels.sum()), 1)
    return thresholds, precision, recall


def pick_threshold(probabilities, labels, min_precision: float = 0.95) -> float | None:
    """The highest-recall threshold whose precision reaches `min_precision`, else None.

    Rule: among the distinct probabilities t with precision(P >= t) >= min_precision, take
    those of the highest recall, and of these the highest t (lowering t further at equal recall
    only adds negatives). Every threshold between that t and the next lower probability makes
    the same decisions on these frames; return the MIDPOINT of that gap, the widest margin on
    both sides (the highest t itself would sit right on a positive frame: 0.995 for a cleanly
    separated set, so slightly less confident successes at run time would be missed). None
    when no threshold reaches the target (or there are no frames): the caller decides what to
    do (training keeps the configured threshold).
    """
    thresholds, precision, recall = precision_recall_curve(probabilities, labels)
    good = np.flatnonzero(precision >= min_precision)
    if good.size == 0:
        return None
    best_recall = recall[good].max()
    highest = int(good[recall[good] == best_recall].max())
    below = float(thresholds[highest - 1]) if highest > 0 else 0.0
    return (below + float(thresholds[highest])) / 2.0


def confusion_matrix(labels, predictions, num_classes: int = 2) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def binary_scores(probabilities, labels, threshold: float) -> dict[str, float]:
    """accuracy, precision, recall of `P >= threshold` against boolean labels (empty ratio: 0)."""
    probabilities, labels = _as_binary(probabilities, labels)
    predicted = probabilities >= threshold
    true_positives = float(np.sum(predicted & labels))
    return {
        "accuracy": float(np.mean(predicted == labels)) if labels.size else 0.0,
        "precision": true_positives / max(int(predicted.sum()), 1),
        "recall": true_positives / max(int(labels.sum()), 1),
    }
