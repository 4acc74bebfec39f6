"""Replay buffers for the learner: numpy only, uint8 frames stored once, safe across threads.

Storage. Slot ``i`` of a fixed ring holds the observation, action, reward and flags of one
transition. Its next observation is, by default, the observation of slot ``i + 1``: each frame is
stored once. Where that is wrong - at a terminal, at a truncation, for the newest transition, or
where the next insert did not continue the episode (another actor's transition, a masked subset)
- the true next observation goes to a side store of "final frames" and ``next_ref[i]`` points at
it. Continuity is checked, never assumed: the previous transition did not end AND the new
observation equals the previous next observation, per key. Equality alone makes the ring's copy
exact, so interleaved actors cost memory (one extra frame per break), never correctness.

The side store grows (doubling) on demand up to ``capacity`` rows and recycles rows through a free
list when their slot is overwritten; with 100-step episodes it holds ~1 % extra frames.

One lock guards every mutation and the gather in ``sample`` (the gather copies, so a returned
batch is never torn by a concurrent insert; LeRobot #2309). ``save`` holds it for the whole write.

Files are pickle-free: a sequence of ``.npy`` records (a JSON header, the arrays, a JSON trailer
with CRC-32 checksums) written to a temporary file and renamed into place. A truncated, corrupt or
inconsistent file raises ``BufferFormatError``; it never loads as an empty buffer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

import numpy as np

from hiljax.storage.array_file import ArrayFileError, read_array_file, write_array_file
from hiljax.transition import STEP_FIELDS, step_field, step_shape

FILE_FORMAT = "hiljax.replay_buffer"
FILE_VERSION = 1
_IN_RING = -1  # next_ref value: the next observation is the observation of the following slot
_FLAG_KINDS = "biuf"  # dtypes accepted for 0/1 flags and numeric scalars
# The per-transition columns are hiljax.transition's STEP_FIELDS (names, dtypes, defaults).

ObservationSpec = Mapping[str, tuple[tuple[int, ...], "np.dtype | str"]]


class BufferFormatError(ArrayFileError):
    """A saved replay buffer is truncated, corrupt or does not match what was expected."""


def _normalise_spec(spec: ObservationSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if not spec:
        raise ValueError("observation_spec must name at least one observation key")
    out = {}
    for key, entry in spec.items():
        try:
            shape, dtype = entry
            shape, dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"observation_spec[{key!r}] must be (shape, dtype), "
                             f"got {entry!r}") from exc
        if dtype.hasobject or any(d < 0 for d in shape):
            raise ValueError(f"observation_spec[{key!r}]: unsupported shape/dtype {shape} {dtype}")
        out[str(key)] = (shape, dtype)
    return out


def _check_numeric(value, name: str, shape: tuple[int, ...], *, flag: bool = False) -> np.ndarray:
    """Shape/dtype check for actions, rewards and flags; returns float32 (or bool for flags)."""
    arr = np.asarray(value)
    if arr.shape != shape or arr.dtype.kind not in _FLAG_KINDS:
        raise ValueError(f"{name}: expected shape {shape} of numbers, got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    if flag:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: expected 0/1 flags, got values {np.unique(arr)[:5]}")
        return arr.astype(bool)
    return arr.astype(np.float32)


class ReplayBuffer:
    """Fixed-capacity ring of transitions; sampling is uniform with replacement."""

    def __init__(self, capacity: int, observation_spec: ObservationSpec, action_dim: int):
        if int(capacity) < 1 or int(action_dim) < 0:
            raise ValueError(f"capacity must be >= 1 and action_dim >= 0, "
                             f"got {capacity}, {action_dim}")
        self.capacity = int(capacity)
        self.observation_spec = _normalise_spec(observation_spec)
        self.action_dim = int(action_dim)
        self._lock = threading.Lock()
        cap, spec = self.capacity, self.observation_spec
        self._obs = {k: np.zeros((cap, *shape), dtype) for k, (shape, dtype) in spec.items()}
        self._columns = {f.name: np.zeros(step_shape(f, (cap,), self.action_dim), f.dtype)
                         for f in STEP_FIELDS}
        self._next_ref = np.full(cap, _IN_RING, np.int64)  # else: row of the next obs in _final
        self._final = {k: np.zeros((0, *shape), dtype) for k, (shape, dtype) in spec.items()}
        self._final_free: list[int] = []  # unused rows of _final
        self._ptr = 0  # slot the next transition goes to
        self._size = 0
        self._num_inserted = 0
        self._last_ended = True  # the newest transition was done/truncated (or there is none)
        # Slots and final rows written since a device mirror last looked (None: no mirror).
        self._changed: tuple[list, list] | None = None

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"ReplayBuffer(len={self._size}, capacity={self.capacity}, "
                f"keys={list(self.observation_spec)}, action_dim={self.action_dim})")

    @property
    def num_inserted(self) -> int:
        """Transitions ever inserted (including those since overwritten)."""
        return self._num_inserted

    @property
    def num_final_frames(self) -> int:
        """Observations held outside the ring (episode ends, breaks, the newest next obs)."""
        return int(self._final_rows - len(self._final_free))

    @property
    def _final_rows(self) -> int:
        return next(iter(self._final.values())).shape[0]

    @property
    def nbytes(self) -> int:
        arrays = [*self._obs.values(), *self._final.values(), *self._columns.values(),
                  self._next_ref]
        return int(sum(a.nbytes for a in arrays))

    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    # ----------------------------------------------------------------- insertion
    def add(self, observation: Mapping[str, np.ndarray], action, reward: float,
            next_observation: Mapping[str, np.ndarray], done: bool, truncated: bool = False,
            **complementary) -> None:
        """One transition; `complementary` by the singular names of hiljax.transition's fields
        (is_intervention=..., discrete_penalty=...), defaults where absent."""
        values = {"action": action, "reward": reward, "done": done, "truncated": truncated,
                  **complementary}
        obs, next_obs, columns = self._validate((), observation, next_observation,
                                                _by_field(values, singular=True))
        self._insert(*({k: v[None] for k, v in d.items()} for d in (obs, next_obs, columns)),
                     continues=np.zeros(1, bool))

    def add_batch(self, observations: Mapping[str, np.ndarray], actions, rewards,
                  next_observations: Mapping[str, np.ndarray], dones, truncateds=None,
                  **complementary) -> None:
        """Insert T transitions in order; the same result as T calls to ``add``, vectorised.
        `complementary`: (T,) arrays by field name (is_intervention=..., ...), defaults where
        absent or None."""
        if np.ndim(rewards) != 1:
            raise ValueError(f"rewards: expected shape (T,), got shape {np.shape(rewards)}")
        t = len(rewards)
        values = {"actions": actions, "rewards": rewards, "dones": dones, "truncateds": truncateds,
                  **complementary}
        obs, next_obs, columns = self._validate((t,), observations, next_observations,
                                                _by_field(values, singular=False, length=t))
        if t == 0:
            return
        # continues[k]: row k's observation is row k-1's next observation (row 0 is checked
        # against the buffer's newest transition under the lock).
        continues = np.zeros(t, bool)
        continues[1:] = ~(columns["dones"][:-1] | columns["truncateds"][:-1])
        for key in obs if t > 1 else ():
            same = (obs[key][1:] == next_obs[key][:-1]).all(axis=tuple(range(1, obs[key].ndim)))
            continues[1:] &= same
        self._insert(obs, next_obs, columns, continues=continues)

    def _validate(self, lead: tuple[int, ...], observation, next_observation,
                  values: dict) -> tuple[dict, dict, dict]:
        """Check everything against the spec; `lead` is () for add and (T,) for add_batch."""
        plural = "s" if lead else ""
        obs = self._check_observation(observation, "observation" + plural, lead)
        next_obs = self._check_observation(next_observation, "next_observation" + plural, lead)
        columns = {}
        for field in STEP_FIELDS:
            name = field.name if lead else field.singular
            columns[field.name] = _check_numeric(values[field.name], name,
                                                 step_shape(field, lead, self.action_dim),
                                                 flag=field.is_flag)
        return obs, next_obs, columns

    def _check_observation(self, observation, name: str, lead: tuple[int, ...]) -> dict:
        if not isinstance(observation, Mapping):
            raise ValueError(f"{name}: expected a mapping of arrays, "
                             f"got {type(observation).__name__}")
        missing = [k for k in self.observation_spec if k not in observation]
        extra = [k for k in observation if k not in self.observation_spec]
        if missing or extra:
            raise ValueError(f"{name}: keys do not match observation_spec "
                             f"(missing {missing}, unexpected {extra})")
        out = {}
        for key, (shape, dtype) in self.observation_spec.items():
            arr = np.asarray(observation[key])
            if arr.shape != lead + shape or arr.dtype != dtype:
                raise ValueError(f"{name}[{key!r}]: expected shape {lead + shape} dtype {dtype}, "
                                 f"got shape {arr.shape} dtype {arr.dtype}")
            out[key] = arr
        return out

    def _continues_newest(self, obs: Mapping[str, np.ndarray]) -> bool:
        if self._size == 0 or self._last_ended:
            return False
        ref = self._next_ref[(self._ptr - 1) % self.capacity]
        return all(np.array_equal(self._final[k][ref], obs[k][0]) for k in obs)

    def _insert(self, obs: dict, next_obs: dict, columns: dict, *, continues: np.ndarray) -> None:
        total, cap = continues.shape[0], self.capacity
        first = max(0, total - cap)  # rows before `first` would be overwritten within this call
        n = total - first
        with self._lock:
            continues = continues[first:].copy()
            if first == 0:
                continues[0] = self._continues_newest(obs)
            slots = (self._ptr + np.arange(n)) % cap
            self._release_final(slots)  # overwritten slots give their final frames back
            if continues[0] and n < cap:
                # The newest transition's next obs is now the ring's copy at self._ptr.
                self._release_final(np.array([(self._ptr - 1) % cap]))
            for key, arr in obs.items():
                self._obs[key][slots] = arr[first:]
            for name, arr in columns.items():
                self._columns[name][slots] = arr[first:]
            needs_final = np.ones(n, bool)
            needs_final[:-1] = ~continues[1:]
            rows = self._take_final_rows(int(needs_final.sum()))
            self._next_ref[slots[needs_final]] = rows
            for key, arr in next_obs.items():
                self._final[key][rows] = arr[first:][needs_final]
            if self._changed is not None:
                self._changed[0].append(slots)
                self._changed[1].append(rows)
            self._ptr = (self._ptr + n) % cap
            self._size = min(cap, self._size + n)
            self._num_inserted += total
            self._last_ended = bool(columns["dones"][-1] or columns["truncateds"][-1])

    def _release_final(self, slots: np.ndarray) -> None:
        refs = self._next_ref[slots]
        self._final_free.extend(refs[refs != _IN_RING].tolist())
        self._next_ref[slots] = _IN_RING

    def _take_final_rows(self, m: int) -> np.ndarray:
        if m > len(self._final_free):
            old = self._final_rows
            needed = old - len(self._final_free) + m
            assert needed <= self.capacity, "final-frame store cannot exceed one row per slot"
            new = min(self.capacity, max(needed, 2 * old, 4))
            for key, arr in self._final.items():
                grown = np.zeros((new, *arr.shape[1:]), arr.dtype)
                grown[:old] = arr
                self._final[key] = grown
            self._final_free.extend(range(new - 1, old - 1, -1))  # pop() yields low rows first
        rows = [self._final_free.pop() for _ in range(m)]
        return np.asarray(rows, np.int64)

    # ----------------------------------------------------------------- sampling
    def sample(self, batch_size: int, rng: np.random.Generator,
               num_batches: int | None = None) -> dict:
        """Uniform with replacement; with ``num_batches=K`` every array gets a leading axis K."""
        if batch_size < 1 or (num_batches is not None and num_batches < 1):
            raise ValueError(f"batch_size and num_batches must be >= 1, "
                             f"got {batch_size}, {num_batches}")
        with self._lock:
            idx, ring_next, ref, in_final = self._draw(batch_size, rng, num_batches)
            next_obs = {}
            for key, frames in self._obs.items():
                out = frames[ring_next]  # rows whose next obs lives in _final are overwritten
                out[in_final] = self._final[key][ref[in_final]]
                next_obs[key] = out
            # Flags come out as float32: the losses multiply by them.
            steps = {f.name: self._columns[f.name][idx].astype(np.float32, copy=False)
                     for f in STEP_FIELDS}
            return {"observations": {key: frames[idx] for key, frames in self._obs.items()},
                    "next_observations": next_obs, **steps}

    def _draw(self, batch_size: int, rng: np.random.Generator, num_batches: int | None):
        """Indices of a uniform sample (under the lock): slot, ring successor, final-store row
        (-1 where the successor is in the ring) and where the next observation is final."""
        if batch_size < 1 or (num_batches is not None and num_batches < 1):
            raise ValueError(f"batch_size and num_batches must be >= 1, "
                             f"got {batch_size}, {num_batches}")
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer (no transitions yet)")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        idx = rng.integers(0, self._size, size=shape)
        ref = self._next_ref[idx]
        return idx, (idx + 1) % self.capacity, ref, ref != _IN_RING

    # ----------------------------------------------------------------- a device mirror
    def mirror_state(self) -> dict:
        """Everything a device copy needs, from now on tracking what inserts change
        (`changes_and_draw`). Arrays are copies, consistent with each other."""
        with self._lock:
            self._changed = ([], [])
            return {"obs": {k: v.copy() for k, v in self._obs.items()},
                    "columns": {k: v.copy() for k, v in self._columns.items()},
                    "next_ref": self._next_ref.copy(),
                    "final": {k: v.copy() for k, v in self._final.items()}}

    def changes_and_draw(self, batch_size: int, rng: np.random.Generator,
                         num_batches: int | None, mirror_final_rows: int
                         ) -> tuple[dict | None, tuple]:
        """(what changed since the last call, sample indices), atomically, so that a mirror
        that applies the changes and then gathers at the indices sees exactly this buffer.
        Changes: the written slots with their rows, and the written final-store rows with
        theirs - or the whole final store when it grew past the mirror's `mirror_final_rows`."""
        with self._lock:
            changes = None
            if self._changed is not None and self._changed[0]:
                slots = np.unique(np.concatenate(self._changed[0]))
                rows = np.unique(np.concatenate(self._changed[1])).astype(np.int64)
                grown = self._final_rows != mirror_final_rows
                changes = {"slots": slots,
                           "obs": {k: v[slots] for k, v in self._obs.items()},
                           "columns": {k: v[slots] for k, v in self._columns.items()},
                           "next_ref": self._next_ref[slots],
                           "final_rows": None if grown else rows,
                           "final": {k: v.copy() if grown else v[rows]
                                     for k, v in self._final.items()}}
                self._changed = ([], [])
            return changes, self._draw(batch_size, rng, num_batches)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename). Holds the lock: a consistent snapshot."""
        with self._lock:
            n = self._size
            refs = self._next_ref[:n]
            has_final = refs != _IN_RING
            compact = np.full(n, _IN_RING, np.int64)
            compact[has_final] = np.arange(int(has_final.sum()))
            arrays = {f"obs/{k}": a[:n] for k, a in self._obs.items()}
            arrays.update({f"final/{k}": a[refs[has_final]] for k, a in self._final.items()})
            arrays.update({name: column[:n] for name, column in self._columns.items()})
            arrays["next_ref"] = compact
            meta = {
                "capacity": self.capacity, "action_dim": self.action_dim,
                "observation_spec": {k: [list(shape), dtype.str]
                                     for k, (shape, dtype) in self.observation_spec.items()},
                "ptr": self._ptr, "size": n, "num_inserted": self._num_inserted,
                "last_ended": self._last_ended,
            }
            write_array_file(path, FILE_FORMAT, FILE_VERSION, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, *, observation_spec: ObservationSpec | None = None,
             action_dim: int | None = None) -> ReplayBuffer:
        """Read a file written by ``save``; optionally require a spec / action_dim."""
        try:
            meta, arrays = read_array_file(path, FILE_FORMAT, FILE_VERSION)
        except BufferFormatError:
            raise
        except ArrayFileError as exc:
            raise BufferFormatError(str(exc)) from None
        try:
            spec = {k: (tuple(s), d) for k, (s, d) in meta["observation_spec"].items()}
            buffer = cls(meta["capacity"], spec, meta["action_dim"])
            buffer._restore(meta, arrays)
        except BufferFormatError as exc:
            raise BufferFormatError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BufferFormatError(f"{path}: inconsistent replay buffer file: {exc!r}") from exc
        wanted = None if observation_spec is None else _normalise_spec(observation_spec)
        if wanted is not None and wanted != buffer.observation_spec:
            raise BufferFormatError(f"{path}: observation_spec {buffer.observation_spec} does not "
                                    f"match the expected {wanted}")
        if action_dim is not None and int(action_dim) != buffer.action_dim:
            raise BufferFormatError(f"{path}: action_dim {buffer.action_dim} does not match "
                                    f"the expected {action_dim}")
        return buffer

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        n, ptr, cap = int(meta["size"]), int(meta["ptr"]), self.capacity
        if not (0 <= n <= cap and (ptr == n if n < cap else 0 <= ptr < cap)):
            raise BufferFormatError(f"bad ring position size={n} ptr={ptr} capacity={cap}")
        refs = arrays.get("next_ref", np.zeros(0))
        has_final = refs != _IN_RING
        m = int(has_final.sum())
        expected = {"next_ref": ((n,), np.dtype(np.int64))}
        for name, column in self._columns.items():
            expected[name] = ((n, *column.shape[1:]), column.dtype)
        for key, (shape, dtype) in self.observation_spec.items():
            expected[f"obs/{key}"] = ((n, *shape), dtype)
            expected[f"final/{key}"] = ((m, *shape), dtype)
        got = {name: (a.shape, a.dtype) for name, a in arrays.items()}
        if got != expected:
            raise BufferFormatError(f"arrays do not match the header: expected {expected}, "
                                    f"got {got}")
        if not np.array_equal(np.sort(refs[has_final]), np.arange(m)) or (refs < _IN_RING).any():
            raise BufferFormatError("next_ref is not a valid map into the final-frame store")
        ended = arrays["dones"] | arrays["truncateds"]
        newest = (ptr - 1) % cap
        successor_missing = (np.arange(n) + 1) % cap >= n
        if n and (((ended | successor_missing) & ~has_final).any() or not has_final[newest]):
            raise BufferFormatError("a transition that ends an episode has no stored next "
                                    "observation")
        for key in self.observation_spec:
            self._obs[key][:n] = arrays[f"obs/{key}"]
        for name, column in self._columns.items():
            column[:n] = arrays[name]
        rows = self._take_final_rows(m)
        for key in self.observation_spec:
            self._final[key][rows] = arrays[f"final/{key}"]
        self._next_ref[:n] = np.where(has_final, rows[np.maximum(refs, 0)] if m else 0, _IN_RING)
        self._ptr, self._size = ptr, n
        self._num_inserted = int(meta["num_inserted"])
        self._last_ended = bool(meta["last_ended"])


def _by_field(values: Mapping, *, singular: bool, length: int | None = None) -> dict:
    """{field name: value} for every step field: given by name (or singular name), else the
    field's default (a scalar for `add`, (length,) for `add_batch`). Unknown names are errors."""
    out = {}
    for key, value in values.items():
        try:
            field = step_field(key)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        expected = field.singular if singular else field.name
        if key != expected:
            raise ValueError(f"unexpected keyword {key!r} (use {expected!r})")
        if value is not None:
            out[field.name] = value
    for field in STEP_FIELDS:
        if field.name not in out:
            if field.default is None:
                raise ValueError(f"{field.name} is required")
            out[field.name] = (field.default if length is None
                               else np.full(length, field.default, field.dtype))
    return out


