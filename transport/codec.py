"""hiljax's own payload codec: a (nested) dict of numpy arrays plus small metadata <-> bytes.

Layout (all integers little-endian):

    offset 0   magic  b"HJXP"                      4 bytes
    offset 4   schema version (u16), flags (u16)    4 bytes
    offset 8   header length H (u32)                4 bytes
    offset 12  header: msgpack map                  H bytes
               {"sender": str, "seq": int, "meta": map,
                "arrays": [[path, dtype, shape, offset, nbytes], ...], "data_bytes": int}
    padding to a multiple of 64, then the data region: each array's raw C-order bytes at
    `offset` (relative to the data region, 64-byte aligned), data_bytes in all.

Nested dicts travel as "/"-joined paths ({"obs": {"state": a}} -> "obs/state"), so keys may
not contain "/". Decoding returns read-only np.frombuffer views into the payload (zero-copy);
uint8 stays uint8. `sender` and `seq` let the learner drop duplicates after a resend.
Never pickle: every field is checked before any array is built, and anything odd raises
PayloadError.
"""

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from transport.errors import PayloadError

MAGIC = b"HJXP"
SCHEMA_VERSION = 1
ALIGN = 64
PATH_SEP = "/"
# Names, shapes and meta only; a bigger header is a corrupt one. Unpacking costs up to ~75
# bytes of Python objects per header byte (one-byte empty maps), so this also caps that.
MAX_HEADER_BYTES = 1024 * 1024
# Arrays per payload: an episode has a few dozen, a parameter push a few hundred; each costs
# a spec and a numpy view (~300 bytes) before anything else is checked.
MAX_ARRAYS = 8192
MAX_SENDER_CHARS = 256
_PREFIX = struct.Struct("<4sHHI")

# Wire dtype names: numpy's little-endian type strings, plus bfloat16 (numpy has no code for it).
_DTYPES = ("|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8")
BFLOAT16 = "bfloat16"


@dataclass(frozen=True)
class ArraySpec:
    path: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Header:
    sender: str
    seq: int
    meta: dict
    arrays: tuple[ArraySpec, ...]
    data_start: int  # absolute offset of the data region in the payload
    data_bytes: int


@dataclass(frozen=True)
class Decoded:
    arrays: dict  # nested dict of np.ndarray, shaped like what was encoded
    sender: str
    seq: int
    meta: dict = field(default_factory=dict)


def is_hiljax_payload(payload: bytes | memoryview) -> bool:
    return bytes(payload[:4]) == MAGIC


# ----------------------------------------------------------------------------- encode


def flatten(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": x}; leaves become numpy arrays."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if not isinstance(key, str) or not key or PATH_SEP in key:
            raise ValueError(f"array names must be non-empty strings without {PATH_SEP!r}: {key!r}")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, path + PATH_SEP))
        elif isinstance(value, (np.ndarray, np.generic)):
            flat[path] = np.asarray(value)
        else:
            raise TypeError(f"{path}: expected a numpy array or a dict, got {type(value).__name__}")
    return flat


def _wire_dtype(array: np.ndarray) -> tuple[str, np.ndarray]:
    """The wire dtype name and a little-endian C-contiguous version of the array."""
    if array.dtype.name == BFLOAT16:
        name, little = BFLOAT16, array.dtype
    else:
        little = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        name = little.str
        if name not in _DTYPES:
            raise TypeError(f"dtype {array.dtype} cannot travel in a hiljax payload")
    converted = array.astype(little, copy=False)
    # (np.ascontiguousarray would turn a 0-d array into shape (1,).)
    return name, converted if converted.flags.c_contiguous else converted.copy(order="C")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % ALIGN)


def encode(
    arrays: Mapping, *, sender: str = "", seq: int = 0, meta: Mapping | None = None
) -> bytes:
    """Serialise a (nested) dict of numpy arrays with sender id, sequence number and metadata."""
    if len(sender) > MAX_SENDER_CHARS:
        raise ValueError(f"sender id longer than {MAX_SENDER_CHARS} characters")
    if not 0 <= seq < 2**64:
        raise ValueError(f"sequence number out of range: {seq}")
    specs, buffers, offset = [], [], 0
    for path, array in flatten(arrays).items():
        dtype, contiguous = _wire_dtype(array)
        raw = contiguous.reshape(-1).view(np.uint8)
        specs.append([path, dtype, list(contiguous.shape), offset, raw.nbytes])
        buffers.append(raw)
        offset += raw.nbytes + (-raw.nbytes % ALIGN)
    header = msgpack.packb(
        {
            "sender": sender,
            "seq": seq,
            "meta": dict(meta or {}),
            "arrays": specs,
            "data_bytes": offset,
        },
        use_bin_type=True,
    )
    parts = [
        _PREFIX.pack(MAGIC, SCHEMA_VERSION, 0, len(header)),
        header,
        _padding(_PREFIX.size + len(header)),
    ]
    for raw in buffers:
        parts.append(raw)
        parts.append(_padding(raw.nbytes))
    return b"".join(parts)


# ----------------------------------------------------------------------------- decode


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PayloadError(message)


def _read_prefix(payload, max_bytes: int | None) -> int:
    size = len(payload)
    _check(max_bytes is None or size <= max_bytes, f"payload too large: {size} > {max_bytes} bytes")
    _check(size >= _PREFIX.size, f"truncated payload: {size} bytes, no room for the prefix")
    magic, version, _flags, header_len = _PREFIX.unpack_from(payload, 0)
    _check(magic == MAGIC, f"wrong magic {bytes(magic)!r}, expected {MAGIC!r}")
    _check(
        version == SCHEMA_VERSION,
        f"schema version {version} unsupported (this is {SCHEMA_VERSION})",
    )
    _check(header_len <= MAX_HEADER_BYTES, f"header length {header_len} exceeds {MAX_HEADER_BYTES}")
    _check(_PREFIX.size + header_len <= size, "truncated payload: header runs past the end")
    return header_len


