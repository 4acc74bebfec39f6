"""Training data for the reward classifier: plain arrays, labels, and the episode-wise split.

    data = ClassifierData(images={"observation.images.front": (N, H, W, 3) uint8, ...},
                          labels=(N,) int, episode_index=(N,) int)
    data = from_dataset("path/to/lerobot_dataset")     # labels from next.reward

Labels follow LeRobot's convention: a frame is positive when its `next.reward` is 1 (binary:
label 1 where next.reward >= 1, else 0); a multi-class classifier takes the reward value as
the class. The validation split is BY EPISODE: consecutive frames of one episode are nearly
identical, so a frame-wise split would measure memory, not generalisation.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from hiljax.config import is_image_key

log = logging.getLogger(__name__)

REWARD_KEY = "next.reward"
EPISODE_KEY = "episode_index"


@dataclasses.dataclass(frozen=True)
class ClassifierData:
    """Frames of one or more cameras with a class label and the episode each came from."""

    images: Mapping[str, np.ndarray]  # key -> (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    episode_index: np.ndarray  # (N,) int64

    def __post_init__(self):
        labels = np.asarray(self.labels)
        episodes = np.asarray(self.episode_index)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be (N,) integers, got {labels.shape} {labels.dtype}")
        if episodes.shape != labels.shape or not np.issubdtype(episodes.dtype, np.integer):
            raise ValueError(f"episode_index must be (N,) integers like labels {labels.shape}, "
                             f"got {episodes.shape} {episodes.dtype}")
        if not self.images:
            raise ValueError("ClassifierData needs at least one camera")
        for key, frames in self.images.items():
            if not is_image_key(key):
                raise ValueError(f"image key {key!r} is not an observation.images.* key")
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"images[{key!r}] must be (N, H, W, 3) uint8, got "
                                 f"{frames.shape} {frames.dtype}")
            if len(frames) != len(labels):
                raise ValueError(f"images[{key!r}] has {len(frames)} frames, labels {len(labels)}")
        object.__setattr__(self, "images", dict(self.images))
        object.__setattr__(self, "labels", labels.astype(np.int64))
        object.__setattr__(self, "episode_index", episodes.astype(np.int64))

    @property
    def num_frames(self) -> int:
        return len(self.labels)

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.images))

    @property
    def image_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {k: tuple(int(d) for d in v.shape[1:]) for k, v in self.images.items()}

    def subset(self, indices: np.ndarray) -> ClassifierData:
        return ClassifierData({k: v[indices] for k, v in self.images.items()},
                              self.labels[indices], self.episode_index[indices])

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)

    @classmethod
    def from_dataset(cls, path: str | os.PathLike, num_classes: int = 2,
                     image_keys: Sequence[str] = ()) -> ClassifierData:
        return from_dataset(path, num_classes, image_keys)


def labels_from_rewards(rewards: np.ndarray, num_classes: int = 2) -> np.ndarray:
    """Binary: 1 where reward >= 1 else 0. Multi-class: the reward itself, as an integer class."""
    rewards = np.asarray(rewards, np.float64).reshape(-1)
    if num_classes == 2:
        return (rewards >= 1.0).astype(np.int64)
    classes = np.rint(rewards)
    if not np.allclose(classes, rewards) or classes.min(initial=0) < 0 \
            or classes.max(initial=0) >= num_classes:
        bad = sorted(set(rewards[(classes != rewards) | (classes < 0) | (classes >= num_classes)]))
        raise ValueError(f"{num_classes}-class labels need integer rewards in "
                         f"[0, {num_classes}); found {bad[:8]}")
    return classes.astype(np.int64)


def from_dataset(path: str | os.PathLike, num_classes: int = 2,
                 image_keys: Sequence[str] = ()) -> ClassifierData:
    """A recorded LeRobot dataset's frames and `next.reward` labels (hiljax.datasets reader).

    image_keys: the cameras to load; empty = every observation.images.* key of the dataset.
    Raises hiljax.datasets.DatasetError (a ValueError) when the dataset cannot be read.
    """
    from hiljax.datasets import DatasetError, read_dataset  # the reader is optional here

    dataset = read_dataset(path)
    keys = tuple(image_keys) or tuple(sorted(dataset.image_keys))
    missing = [k for k in keys if k not in dataset.image_keys]
    if not keys or missing:
        raise DatasetError(f"{path}: camera(s) {missing or '(none)'} not in the dataset; it has "
                           f"{sorted(dataset.image_keys)}")
    if REWARD_KEY not in dataset.features:
        raise DatasetError(f"{path}: no {REWARD_KEY!r} column to label frames with")
    data = ClassifierData(
        images={k: dataset.column(k) for k in keys},
        labels=labels_from_rewards(dataset.column(REWARD_KEY), num_classes),
        episode_index=np.asarray(dataset.column(EPISODE_KEY)).reshape(-1).astype(np.int64),
    )
    log.info("dataset %s: %d episodes, %d frames of %s, frames per class %s", path,
             dataset.num_episodes, data.num_frames, list(keys),
             data.class_counts(num_classes).tolist())
    return data


def split_episodes(episode_index: np.ndarray, labels: np.ndarray, validation_fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train_episodes, validation_episodes): disjoint sorted episode ids.

    Stratified by the episode's highest label (episodes that reach success vs those that do
    not), so both sides see both kinds when there are at least two of a kind. Each group gives
    round(fraction * size) episodes to validation; the training side always keeps one.
    """
    episodes = np.unique(episode_index)
    if validation_fraction <= 0 or len(episodes) < 2:
        return episodes, episodes[:0]
    top_label = np.full(len(episodes), np.iinfo(np.int64).min)
    np.maximum.at(top_label, np.searchsorted(episodes, episode_index), labels)
    validation = []
    for group_label in np.unique(top_label):
        group = episodes[top_label == group_label]
        count = round(validation_fraction * len(group))
        if len(group) >= 2:
            count = min(max(count, 1), len(group) - 1)
        validation.extend(rng.permutation(group)[:count].tolist())
    validation = np.array(sorted(validation), dtype=np.int64)
    if len(validation) == len(episodes):  # every group had one episode: keep one for training
        validation = validation[1:]
    train = np.setdiff1d(episodes, validation)
    return train, validation


def split_by_episode(data: ClassifierData, validation_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train_frame_indices, validation_frame_indices); no episode sits on both sides."""
    rng = np.random.default_rng(seed)
    _, validation = split_episodes(data.episode_index, data.labels, validation_fraction, rng)
    in_validation = np.isin(data.episode_index, validation)
    return np.flatnonzero(~in_validation), np.flatnonzero(in_validation)
