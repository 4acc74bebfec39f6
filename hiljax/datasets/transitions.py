"""A recorded dataset as RL transitions (s, a, r, s', done) for the offline replay buffer.

Frame t of an episode holds the observation before its action and the step's outcome
(`next.reward`, `next.done`), as LeRobot records them; s' is frame t + 1's observation. The
last frame of an episode has no successor in the format, so its s' is its own observation
(LeRobot's learner does the same); that costs nothing when the episode ended in a terminal
state and is a small bias after a time limit (marked by hiljax's `next.truncated` column).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .format import ACTION, DISCRETE_PENALTY, DONE, IS_INTERVENTION, REWARD, TRUNCATED, DatasetError
from .reader import LeRobotDataset


def dataset_transitions(dataset: LeRobotDataset, observation_keys: Sequence[str],
                        action_dim: int | None = None) -> dict:
    """{observations, next_observations, actions, rewards, dones, truncateds, is_intervention,
    discrete_penalty}: the keyword arguments of ReplayBuffer.add_batch."""
    _require_keys(dataset, [ACTION, REWARD, DONE, *observation_keys])
    actions = dataset.column(ACTION).astype(np.float32)
    if actions.ndim == 1:
        actions = actions[:, None]
    if action_dim is not None and actions.shape[1] != action_dim:
        raise DatasetError(f"{dataset.root}: actions have {actions.shape[1]} dims, the policy "
                           f"expects {action_dim}")
    successor = _successor_rows(dataset)
    observations = {k: dataset.column(k) for k in observation_keys}
    ended = dataset.column(DONE).astype(bool)
    truncated = _optional(dataset, TRUNCATED, bool)
    return {
        "observations": observations,
        "next_observations": {k: v[successor] for k, v in observations.items()},
        "actions": actions,
        "rewards": dataset.column(REWARD).astype(np.float32),
        "dones": ended & ~truncated,
        "truncateds": truncated,
        "is_intervention": _optional(dataset, IS_INTERVENTION, bool),
        "discrete_penalty": _optional(dataset, DISCRETE_PENALTY, np.float32),
    }


def _successor_rows(dataset: LeRobotDataset) -> np.ndarray:
    """Row of each frame's next observation: the next frame, or itself at an episode's end."""
    successor = np.arange(1, dataset.num_frames + 1)
    for _, _, end in dataset.episode_bounds():
        successor[end - 1] = end - 1
    return successor


def _optional(dataset: LeRobotDataset, key: str, dtype) -> np.ndarray:
    if key not in dataset.features:
        return np.zeros(dataset.num_frames, dtype)
    return dataset.column(key).astype(dtype)


def _require_keys(dataset: LeRobotDataset, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in dataset.features]
    if missing:
        raise DatasetError(f"{dataset.root}: missing features {missing}; the dataset has "
                           f"{list(dataset.keys)}")
