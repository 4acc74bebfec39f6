"""The one seam between the wire and hiljax: payload bytes <-> episodes, statistics, parameters.

numpy only. Three payload kinds travel between actor and learner (`transport/` moves the bytes):

- **episodes** (actor -> learner). hiljax's codec carries each observation ONCE: `frames` holds
  the T + 1 observations of T steps (frame t is the observation of step t, frame t + 1 its next
  observation), uint8 images and all. A stock LeRobot actor's torch.save list of transitions
  (float32 C,H,W images in [0, 1], batch dim 1) is converted to the same `TransitionBatch`.
- **interactions** (actor -> learner): a flat dict of episode statistics with LeRobot's key names.
- **parameters** (learner -> actor): nested dicts of arrays (the Flax parameter trees) + version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from transport import codec, lerobot_codec
from transport.errors import PayloadError
from transport.interface import CODEC_HILJAX, CODEC_LEROBOT

EPISODE_SCHEMA = "hiljax.episode/1"
INTERACTIONS_SCHEMA = "hiljax.interactions/1"
PARAMETERS_SCHEMA = "hiljax.parameters/1"
STEP_FIELDS = ("actions", "rewards", "dones", "truncateds", "is_intervention", "discrete_penalty")


@dataclass
class TransitionBatch:
    """T transitions, in the form `ReplayBuffer.add_batch(**batch.as_kwargs())` takes."""

    observations: dict[str, np.ndarray]  # (T, ...)
    next_observations: dict[str, np.ndarray]  # (T, ...)
    actions: np.ndarray  # (T, A) float32
    rewards: np.ndarray  # (T,) float32
    dones: np.ndarray  # (T,) bool: terminal
    truncateds: np.ndarray  # (T,) bool: time limit (bootstrapping continues)
    is_intervention: np.ndarray  # (T,) bool: the human's action was stored
    discrete_penalty: np.ndarray  # (T,) float32

    def __len__(self) -> int:
        return len(self.rewards)

    def as_kwargs(self) -> dict:
        return dict(observations=self.observations, next_observations=self.next_observations,
                    **{name: getattr(self, name) for name in STEP_FIELDS})

    def select(self, mask: np.ndarray) -> TransitionBatch:
        """The transitions where `mask` is true (e.g. interventions for the offline buffer)."""
        pick = lambda tree: {k: v[mask] for k, v in tree.items()}  # noqa: E731
        return TransitionBatch(pick(self.observations), pick(self.next_observations),
                               **{name: getattr(self, name)[mask] for name in STEP_FIELDS})


# ---------------------------------------------------------------------------------------------
# Episodes.


def encode_episode(frames: Mapping[str, np.ndarray], steps: Mapping[str, np.ndarray], *,
                   sender: str = "", seq: int = 0) -> bytes:
    """frames: {key: (T + 1, ...)}; steps: {field: (T, ...)} for every field of STEP_FIELDS."""
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
    missing = [name for name in STEP_FIELDS if name not in steps]
    _require(not missing, f"episode payload lacks {missing}")
    length = len(steps["rewards"])
    _require(length >= 1, "empty episode")
    for key, array in frames.items():
        _require(isinstance(array, np.ndarray) and array.shape[:1] == (length + 1,),
                 f"frames[{key!r}] must hold {length + 1} observations")
    for name in STEP_FIELDS:
        _require(steps[name].shape[:1] == (length,), f"steps[{name!r}] must hold {length} rows")
    return TransitionBatch(
        observations={k: v[:-1] for k, v in frames.items()},
        next_observations={k: v[1:] for k, v in frames.items()},
        actions=steps["actions"].astype(np.float32),
        rewards=steps["rewards"].astype(np.float32),
        dones=steps["dones"].astype(bool),
        truncateds=steps["truncateds"].astype(bool),
        is_intervention=steps["is_intervention"].astype(bool),
        discrete_penalty=steps["discrete_penalty"].astype(np.float32),
    )


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
    info = stacked.get("complementary_info") or {}
    length = len(stacked["reward"])
    zeros = np.zeros(length)
    return TransitionBatch(
        observations=_lerobot_observation(stacked["state"]),
        next_observations=_lerobot_observation(stacked["next_state"]),
        actions=stacked["action"].astype(np.float32).reshape(length, -1),
        rewards=stacked["reward"].astype(np.float32).reshape(length),
        dones=stacked["done"].astype(bool).reshape(length),
        truncateds=np.asarray(stacked.get("truncated", zeros)).astype(bool).reshape(length),
        is_intervention=np.asarray(info.get("is_intervention", zeros)).astype(bool).reshape(length),
        discrete_penalty=np.asarray(info.get("discrete_penalty", zeros),
                                    np.float32).reshape(length),
    )


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


def _to_numpy(tree):
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