def _unpack_header(raw) -> dict:
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except Exception as error:  # noqa: BLE001 - msgpack raises many unrelated types on bad bytes
        raise PayloadError(f"unreadable header: {error}") from None
    _check(isinstance(header, dict), "header is not a map")
    _check(
        set(header) == {"sender", "seq", "meta", "arrays", "data_bytes"},
        f"header keys {sorted(map(str, header))} are not the schema's",
    )
    _check(
        isinstance(header["sender"], str) and len(header["sender"]) <= MAX_SENDER_CHARS,
        "bad sender",
    )
    _check(type(header["seq"]) is int and 0 <= header["seq"] < 2**64, "bad sequence number")
    _check(isinstance(header["meta"], dict), "meta is not a map")
    _check(isinstance(header["arrays"], list), "arrays is not a list")
    _check(len(header["arrays"]) <= MAX_ARRAYS, f"more than {MAX_ARRAYS} arrays")
    _check(type(header["data_bytes"]) is int and header["data_bytes"] >= 0, "bad data size")
    return header


def _itemsize(dtype: str) -> int:
    return 2 if dtype == BFLOAT16 else np.dtype(dtype).itemsize


def _parse_spec(entry, data_bytes: int, end_of_previous: int) -> ArraySpec:
    _check(isinstance(entry, list) and len(entry) == 5, f"bad array entry {entry!r:.80}")
    path, dtype, shape, offset, nbytes = entry
    _check(
        isinstance(path, str) and path != "" and "" not in path.split(PATH_SEP),
        f"bad name {path!r:.80}",
    )
    _check(
        isinstance(dtype, str) and (dtype in _DTYPES or dtype == BFLOAT16),
        f"{path}: bad dtype {dtype!r:.20}",
    )
    _check(
        isinstance(shape, list)
        and len(shape) <= 32
        and all(type(d) is int and 0 <= d < 2**62 for d in shape),
        f"{path}: bad shape",
    )
    _check(
        type(offset) is int and type(nbytes) is int and offset >= end_of_previous,
        f"{path}: bad or overlapping offset",
    )
    _check(
        nbytes == int(np.prod(shape, dtype=object)) * _itemsize(dtype),
        f"{path}: {nbytes} bytes do not fit shape {shape} of {dtype}",
    )
    _check(offset + nbytes <= data_bytes, f"{path}: runs past the data region")
    return ArraySpec(path, dtype, tuple(shape), offset, nbytes)


def read_header(payload: bytes | memoryview, *, max_bytes: int | None = None) -> Header:
    """Validate a payload's framing and return its header without building any array."""
    header_len = _read_prefix(payload, max_bytes)
    header = _unpack_header(memoryview(payload)[_PREFIX.size : _PREFIX.size + header_len])
    data_start = _PREFIX.size + header_len
    data_start += -data_start % ALIGN
    data_bytes = header["data_bytes"]
    _check(
        len(payload) == data_start + data_bytes,
        f"payload is {len(payload)} bytes, header says {data_start + data_bytes}"
        + (" (truncated)" if len(payload) < data_start + data_bytes else ""),
    )
    specs, seen, end = [], set(), 0
    for entry in header["arrays"]:
        spec = _parse_spec(entry, data_bytes, end)
        _check(spec.path not in seen, f"duplicate array name {spec.path!r}")
        seen.add(spec.path)
        specs.append(spec)
        end = spec.offset + spec.nbytes
    return Header(
        header["sender"], header["seq"], header["meta"], tuple(specs), data_start, data_bytes
    )


def _numpy_dtype(name: str) -> np.dtype:
    if name != BFLOAT16:
        return np.dtype(name)
    try:
        import ml_dtypes  # optional: bfloat16 only exists in numpy through ml_dtypes
    except ImportError:
        raise PayloadError("bfloat16 array but ml_dtypes is not installed") from None
    return np.dtype(ml_dtypes.bfloat16)


def unflatten(flat: Mapping[str, Any]) -> dict:
    """{"a/b": x} -> {"a": {"b": x}}; a name that is both a leaf and a branch is refused."""
    tree: dict = {}
    for path, value in flat.items():
        *branches, leaf = path.split(PATH_SEP)
        node = tree
        for name in branches:
            node = node.setdefault(name, {})
            _check(isinstance(node, dict), f"{path!r}: {name!r} is both an array and a dict")
        _check(leaf not in node, f"{path!r}: name clash")
        node[leaf] = value
    return tree


def decode(
    payload: bytes | memoryview, *, max_bytes: int | None = None, copy: bool = False
) -> Decoded:
    """Payload -> Decoded. Arrays are read-only views into `payload` unless copy=True."""
    header = read_header(payload, max_bytes=max_bytes)
    flat = {}
    for spec in header.arrays:
        dtype = _numpy_dtype(spec.dtype)
        array = np.frombuffer(
            payload,
            dtype=dtype,
            count=spec.nbytes // dtype.itemsize,
            offset=header.data_start + spec.offset,
        ).reshape(spec.shape)
        flat[spec.path] = array.copy() if copy else array
    return Decoded(unflatten(flat), header.sender, header.seq, header.meta)
