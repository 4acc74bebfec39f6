"""Read and write the payloads of a stock LeRobot actor/learner WITHOUT torch.

- transitions: torch.save(list of transition dicts), one archive per episode;
- interactions: pickle.dumps(dict of episode statistics);
- parameters: torch.save({"policy": state_dict, "discrete_critic": state_dict}).

Unpickling untrusted bytes runs code, so every pickle goes through `_AllowlistUnpickler`,
whose allowlist is no wider than torch.load(weights_only=True): the tensor rebuild functions,
the legacy storage types and OrderedDict, each mapped to a harmless stand-in defined here
(nothing from torch is imported or called). Interaction pickles get an empty allowlist.
Tensors come out as numpy arrays (views resolved: storage offset and strides, dtypes kept,
bfloat16 widened exactly to float32 since numpy has no bfloat16 of its own).
"""

import collections
import io
import pickle  # only through _AllowlistUnpickler below
import pickletools
from collections.abc import Mapping

import numpy as np

from transport.errors import PayloadError
from transport.torch_archive import is_torch_archive, read_archive, write_archive

# legacy storage class name -> numpy dtype of its raw little-endian bytes.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("u1"),
}
# Arrays rebuilt from one archive may not exceed this multiple of its size (expand()-style
# stride-0 views are legal, but a 1-element storage must not become a 100 GB array).
MAX_EXPANSION = 16
# A stock actor's episode has no stride-0 views; a tensor shared by two transitions (state t is
# next_state t - 1) may be rebuilt twice. 4 leaves room for that and little for an attacker.
TRANSITIONS_MAX_EXPANSION = 4
# The object graph (data.pkl, or an interactions pickle) may not exceed this: unpickling costs
# up to ~90 bytes of Python objects per pickle byte (one-byte EMPTY_DICT opcodes), so this caps
# that at ~360 MB whatever the payload's size. An honest episode's pickle is ~400 bytes per
# transition (tensors live in the archive's storage records, not in the pickle).
MAX_PICKLE_BYTES = 4 * 1024 * 1024
# Transition dicts go at most this deep (transition -> "state" / "complementary_info" -> key).
MAX_NESTING = 4
PICKLE_PROTOCOL_BYTE = 0x80


def is_pickle(payload: bytes | memoryview) -> bool:
    return len(payload) >= 2 and payload[0] == PICKLE_PROTOCOL_BYTE and 2 <= payload[1] <= 5


def is_lerobot_payload(payload: bytes | memoryview) -> bool:
    return is_torch_archive(payload) or is_pickle(payload)


class _StorageType(tuple):
    """Stand-in for torch.<X>Storage: an immutable tag (a tuple has no __dict__ to tamper with)."""


