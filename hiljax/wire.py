"""The one seam between the wire and hiljax: payload bytes <-> episodes, statistics, parameters.

numpy only. Three payload kinds travel between actor and learner (`transport/` moves the bytes):

- **episodes** (actor -> learner). hiljax's codec carries each observation ONCE: `frames` holds
  the T + 1 observations of T steps (frame t is the observation of step t, frame t + 1 its next
  observation), uint8 images and all. A stock LeRobot actor's torch.save list of transitions
  (float32 C,H,W images in [0, 1], batch dim 1) is converted to the same `TransitionBatch`.
- **interactions** (actor -> learner): a flat dict of episode statistics with LeRobot's key names.
- **parameters** (learner -> actor): nested dicts of arrays (the Flax parameter trees) + version,
  with the digest of the frozen backbone that is NOT sent (each side builds it; `tree_digest`).

The per-step fields of an episode are hiljax.transition's schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hiljax.transition import STEP_FIELD_NAMES, STEP_FIELDS, TransitionBatch, with_defaults
from transport import codec, lerobot_codec
from transport.errors import PayloadError
from transport.interface import CODEC_HILJAX, CODEC_LEROBOT

EPISODE_SCHEMA = "hiljax.episode/1"
INTERACTIONS_SCHEMA = "hiljax.interactions/1"
PARAMETERS_SCHEMA = "hiljax.parameters/1"
# Episode statistics are a handful of named numbers (LeRobot sends ~5); more is not statistics.
MAX_STATISTICS = 256
MAX_STATISTIC_NAME = 200


# ---------------------------------------------------------------------------------------------
# Episodes.


def encode_episode(frames: Mapping[str, np.ndarray], steps: Mapping[str, np.ndarray], *,
                   sender: str = "", seq: int = 0) -> bytes:
    """frames: {key: (T + 1, ...)}; steps: {field: (T, ...)} for every hiljax.transition field."""
    return codec.encode({"frames": dict(frames), "steps": dict(steps)}, sender=sender, seq=seq,
                        meta={"schema": EPISODE_SCHEMA})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PayloadError(message)


def decode_episode(payload: bytes | memoryview, max_bytes: int | None = None) -> TransitionBatch:
    """hiljax episode payload -> TransitionBatch (observation arrays are views, not copies).
    PayloadError, and nothing else, for any payload that is not an episode."""
    decoded = codec.decode(payload, max_bytes=max_bytes)
    _require(decoded.meta.get("schema") == EPISODE_SCHEMA,
             f"not an episode payload (schema {decoded.meta.get('schema')!r:.80})")
    frames = _flat_arrays(decoded.arrays.get("frames"), "frames")
    steps = _flat_arrays(decoded.arrays.get("steps"), "steps")
    _require(bool(frames), "episode payload holds no frames")
    missing = [name for name in STEP_FIELD_NAMES if name not in steps]
    _require(not missing, f"episode payload lacks {missing}")
    length = _length_of(steps["rewards"], "steps['rewards']")
    for key, array in frames.items():
        _require(array.shape[:1] == (length + 1,), f"frames[{key!r}] must hold {length + 1} "
                                                   f"observations, has shape {array.shape}")
    for name in STEP_FIELD_NAMES:
        _require(steps[name].shape[:1] == (length,),
                 f"steps[{name!r}] must hold {length} rows, has shape {steps[name].shape}")
    return TransitionBatch(observations={k: v[:-1] for k, v in frames.items()},
                           next_observations={k: v[1:] for k, v in frames.items()},
                           steps=_stored_dtypes(steps, length, "episode payload"))


def _flat_arrays(tree, name: str) -> dict[str, np.ndarray]:
    """`tree` if it is a dict of arrays (one level: a nested dict is a wrong structure)."""
    _require(isinstance(tree, dict), f"episode payload: {name} must be a dict of arrays, "
                                     f"got {type(tree).__name__}")
    for key, value in tree.items():
        _require(isinstance(value, np.ndarray),
                 f"{name}[{key!r}] must be an array, got {type(value).__name__}")
    return tree


def _length_of(rewards, name: str) -> int:
    """T, from a 1-D rewards array of at least one transition."""
    _require(isinstance(rewards, np.ndarray) and rewards.ndim == 1,
             f"{name} must be a 1-D array, got "
             + (f"shape {rewards.shape}" if isinstance(rewards, np.ndarray)
                else type(rewards).__name__))
    _require(len(rewards) >= 1, "empty episode")
    return len(rewards)


def _lerobot_observation(stacked, name: str) -> dict[str, np.ndarray]:
    """LeRobot (T, C, H, W) float images in [0, 1] -> (T, H, W, C) uint8; states float32."""
    _require(isinstance(stacked, dict), f"LeRobot transitions: {name} must be a dict of "
                                        f"tensors, got {type(stacked).__name__}")
    out = {}
    for key, array in stacked.items():
        _require(isinstance(array, np.ndarray) and array.dtype.kind in "biuf",
                 f"{name}[{key!r}] must be a numeric tensor")
        if key.startswith("observation.image"):
            # (floats only: LeRobot's pixels are in [0, 1], and widening uint8 would cost 4x)
            _require(array.ndim == 4 and array.dtype.kind == "f",
                     f"{name}[{key!r}]: expected (T, C, H, W) float images, got "
                     f"{array.shape} {array.dtype}")
            out[key] = _pixels(array)
        else:
            out[key] = array.astype(np.float32)
    return out


def _pixels(images: np.ndarray) -> np.ndarray:
    """(T, C, H, W) floats in [0, 1] -> (T, H, W, C) uint8, with one float32 temporary."""
    scaled = images.astype(np.float32)
    np.multiply(scaled, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)  # (NaN stays NaN: the cast below makes it 0)
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(scaled.astype(np.uint8).transpose(0, 2, 3, 1))


def lerobot_episode(payload: bytes | memoryview, max_bytes: int | None = None) -> TransitionBatch:
    """A stock LeRobot actor's episode (torch.save list of transition dicts) -> TransitionBatch.
    PayloadError, and nothing else, for any payload that is not such an episode."""
    stacked = lerobot_codec.stack_transitions(
        lerobot_codec.decode_transitions(payload, max_bytes=max_bytes)
    )
    length = _length_of(stacked.get("reward"), "LeRobot transitions' reward")
    steps = {}
    for field in STEP_FIELDS:
        value = _lookup(stacked, field.lerobot_key)
        if value is None:
            continue
        _require(isinstance(value, np.ndarray) and value.shape[:1] == (length,)
                 and (field.per_action or value.size == length),
                 f"LeRobot transitions' {field.lerobot_key} must hold one "
                 f"{'row' if field.per_action else 'number'} per transition")
        steps[field.name] = value.reshape((length, -1) if field.per_action else (length,))
    return TransitionBatch(observations=_lerobot_observation(stacked["state"], "state"),
                           next_observations=_lerobot_observation(stacked["next_state"],
                                                                  "next_state"),
                           steps=_stored_dtypes(steps, length, "LeRobot transitions"))


def _stored_dtypes(steps: dict, length: int, where: str) -> dict:
    """with_defaults, quietly: a float64 beyond float32's range becomes Inf here, which the
    learner's validation then refuses (or clips) naming the field."""
    with np.errstate(over="ignore", invalid="ignore"):
        return with_defaults(steps, length, where)