def sample_mixed(online, offline, batch_size: int,
                 rng: np.random.Generator, online_ratio: float = 0.5,
                 num_batches: int | None = None) -> dict:
    """round(batch_size * online_ratio) rows from ``online``, the rest from ``offline``: two
    ReplayBuffers, or anything with their sampling interface (a device mirror).

    All rows come from ``online`` when ``offline`` is None or empty. Rows are concatenated along
    the batch axis (online first), not shuffled.
    """
    if not 0.0 <= online_ratio <= 1.0:
        raise ValueError(f"online_ratio must be in [0, 1], got {online_ratio}")
    if offline is not None and (online.observation_spec, online.action_dim) != (
            offline.observation_spec, offline.action_dim):
        raise ValueError("online and offline buffers have different observation specs "
                         "or action_dim")
    if offline is None or len(offline) == 0:
        return online.sample(batch_size, rng, num_batches)
    n_online = int(round(batch_size * online_ratio))
    if n_online == batch_size:
        return online.sample(batch_size, rng, num_batches)
    if n_online == 0:
        return offline.sample(batch_size, rng, num_batches)
    first = online.sample(n_online, rng, num_batches)
    second = offline.sample(batch_size - n_online, rng, num_batches)
    axis = 0 if num_batches is None else 1

    def concat(a, b):
        if isinstance(a, dict):
            return {k: concat(a[k], b[k]) for k in a}
        # numpy arrays, or device arrays from a mirror (hiljax.agents.device_buffer): each
        # array names its own namespace (the array API), so this module stays numpy-only.
        xp = a.__array_namespace__() if hasattr(a, "__array_namespace__") else np
        return xp.concatenate([a, b], axis=axis)

    return concat(first, second)
