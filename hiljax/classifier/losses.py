"""The classifier's loss and metrics: pure jnp functions of (logits, labels).

Binary (num_classes == 2, one logit): sigmoid cross-entropy, label 1 = success. Multi-class:
softmax cross-entropy over num_classes logits with integer labels.

Metrics use the model's own decision (P >= 0.5 for a binary classifier, the argmax otherwise);
the deployment threshold is a separate choice (hiljax.classifier.analysis.pick_threshold).
- binary: precision and recall of the success class (label 1).
- multi-class: MACRO precision and recall, averaged over the classes that occur in the labels
  or the predictions of the batch (a class absent from both has no defined precision/recall).
A ratio with an empty denominator counts as 0 (no predicted positives -> precision 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .model import predicted_classes


def classification_loss(logits: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Mean cross-entropy. logits (B, 1) binary or (B, num_classes); labels (B,) integers."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits (B, outputs) and labels (B,), got {logits.shape} and "
                         f"{labels.shape}")
    if num_classes == 2:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits[:, 0],
                                                           labels.astype(logits.dtype)))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def _ratio(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    return jnp.where(denominator > 0, numerator / jnp.maximum(denominator, 1), 0.0)


def confusion_counts(predictions: jax.Array, labels: jax.Array, num_classes: int
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per class (num_classes,): true positives, false positives, false negatives."""
    classes = jnp.arange(num_classes)
    predicted = predictions[:, None] == classes  # (B, num_classes)
    actual = labels[:, None] == classes
    tp = jnp.sum(predicted & actual, axis=0)
    fp = jnp.sum(predicted & ~actual, axis=0)
    fn = jnp.sum(~predicted & actual, axis=0)
    return tp, fp, fn


def classification_metrics(logits: jax.Array, labels: jax.Array, num_classes: int
                           ) -> dict[str, jax.Array]:
    """loss, accuracy, precision, recall (see the module docstring for the definitions)."""
    predictions = predicted_classes(logits, num_classes)
    tp, fp, fn = confusion_counts(predictions, labels, num_classes)
    precision = _ratio(tp.astype(jnp.float32), (tp + fp).astype(jnp.float32))
    recall = _ratio(tp.astype(jnp.float32), (tp + fn).astype(jnp.float32))
    if num_classes == 2:
        precision, recall = precision[1], recall[1]
    else:
        present = ((tp + fp + fn) > 0).astype(jnp.float32)
        count = jnp.maximum(jnp.sum(present), 1.0)
        precision = jnp.sum(precision * present) / count
        recall = jnp.sum(recall * present) / count
    return {
        "loss": classification_loss(logits, labels, num_classes),
        "accuracy": jnp.mean((predictions == labels).astype(jnp.float32)),
        "precision": precision,
        "recall": recall,
    }