def _lookup(tree: Mapping, dotted: str):
    """tree["a"]["b"] for "a.b"; None where a level is missing."""
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or tree.get(part) is None:
            return None
        tree = tree[part]
    return tree


def decode_transitions(codec_name: str, payload: bytes | memoryview,
                       max_bytes: int | None = None) -> TransitionBatch:
    if codec_name == CODEC_HILJAX:
        return decode_episode(payload, max_bytes)
    if codec_name == CODEC_LEROBOT:
        return lerobot_episode(payload, max_bytes)
    raise PayloadError(f"unknown codec {codec_name!r}")


# ---------------------------------------------------------------------------------------------
# Episode statistics.


def encode_interactions(stats: Mapping[str, float], *, sender: str = "", seq: int = 0) -> bytes:
    clean = {str(k): float(v) for k, v in stats.items()}
    return codec.encode({}, sender=sender, seq=seq,
                        meta={"schema": INTERACTIONS_SCHEMA, "stats": clean})


def decode_interactions(codec_name: str, payload: bytes | memoryview) -> dict[str, float]:
    if codec_name == CODEC_HILJAX:
        meta = codec.decode(payload).meta
        _require(meta.get("schema") == INTERACTIONS_SCHEMA, "not an interactions payload")
        stats = meta.get("stats")
    elif codec_name == CODEC_LEROBOT:
        stats = lerobot_codec.decode_interactions(payload)
    else:
        raise PayloadError(f"unknown codec {codec_name!r}")
    _require(isinstance(stats, dict), "interactions payload holds no statistics")
    _require(len(stats) <= MAX_STATISTICS, f"{len(stats)} statistics, more than {MAX_STATISTICS}")
    out = {}
    for key, value in stats.items():
        _require(isinstance(key, str) and len(key) <= MAX_STATISTIC_NAME
                 and isinstance(value, (int, float, bool, np.number)),
                 f"statistic {key!r:.80} is not a number with a short name")
        try:
            out[key] = float(value)
        except (OverflowError, TypeError, ValueError):  # a 400-digit int, a complex...
            raise PayloadError(f"statistic {key!r} is not a float") from None
    return out


# ---------------------------------------------------------------------------------------------
# Parameters.


def encode_parameters(trees: Mapping[str, Mapping], version: int,
                      meta: Mapping | None = None) -> bytes:
    """{name: nested dict of arrays} (e.g. actor parameters) + small metadata -> payload."""
    arrays = {name: _to_numpy(tree) for name, tree in trees.items()}
    return codec.encode(arrays, meta={**(meta or {}), "schema": PARAMETERS_SCHEMA,
                                      "version": int(version)})


@dataclass
class Parameters:
    version: int
    trees: dict  # {name: nested dict of numpy arrays}
    meta: dict


def decode_parameters(payload: bytes | memoryview) -> Parameters:
    """Arrays are copies: they outlive the payload bytes."""
    decoded = codec.decode(payload, copy=True)
    _require(decoded.meta.get("schema") == PARAMETERS_SCHEMA, "not a parameters payload")
    return Parameters(int(decoded.meta["version"]), decoded.arrays, dict(decoded.meta))


def tree_digest(tree: Mapping) -> str:
    """sha256 over a nested dict of arrays (keys sorted, so both sides agree on the order): a
    learner and an actor that build the same frozen backbone get the same digest."""
    digest = hashlib.sha256()
    for path, leaf in _sorted_leaves(tree):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{path}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _sorted_leaves(tree, prefix: str = ""):
    if isinstance(tree, Mapping):
        for key in sorted(tree, key=str):
            yield from _sorted_leaves(tree[key], f"{prefix}/{key}")
    else:
        yield prefix, tree


def _to_numpy(tree):
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
