"""The replay buffer on the learner's device (`policy.storage_device = "device"`): sampling then
moves no data from the host, only the sample's indices.

The host `ReplayBuffer` stays the one source of truth (inserts, continuity, checkpoints: saved
and restored exactly as without a mirror). `DeviceReplay` keeps a copy of its arrays on the
device: each `sample` first applies what inserts changed since the last one (a jitted scatter
into donated buffers, padded to a power of two so it compiles a handful of times), then gathers
the batch on the device at indices the host drew - under the buffer's lock, so the copy and the
indices agree. Per round the host sends (utd x batch) int32 indices three times: ~6 KB at batch
256, where the host path sends every observation (0.3 MB for states, 100 MB for two 128x128
cameras).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hiljax.storage.buffer import ReplayBuffer
from hiljax.transition import STEP_FIELDS


class DeviceReplay:
    """A device mirror of `buffer` with the sampling interface `sample_mixed` uses."""

    def __init__(self, buffer: ReplayBuffer, device=None):
        self.buffer, self.device = buffer, device
        state = buffer.mirror_state()
        self._final_rows = len(next(iter(state["final"].values())))
        state["final"] = _at_least_one_row(state["final"])
        self._arrays = jax.device_put(state, device)

    # What sample_mixed reads.
    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def observation_spec(self):
        return self.buffer.observation_spec

    @property
    def action_dim(self) -> int:
        return self.buffer.action_dim

    @property
    def nbytes(self) -> int:
        return int(sum(x.nbytes for x in jax.tree.leaves(self._arrays)))

    def sample(self, batch_size: int, rng: np.random.Generator,
               num_batches: int | None = None) -> dict:
        changes, (idx, ring_next, ref, in_final) = self.buffer.changes_and_draw(
            batch_size, rng, num_batches, self._final_rows)
        if changes is not None:
            self._apply(changes)
        indices = jax.device_put(
            (idx.astype(np.int32), ring_next.astype(np.int32),
             np.where(in_final, ref, 0).astype(np.int32), in_final), self.device)
        return _gather(self._arrays, *indices)

    def _apply(self, changes: dict) -> None:
        slots = _padded(changes["slots"])
        ring = {"obs": _pad_rows(changes["obs"], changes["slots"]),
                "columns": _pad_rows(changes["columns"], changes["slots"]),
                "next_ref": _pad_rows(changes["next_ref"], changes["slots"])}
        self._arrays = _scatter_ring(self._arrays, jax.device_put(slots, self.device),
                                     jax.device_put(ring, self.device))
        if changes["final_rows"] is None:  # the host's final store grew: send it whole
            self._final_rows = len(next(iter(changes["final"].values())))
            final = jax.device_put(_at_least_one_row(changes["final"]), self.device)
            self._arrays = {**self._arrays, "final": final}
        elif len(changes["final_rows"]):
            rows = changes["final_rows"]
            self._arrays = _scatter_final(
                self._arrays, jax.device_put(_padded(rows), self.device),
                jax.device_put(_pad_rows(changes["final"], rows), self.device))


def _at_least_one_row(final: dict) -> dict:
    """An empty final store gets one unused row: a gather needs something to point at (no
    sampled transition reads it while the host store is empty)."""
    return {k: v if len(v) else np.zeros((1, *v.shape[1:]), v.dtype) for k, v in final.items()}


def _padded(index: np.ndarray) -> np.ndarray:
    """Indices padded to a power of two by repeating the last (a repeated write of the same
    value is harmless), so the scatter compiles once per size class, not per episode length."""
    size = 1 << max(0, int(len(index) - 1).bit_length())
    return np.concatenate([index, np.repeat(index[-1:], size - len(index))]).astype(np.int32)


def _pad_rows(tree, index: np.ndarray):
    size = len(_padded(index))
    return jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)]),
                        tree)


@functools.partial(jax.jit, donate_argnums=0)
def _scatter_ring(arrays: dict, slots, rows: dict) -> dict:
    return {**arrays,
            "obs": {k: v.at[slots].set(rows["obs"][k]) for k, v in arrays["obs"].items()},
            "columns": {k: v.at[slots].set(rows["columns"][k])
                        for k, v in arrays["columns"].items()},
            "next_ref": arrays["next_ref"].at[slots].set(rows["next_ref"])}


@functools.partial(jax.jit, donate_argnums=0)
def _scatter_final(arrays: dict, rows, values: dict) -> dict:
    return {**arrays, "final": {k: v.at[rows].set(values[k]) for k, v in arrays["final"].items()}}


@jax.jit
def _gather(arrays: dict, idx, ring_next, ref, in_final) -> dict:
    """The host buffer's `sample`, on the device: flags as float32 (the losses multiply)."""
    def next_frame(key):
        ring, final = arrays["obs"][key][ring_next], arrays["final"][key][ref]
        mask = in_final.reshape(in_final.shape + (1,) * (ring.ndim - in_final.ndim))
        return jnp.where(mask, final, ring)

    steps = {f.name: arrays["columns"][f.name][idx].astype(jnp.float32) for f in STEP_FIELDS}
    return {"observations": {k: v[idx] for k, v in arrays["obs"].items()},
            "next_observations": {k: next_frame(k) for k in arrays["obs"]}, **steps}
