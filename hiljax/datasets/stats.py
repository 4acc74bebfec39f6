"""Feature statistics in LeRobot's layout: min, max, mean, std, count per feature.

Vectors get per-dimension statistics; images per-channel ones of pixels scaled to [0, 1],
shaped (3, 1, 1) as LeRobot stores them. Episode statistics combine into dataset statistics
exactly (count-weighted means and the parallel-variance formula).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

STAT_NAMES = ("min", "max", "mean", "std", "count")


def feature_stats(values: np.ndarray, is_image: bool) -> dict[str, np.ndarray]:
    """Statistics of one episode's column: (T, ...) numeric, or (T, H, W, 3) uint8 frames."""
    if is_image:
        pixels = values.reshape(-1, 3).astype(np.float64) / 255.0
        stats = {k: v.reshape(3, 1, 1) for k, v in _stats(pixels).items()}
    else:
        stats = _stats(values.reshape(len(values), -1).astype(np.float64))
    stats["count"] = np.array([len(values)])  # frames, not pixels
    return stats


def _stats(rows: np.ndarray) -> dict[str, np.ndarray]:
    return {"min": rows.min(axis=0), "max": rows.max(axis=0), "mean": rows.mean(axis=0),
            "std": rows.std(axis=0)}


def aggregate(episodes: list[Mapping[str, Mapping[str, np.ndarray]]]) -> dict[str, dict]:
    """Combine per-episode statistics {feature: {stat: array}} into dataset statistics."""
    keys = episodes[0].keys() if episodes else ()
    return {key: _combine([ep[key] for ep in episodes if key in ep]) for key in keys}


def _combine(parts: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    counts = np.array([float(np.asarray(p["count"]).reshape(-1)[0]) for p in parts])
    shape = np.shape(parts[0]["mean"])
    weights = (counts / counts.sum()).reshape((-1,) + (1,) * len(shape))
    means = np.stack([np.asarray(p["mean"]) for p in parts])
    stds = np.stack([np.asarray(p["std"]) for p in parts])
    mean = (weights * means).sum(axis=0)
    variance = (weights * (stds**2 + (means - mean) ** 2)).sum(axis=0)
    return {"min": np.min([p["min"] for p in parts], axis=0),
            "max": np.max([p["max"] for p in parts], axis=0),
            "mean": mean, "std": np.sqrt(variance), "count": np.array([int(counts.sum())])}
