"""Save and restore the learner's whole state, so a resumed run continues exactly.

A checkpoint is a directory `checkpoints/step_<N>/` holding
    agent.arrays            params, target params, every optimiser state, log_alpha, step, key,
                            with the SACConfig (JSON) in its metadata
    buffer_<name>.arrays    each replay buffer (online, offline)
    learner.json            the learner's counters and its sampling RNG state
    COMPLETE                written last: a directory without it was cut off mid-write
and `checkpoints/LATEST` names the newest one. hiljax.run.checkpoint_dir makes a checkpoint
complete or absent even under SIGKILL (staging directory, fsync, one rename) and resumes from the
newest complete one whatever LATEST says. Every array file carries checksums
(hiljax.storage.array_file). A missing, truncated or foreign checkpoint raises CheckpointError; a
run never silently starts fresh from a broken one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hiljax.agents.sac import SACAgent
from hiljax.config import ConfigError, SACConfig, from_dict, to_dict
from hiljax.run.checkpoint_dir import (
    COMPLETE_MARKER,
    commit_checkpoint,
    is_checkpoints_root,
    latest_checkpoint,
)
from hiljax.storage.array_file import ArrayFileError, read_array_file, write_array_file
from hiljax.storage.buffer import ReplayBuffer
from hiljax.storage.files import write_json_atomic

log = logging.getLogger(__name__)

AGENT_FORMAT, AGENT_VERSION = "hiljax.sac_agent", 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored as written."""


@dataclass
class Checkpoint:
    agent: SACAgent
    buffers: dict[str, ReplayBuffer] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # learner counters, RNG state, anything JSON-able
    path: Path | None = None


# ---------------------------------------------------------------------------------------------
# Agent <-> named numpy arrays.


def _leaf_name(path) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/")


def _agent_template(config: SACConfig) -> SACAgent:
    """Shapes and tree structure of an agent for `config`, without computing anything. The
    weights file is not read: the checkpoint holds the backbone (the file may have moved)."""
    return SACAgent.abstract(config)


def agent_to_arrays(agent: SACAgent) -> dict[str, np.ndarray]:
    agent = agent.replace(key=jax.random.key_data(agent.key))
    leaves = jax.tree_util.tree_flatten_with_path(agent)[0]
    return {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}


def agent_from_arrays(config: SACConfig, arrays: dict[str, np.ndarray]) -> SACAgent:
    template = _agent_template(config)
    template = template.replace(key=jax.eval_shape(jax.random.key_data, template.key))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected = {_leaf_name(path): leaf for path, leaf in leaves}
    missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"agent arrays do not match the config: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    values = []
    for name, spec in expected.items():
        array = arrays[name]
        if array.shape != spec.shape or array.dtype != spec.dtype:
            raise CheckpointError(f"agent array {name}: {array.shape} {array.dtype}, expected "
                                  f"{spec.shape} {spec.dtype}")
        values.append(jnp.asarray(array))
    agent = jax.tree_util.tree_unflatten(treedef, values)
    return agent.replace(key=jax.random.wrap_key_data(agent.key))


# ---------------------------------------------------------------------------------------------
# Directories.


def save_checkpoint(checkpoints_dir: str | os.PathLike, agent: SACAgent, *,
                    buffers: dict[str, ReplayBuffer] | None = None, extra: dict | None = None,
                    keep: int | None = 3) -> Path:
    """Write a complete checkpoint for `agent.step`, mark it LATEST, keep the newest `keep`.
    Complete or absent whenever the process dies (hiljax.run.checkpoint_dir)."""
    step = int(agent.step)
    meta = {"config": to_dict(agent.config), "step": step}
    arrays = agent_to_arrays(agent)  # from the device before anything touches the disk

    def write_files(staging: Path) -> None:
        write_array_file(staging / "agent.arrays", AGENT_FORMAT, AGENT_VERSION, meta, arrays)
        for name, buffer in (buffers or {}).items():
            buffer.save(staging / f"buffer_{name}.arrays")
        write_json_atomic(staging / "learner.json", extra or {})

    final = commit_checkpoint(checkpoints_dir, step, write_files, keep)
    log.info("checkpoint saved: %s", final)
    return final


def load_checkpoint(path: str | os.PathLike, *, with_buffers: bool = True) -> Checkpoint:
    """Restore a checkpoint directory, or a checkpoints dir: its newest complete checkpoint.

    `with_buffers=False` restores the agent only (evaluation does not need the replay data)."""
    path = Path(path)
    if is_checkpoints_root(path):
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no complete checkpoint in {path}")
        path = found
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path}")
    if not (path / COMPLETE_MARKER).exists():
        raise CheckpointError(f"{path} is incomplete (no {COMPLETE_MARKER} marker): the save was "
                              "interrupted; use an older checkpoint")
    try:
        meta, arrays = read_array_file(path / "agent.arrays", AGENT_FORMAT, AGENT_VERSION)
        config = from_dict(SACConfig, meta["config"])
        agent = agent_from_arrays(config, arrays)
        buffers = {p.stem.removeprefix("buffer_"): ReplayBuffer.load(p)
                   for p in sorted(path.glob("buffer_*.arrays"))} if with_buffers else {}
        extra = json.loads((path / "learner.json").read_text())
    except (ArrayFileError, ConfigError, KeyError, ValueError, FileNotFoundError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"cannot restore checkpoint {path}: {exc}") from exc
    log.info("checkpoint restored: %s (step %d)", path, int(agent.step))
    return Checkpoint(agent=agent, buffers=buffers, extra=extra, path=path)


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-able state of a numpy Generator, for `extra`."""
    return rng.bit_generator.state


def rng_from_state(state: dict) -> np.random.Generator:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
