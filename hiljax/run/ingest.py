"""Episodes on their way into the learner's replay buffers: refused when they hold NaN / Inf,
pixels swapped for frozen-backbone features when the policy caches them, recorded datasets
loaded into the offline buffer."""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from hiljax.agents.sac import backbone_features
from hiljax.config import LearnerConfig, SACConfig
from hiljax.storage.buffer import ReplayBuffer
from hiljax.transition import TransitionBatch
from transport.errors import PayloadError

log = logging.getLogger(__name__)


def refuse_non_finite(batch: TransitionBatch) -> None:
    """PayloadError naming the first field holding NaN or Inf: one such transition would turn
    every critic parameter into NaN at the next update (and the checkpoint after it)."""
    fields = {**{f"observations[{k!r}]": v for k, v in batch.observations.items()},
              **{f"next_observations[{k!r}]": v for k, v in batch.next_observations.items()},
              **batch.steps}
    for name, values in fields.items():
        values = np.asarray(values)
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            raise PayloadError(f"{name} holds NaN or Inf")


def buffer_batch(policy: SACConfig, params: dict, batch: TransitionBatch) -> TransitionBatch:
    """`batch` as the buffers store it: pixels replaced by frozen-backbone features when the
    policy caches them (in place).

    An episode's next observations are its observations shifted by one, so the backbone
    runs once per distinct frame (T + 1, not 2T)."""
    keys = policy.image_keys
    if not policy.cache_backbone_features:
        return batch
    obs, nxt = batch.observations, batch.next_observations
    if all(np.array_equal(obs[k][1:], nxt[k][:-1]) for k in keys):
        frames = {k: np.concatenate([obs[k], nxt[k][-1:]]) for k in keys}
        features = _features(policy, params, frames)
        obs.update({k: v[:-1] for k, v in features.items()})
        nxt.update({k: v[1:] for k, v in features.items()})
    else:
        obs.update(_features(policy, params, {k: obs[k] for k in keys}))
        nxt.update(_features(policy, params, {k: nxt[k] for k in keys}))
    return batch


def _features(policy: SACConfig, params: dict, images: dict[str, np.ndarray],
              chunk: int = 32) -> dict:
    """Backbone features in fixed-size chunks (the last one padded): one compilation, not one
    per episode length."""
    count = len(next(iter(images.values())))
    parts = []
    for start in range(0, count, chunk):
        piece = {k: v[start:start + chunk] for k, v in images.items()}
        short = chunk - len(next(iter(piece.values())))
        if short:
            piece = {k: np.concatenate([v, np.repeat(v[-1:], short, axis=0)])
                     for k, v in piece.items()}
        out = backbone_features(policy, params, piece)
        parts.append({k: np.asarray(v)[:chunk - short] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in images}


def fill_offline_buffer(buffer: ReplayBuffer, config: LearnerConfig, params: dict) -> int:
    """Put the transitions of `config.dataset` (a recorded LeRobot dataset) into `buffer`,
    one episode at a time (cached backbone features computed once per frame, camera frames
    decoded per episode); returns how many."""
    from hiljax.datasets import read_dataset
    from hiljax.datasets.transitions import check_transition_features, episode_transitions

    policy = config.policy
    dataset = read_dataset(config.dataset)
    keys = list(policy.input_features)
    check_transition_features(dataset, keys, policy.action_dim)
    if dataset.num_frames > buffer.capacity:
        log.warning("the dataset has %d frames, the offline buffer holds %d: the oldest are "
                    "overwritten", dataset.num_frames, buffer.capacity)
    interventions = 0
    for episode in tqdm(episode_transitions(dataset, keys, policy.action_dim),
                        total=dataset.num_episodes, desc="offline dataset", unit="episode",
                        disable=dataset.num_episodes < 20):
        batch = TransitionBatch.from_kwargs(episode, where=f"{dataset.root} episode")
        buffer.add_batch(**buffer_batch(policy, params, batch).as_kwargs())
        interventions += int(episode["is_intervention"].sum())
    log.info("offline buffer: %d transitions from %s (%d episodes, %d interventions)",
             dataset.num_frames, dataset.root, dataset.num_episodes, interventions)
    return dataset.num_frames
