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
    """hiljax episode payload -> TransitionBatch (observation arrays are views, not copies)."""
    decoded = codec.decode(payload, max_bytes=max_bytes)
    _require(decoded.meta.get("schema") == EPISODE_SCHEMA,
             f"not an episode payload (schema {decoded.meta.get('schema')!r})")
    frames, steps = decoded.arrays.get("frames"), decoded.arrays.get("steps")
    _require(isinstance(frames, dict) and frames and isinstance(steps, dict),
             "episode payload lacks frames or steps")
    missing = [name for name in STEP_FIELD_NAMES if name not in steps]
    _require(not missing, f"episode payload lacks {missing}")
    length = len(steps["rewards"])
    _require(length >= 1, "empty episode")
    for key, array in frames.items():
        _require(isinstance(array, np.ndarray) and array.shape[:1] == (length + 1,),
                 f"frames[{key!r}] must hold {length + 1} observations")
    for name in STEP_FIELD_NAMES:
        _require(steps[name].shape[:1] == (length,), f"steps[{name!r}] must hold {length} rows")
    return TransitionBatch(observations={k: v[:-1] for k, v in frames.items()},
                           next_observations={k: v[1:] for k, v in frames.items()},
                           steps=with_defaults(steps, length, "episode payload"))


def _lerobot_observation(stacked: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LeRobot (T, C, H, W) float images in [0, 1] -> (T, H, W, C) uint8; states float32."""
    out = {}
    for key, array in stacked.items():
        if key.startswith("observation.image"):
            _require(array.ndim == 4, f"{key}: expected (T, C, H, W) images, got {array.shape}")
            pixels = np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
            out[key] = np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))
        else:
            out[key] = array.astype(np.float32)
    return out


def lerobot_episode(payload: bytes | memoryview, max_bytes: int | None = None) -> TransitionBatch:
    """A stock LeRobot actor's episode (torch.save list of transition dicts) -> TransitionBatch."""
    stacked = lerobot_codec.stack_transitions(
        lerobot_codec.decode_transitions(payload, max_bytes=max_bytes)
    )
    length = len(stacked["reward"])
    steps = {}
    for field in STEP_FIELDS:
        value = _lookup(stacked, field.lerobot_key)
        if value is not None:
            steps[field.name] = np.asarray(value).reshape((length, -1) if field.per_action
                                                          else (length,))
    return TransitionBatch(observations=_lerobot_observation(stacked["state"]),
                           next_observations=_lerobot_observation(stacked["next_state"]),
                           steps=with_defaults(steps, length, "LeRobot transitions"))


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
    out = {}
    for key, value in stats.items():
        _require(isinstance(key, str) and isinstance(value, (int, float, bool, np.number)),
                 f"statistic {key!r} is not a number")
        out[key] = float(value)
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
