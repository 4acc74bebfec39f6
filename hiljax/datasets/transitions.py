"""A recorded dataset as RL transitions (s, a, r, s', done) for the offline replay buffer.

Frame t of an episode holds the observation before its action and the step's outcome
(`next.reward`, `next.done`), as LeRobot records them; s' is frame t + 1's observation. The
last frame of an episode has no successor in the format, so its s' is its own observation
(LeRobot's learner does the same); that costs nothing when the episode ended in a terminal
state and is a small bias after a time limit (marked by hiljax's `next.truncated` column).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from hiljax.transition import STEP_FIELDS, with_defaults

from .format import ACTION, DatasetError
from .reader import LeRobotDataset

# Columns a dataset must have to become transitions; the others default (hiljax.transition).
REQUIRED_COLUMNS = tuple(f.dataset_key for f in STEP_FIELDS if f.default is None)


def check_transition_features(dataset: LeRobotDataset, observation_keys: Sequence[str],
                              action_dim: int | None = None) -> None:
    """Fail early (from the metadata alone) when the dataset cannot feed this policy."""
    _require_keys(dataset, [*REQUIRED_COLUMNS, *observation_keys])
    width = int(np.prod(dataset.features[ACTION]["shape"]))
    if action_dim is not None and width != action_dim:
        raise DatasetError(f"{dataset.root}: actions have {width} dims, the policy expects "
                           f"{action_dim}")


def episode_transitions(dataset: LeRobotDataset, observation_keys: Sequence[str],
                        action_dim: int | None = None) -> Iterator[dict]:
    """One dict per episode, {observations, next_observations, and every field of
    hiljax.transition}: the keyword arguments of ReplayBuffer.add_batch. Camera frames are
    decoded one episode at a time."""
    check_transition_features(dataset, observation_keys, action_dim)
    steps = with_defaults(_step_columns(dataset), dataset.num_frames, str(dataset.root))
    # LeRobot's next.done also marks time limits; a terminal is done without truncation.
    steps["dones"] = steps["dones"] & ~steps["truncateds"]
    for position, (_, start, end) in enumerate(dataset.episode_bounds()):
        observations = dataset.episode(position, observation_keys)
        # s' is the next frame; the last frame is its own successor (see the module docstring).
        successor = np.minimum(np.arange(1, end - start + 1), end - start - 1)
        yield {"observations": observations,
               "next_observations": {k: v[successor] for k, v in observations.items()},
               **{name: values[start:end] for name, values in steps.items()}}


def dataset_transitions(dataset: LeRobotDataset, observation_keys: Sequence[str],
                        action_dim: int | None = None) -> dict:
    """Every episode's transitions in one dict (see episode_transitions)."""
    parts = list(episode_transitions(dataset, observation_keys, action_dim))
    if not parts:
        raise DatasetError(f"{dataset.root}: the dataset holds no episodes")
    out = {}
    for name, first in parts[0].items():
        if isinstance(first, dict):
            out[name] = {k: np.concatenate([p[name][k] for p in parts]) for k in first}
        else:
            out[name] = np.concatenate([p[name] for p in parts])
    return out


def _step_columns(dataset: LeRobotDataset) -> dict[str, np.ndarray]:
    """The transition fields the dataset has, by field name (absent ones are left out)."""
    columns = {}
    for field in STEP_FIELDS:
        if field.dataset_key in dataset.features:
            column = dataset.column(field.dataset_key).astype(field.dtype)
            shape = (dataset.num_frames, -1) if field.per_action else (dataset.num_frames,)
            columns[field.name] = column.reshape(shape)
    return columns


def _require_keys(dataset: LeRobotDataset, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in dataset.features]
    if missing:
        raise DatasetError(f"{dataset.root}: missing features {missing}; the dataset has "
                           f"{list(dataset.keys)}")