class _AllowlistUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allowlisted globals, to local stand-ins."""

    def __init__(self, data: bytes, records: Mapping[str, bytes] | None, budget_bytes: int):
        super().__init__(io.BytesIO(data))
        self._records = records
        self._storages: dict[str, np.ndarray] = {}
        self._budget = budget_bytes
        self._allowed = (
            {}
            if records is None
            else {
                ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
                ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
                ("collections", "OrderedDict"): collections.OrderedDict,
                **{("torch", name): _StorageType(("storage", name)) for name in _STORAGE_DTYPES},
            }
        )

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise PayloadError(f"pickle names a disallowed global {module}.{name}") from None

    def persistent_load(self, pid):
        if self._records is None:
            raise PayloadError("persistent id in a plain pickle")
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
        ):
            raise PayloadError(f"unexpected persistent id {pid!r:.100}")
        _, storage_type, key, _location, numel = pid
        dtype = _STORAGE_DTYPES[storage_type[1]]
        if key not in self._storages:
            raw = self._records.get(key)
            if raw is None:
                raise PayloadError(f"storage data/{key} missing from the archive")
            if type(numel) is not int or numel < 0 or numel * dtype.itemsize > len(raw):
                raise PayloadError(
                    f"storage data/{key}: {numel!r} elements do not fit {len(raw)} bytes"
                )
            self._storages[key] = (np.frombuffer(raw, dtype=dtype, count=numel), storage_type[1])
        return self._storages[key]

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, np.ndarray):
            raise PayloadError("parameter without tensor data")
        return data

    def _rebuild_tensor_v2(
        self, storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None
    ):
        if not (
            isinstance(storage, tuple) and len(storage) == 2 and isinstance(storage[0], np.ndarray)
        ):
            raise PayloadError("tensor rebuilt from something that is not a storage")
        if backward_hooks:
            raise PayloadError("tensor with backward hooks")
        flat, storage_name = storage
        # Charged BEFORE the copy: a stride-0 view of one element may claim any size.
        elements = 1
        for dim in _int_tuple(size, "size"):
            elements *= dim  # Python ints: no overflow
        self._budget -= elements * flat.dtype.itemsize
        if self._budget < 0:
            raise PayloadError("tensors expand far beyond the payload size")
        array = _strided_copy(flat, storage_offset, size, stride)
        if storage_name == "BoolStorage":
            return array.astype(bool)  # (array != 0 would turn a 0-d tensor into a scalar)
        if storage_name == "BFloat16Storage":
            return _bfloat16_bits_to_float32(array)
        return array


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise PayloadError(f"bad tensor {what}: {value!r:.100}")
    return value


def _strided_copy(flat: np.ndarray, offset, size, stride) -> np.ndarray:
    """A contiguous copy of the view (offset, size, stride) of `flat`, bounds checked first."""
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if type(offset) is not int or offset < 0 or len(size) != len(stride):
        raise PayloadError(f"bad tensor offset/size/stride {offset!r} {size} {stride}")
    if any(d == 0 for d in size):
        return np.empty(size, dtype=flat.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride))
    if last >= flat.size:
        raise PayloadError(f"tensor view reaches element {last} of a {flat.size}-element storage")
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view, order="C")


def _bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32, so widening is exact."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_opcodes(data: bytes) -> None:
    """Refuse, before unpickling, memo indexes no honest pickle of this size uses: the C
    unpickler grows its memo to the index, so 9 bytes could ask for gigabytes."""
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in _MEMO_OPCODES and int(argument) > len(data):
                raise PayloadError(f"pickle memo index {argument} in a {len(data)}-byte pickle")
    except PayloadError:
        raise
    except Exception as error:  # noqa: BLE001 - a malformed opcode stream is a bad payload
        raise PayloadError(f"unreadable pickle: {type(error).__name__}: {error}") from None


def _unpickle(data: bytes, records: Mapping[str, bytes] | None, budget_bytes: int):
    if len(data) > MAX_PICKLE_BYTES:
        raise PayloadError(f"pickle of {len(data)} bytes exceeds {MAX_PICKLE_BYTES}")
    _check_opcodes(data)
    try:
        return _AllowlistUnpickler(data, records, budget_bytes).load()
    except PayloadError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure inside pickle is a bad payload
        raise PayloadError(f"unreadable pickle: {type(error).__name__}: {error}") from None


# ----------------------------------------------------------------------------- public API


def load_torch_archive(payload: bytes | memoryview, *, max_bytes: int | None = None,
                       max_expansion: int = MAX_EXPANSION):
    """What torch.load(weights_only=True) would return, with numpy arrays for tensors (which
    may not total more than max_expansion times the payload's size, plus 1 MiB)."""
    archive = read_archive(payload, max_bytes=max_bytes)
    return _unpickle(archive.pickle_bytes, archive.records, max_expansion * len(payload) + 2**20)


def decode_transitions(payload: bytes | memoryview, *, max_bytes: int | None = None) -> list[dict]:
    """A stock actor's episode: list of {state, action, reward, next_state, done, truncated,
    complementary_info} dicts, tensors as numpy arrays (leading batch dim 1 kept)."""
    transitions = load_torch_archive(payload, max_bytes=max_bytes,
                                     max_expansion=TRANSITIONS_MAX_EXPANSION)
    if not isinstance(transitions, list) or not all(isinstance(t, dict) for t in transitions):
        raise PayloadError("LeRobot transitions payload is not a list of dicts")
    for index, transition in enumerate(transitions):
        missing = {"state", "action", "reward", "next_state", "done"} - set(transition)
        if missing:
            raise PayloadError(f"transition {index} lacks {sorted(missing)}")
    return transitions


def decode_state_dict(payload: bytes | memoryview, *, max_bytes: int | None = None) -> dict:
    """A LeRobot parameter push: {"policy": {name: array}, "discrete_critic": {...}}."""
    state = load_torch_archive(payload, max_bytes=max_bytes)
    if not isinstance(state, dict):
        raise PayloadError("LeRobot parameters payload is not a dict")
    return state


def decode_interactions(payload: bytes | memoryview, *, max_bytes: int | None = None) -> dict:
    """A stock actor's episode statistics (plain pickled dict; no global may be named)."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise PayloadError(f"payload too large: {len(payload)} > {max_bytes} bytes")
    if not is_pickle(payload):
        raise PayloadError("not a pickle (protocol 2..5)")
    stats = _unpickle(bytes(payload), None, 0)
    if not isinstance(stats, dict):
        raise PayloadError("LeRobot interactions payload is not a dict")
    return stats


def encode_state_dict(state: Mapping) -> bytes:
    """torch.save-format bytes that torch.load(weights_only=True) reads as a dict of tensors."""
    return write_archive(state)


def encode_transitions(transitions: list[Mapping]) -> bytes:
    """The stock actor's episode format, for tests, benchmarks and LeRobot-compatible senders."""
    return write_archive(list(transitions))


_SCALAR_TYPES = (int, float, bool, np.number, np.bool_)
_SCALAR_CHARGE = 8  # bytes a stacked number takes


def stack_transitions(transitions: list[Mapping], budget_bytes: int | None = None) -> dict:
    """Batch a decoded episode: arrays stacked on a leading time axis (batch dim 1 dropped).

    Every transition must have the same structure (dicts with string keys, at most MAX_NESTING
    deep, tensors or numbers at the leaves). The stacked bytes are charged to `budget_bytes`
    BEFORE anything is copied: a pickle may reference one tensor from a million transitions.
    Default budget: twice the bytes of the distinct tensors (an honest episode shares each
    state between two transitions, never more) plus the numbers, plus 1 MiB."""
    if not isinstance(transitions, list) or not transitions:
        raise PayloadError("empty episode")
    if budget_bytes is None:
        budget_bytes = _default_stack_budget(transitions)
    budget = [budget_bytes]  # one counter shared by the recursion
    return _stack_dicts(transitions, "transition", 0, budget)


def _stack_dicts(values: list, path: str, depth: int, budget: list[int]) -> dict:
    if depth >= MAX_NESTING:
        raise PayloadError(f"{path}: transitions nest deeper than {MAX_NESTING} levels")
    if not all(isinstance(v, Mapping) for v in values):
        raise PayloadError(f"{path}: a dict in one transition, something else in another")
    keys = list(values[0])
    if not all(isinstance(k, str) for k in keys):
        raise PayloadError(f"{path}: keys must be strings")
    if any(len(v) != len(keys) or any(k not in v for k in keys) for v in values):
        raise PayloadError(f"{path}: transitions do not share one set of keys")
    out = {}
    for key in keys:
        column, where = [v[key] for v in values], f"{path}[{key!r}]"
        if isinstance(column[0], Mapping):
            out[key] = _stack_dicts(column, where, depth + 1, budget)
        else:
            out[key] = _stack_leaves(column, where, budget)
    return out


def _stack_leaves(values: list, path: str, budget: list[int]) -> np.ndarray:
    """One (T, ...) array from T tensors (batch dim 1 dropped) or T numbers."""
    for value in values:  # tensors and numbers only: a nested list (shared references in the
        if not isinstance(value, (np.ndarray, *_SCALAR_TYPES)):  # pickle) could expand
            raise PayloadError(f"{path}: a transition value is a {type(value).__name__}, "
                               "not a tensor or a number")  # exponentially in numpy
    _charge(budget, _SCALAR_CHARGE * len(values), path)  # before any per-value object
    if all(isinstance(v, _SCALAR_TYPES) for v in values):
        return _plain_numbers(np.array(values), path)
    arrays = [v if isinstance(v, np.ndarray) else _plain_numbers(np.asarray(v), path)
              for v in values]
    first = arrays[0]
    if any(a.shape != first.shape for a in arrays):
        raise PayloadError(f"{path}: tensors of different shapes in one episode")
    itemsize = max(a.dtype.itemsize for a in arrays)
    _charge(budget, max(first.size * itemsize - _SCALAR_CHARGE, 0) * len(arrays), path)
    stacked = np.stack(arrays)
    if first.ndim >= 1 and first.shape[0] == 1:
        stacked = stacked.reshape(stacked.shape[:1] + stacked.shape[2:])
    return stacked


def _plain_numbers(array: np.ndarray, path: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":  # e.g. a Python int beyond 64 bits: an object array
        raise PayloadError(f"{path}: a value that is not a plain number")
    return array


def _charge(budget: list[int], nbytes: int, path: str) -> None:
    budget[0] -= nbytes
    if budget[0] < 0:
        raise PayloadError(f"{path}: stacking would copy far more than the episode holds")


def _default_stack_budget(transitions: list) -> int:
    """Bytes of the distinct objects under `transitions` (shared dicts and tensors once each:
    the walk itself must not multiply shared references)."""
    seen: set[int] = set()
    tensor_bytes = numbers = 0
    pending = [(t, 0) for t in transitions]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (Mapping, np.ndarray)):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, Mapping) and depth < MAX_NESTING:
            pending.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, np.ndarray):
            tensor_bytes += max(value.nbytes, _SCALAR_CHARGE)
        else:
            numbers += 1
    return 2 * tensor_bytes + _SCALAR_CHARGE * numbers + 2**20
