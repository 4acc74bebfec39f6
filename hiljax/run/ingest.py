"""Episodes on their way into the learner's replay buffers: checked against the policy's
observation / action spec (and refused or clipped when they hold NaN / Inf), pixels swapped for
frozen-backbone features when the policy caches them, recorded datasets loaded into the offline
buffer."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from hiljax.agents.sac import backbone_features
from hiljax.config import LearnerConfig, SACConfig, is_image_key
from hiljax.storage.buffer import ReplayBuffer
from hiljax.transition import STEP_FIELDS, TransitionBatch, step_shape
from transport.errors import PayloadError

log = logging.getLogger(__name__)

NON_FINITE_MODES = ("refuse", "clip")
# dtype kinds a number may arrive in: bool, signed, unsigned, float. Everything else (object,
# str, bytes, void, complex, datetime) would need a cast that guesses.
_NUMERIC_KINDS = "biuf"


def validate_batch(batch: TransitionBatch, policy: SACConfig, non_finite: str = "refuse",
                   source: str = "") -> None:
    """Check a decoded episode against what the learner's buffers and networks take, before it
    touches them; PayloadError naming the field otherwise.

    Observation keys are exactly `policy.input_features`; every array is (T, *feature shape)
    with one T for all fields; images uint8 (T, H, W, 3) as the buffer stores them, other
    observations numeric (cast to float32 here, as the buffer stores them); actions
    (T, policy.action_dim) (the discrete gripper column included); per-step fields 1-D of
    length T. NaN / Inf: refused (`non_finite="refuse"`) or replaced in place by finite values
    (`"clip"`, logged with `source`, the client id)."""
    if non_finite not in NON_FINITE_MODES:
        raise ValueError(f"non_finite must be one of {NON_FINITE_MODES}, got {non_finite!r}")
    length = _episode_length(batch.steps)
    for name in ("observations", "next_observations"):
        tree = getattr(batch, name)
        _check_observation_keys(tree, name, policy)
        for key in list(tree):
            tree[key] = _checked_observation(tree[key], f"{name}[{key!r}]", length,
                                             policy.input_features[key], is_image_key(key))
    for field in STEP_FIELDS:
        batch.steps[field.name] = _checked_step(batch.steps, field, length, policy.action_dim)
    if non_finite == "clip":
        clip_non_finite(batch, source)
    else:
        refuse_non_finite(batch)


def _episode_length(steps) -> int:
    """T, from the rewards (1-D, at least one transition)."""
    rewards = steps.get("rewards") if isinstance(steps, Mapping) else None
    _require(isinstance(rewards, np.ndarray) and rewards.ndim == 1,
             f"rewards must be a 1-D array, got {_describe(rewards)}")
    _require(len(rewards) >= 1, "rewards: empty episode")
    return len(rewards)


def _check_observation_keys(tree, name: str, policy: SACConfig) -> None:
    _require(isinstance(tree, dict), f"{name} must be a dict of arrays, got {_describe(tree)}")
    expected = set(policy.input_features)
    missing, extra = sorted(expected - set(tree), key=str), sorted(set(tree) - expected, key=str)
    _require(not missing and not extra, f"{name}: keys are not the policy's input features "
                                        f"(missing {missing}, unexpected {extra})")


def _checked_observation(value, name: str, length: int, feature_shape: tuple[int, ...],
                         image: bool) -> np.ndarray:
    """The observation as the buffer stores it: uint8 pixels as sent, anything else float32."""
    expected = (length, *feature_shape)
    _require(isinstance(value, np.ndarray) and value.shape == expected,
             f"{name} must be an array of shape {expected}, got {_describe(value)}")
    if image:
        _require(value.dtype == np.uint8, f"{name}: images travel as uint8, got {value.dtype}")
        return value
    _require(value.dtype.kind in _NUMERIC_KINDS, f"{name}: dtype {value.dtype} is not numeric")
    # (float64 beyond float32's range becomes Inf here, and is then refused or clipped.)
    with np.errstate(over="ignore"):
        return value.astype(np.float32, copy=False)


def _checked_step(steps: Mapping, field, length: int, action_dim: int) -> np.ndarray:
    value = steps.get(field.name)
    expected = step_shape(field, (length,), action_dim)
    _require(isinstance(value, np.ndarray) and value.shape == expected,
             f"{field.name} must be an array of shape {expected}, got {_describe(value)}")
    _require(value.dtype.kind in _NUMERIC_KINDS, f"{field.name}: dtype {value.dtype} is not numeric")
    with np.errstate(over="ignore"):
        return value.astype(field.dtype, copy=False)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    return type(value).__name__


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PayloadError(message)


def _named_arrays(batch: TransitionBatch) -> dict[str, tuple[dict, str]]:
    """{printable name: (the dict holding it, its key)} for every array of `batch`."""
    return {**{f"observations[{k!r}]": (batch.observations, k) for k in batch.observations},
            **{f"next_observations[{k!r}]": (batch.next_observations, k)
               for k in batch.next_observations},
            **{name: (batch.steps, name) for name in batch.steps}}


def clip_non_finite(batch: TransitionBatch, source: str = "") -> None:
    """Replace NaN by 0 and +-Inf by the largest / smallest finite value of the same array (in
    place; decoded arrays may be read-only views, so changed ones are new arrays).

    Not the dtype's extremes: a reward of 3e38 would poison the critic as surely as Inf."""
    for name, (tree, key) in _named_arrays(batch).items():
        values = tree[key]
        if not np.issubdtype(values.dtype, np.floating):
            continue
        finite = np.isfinite(values)
        if finite.all():
            continue
        kept = values[finite]
        high, low = (kept.max(), kept.min()) if kept.size else (0.0, 0.0)
        tree[key] = np.nan_to_num(values, nan=0.0, posinf=high, neginf=low)
        log.warning("clipped %d non-finite values in %s from %s", int((~finite).sum()), name,
                    source or "an unnamed client")


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
