"""A pickle-free file of named numpy arrays plus JSON metadata, written atomically.

Layout: a sequence of .npy records (np.lib.format, allow_pickle=False): a JSON header (format name,
version, metadata, array names/dtypes/shapes) stored as uint8, the arrays in header order, and a
JSON trailer with a CRC-32 per record. Sizes are checked before reading, so a corrupt header cannot
trigger a huge allocation; a truncated or corrupt file raises ArrayFileError, never loads as empty.
Used by replay buffers and learner checkpoints.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from pathlib import Path

import numpy as np

from hiljax.storage.files import fsync_dir


class ArrayFileError(ValueError):
    """A file of arrays that is truncated, corrupt, or not of the expected format."""

def _json_record(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), np.uint8)


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


def write_array_file(path: str | os.PathLike, file_format: str, version: int, meta: dict,
                     arrays: dict[str, np.ndarray]) -> None:
    """Write `meta` (JSON-able) and named arrays atomically (temp file, fsync, rename, fsync of
    the directory: the new name is durable when this returns)."""
    path = Path(path)
    header = _json_record({"format": file_format, "version": version, "meta": meta,
                           "arrays": [[name, a.dtype.str, list(a.shape)]
                                      for name, a in arrays.items()]})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            crcs = []
            for record in (header, *arrays.values()):
                # (np.ascontiguousarray would turn a 0-d array into a 1-d one.)
                record = np.asarray(record)
                if not record.flags.c_contiguous:
                    record = record.copy(order="C")
                np.lib.format.write_array(f, record, allow_pickle=False)
                crcs.append(_crc(record))
            np.lib.format.write_array(f, _json_record({"end": file_format, "crc32": crcs}),
                                      allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_record(f, remaining: int, what: str) -> np.ndarray:
    """One .npy record, refusing object dtypes and sizes larger than what is left of the file."""
    start = f.tell()
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ArrayFileError(f"unsupported .npy version {version} in {what}")
    shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise ArrayFileError(f"{what} has an object dtype (refused, no pickle)")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if need > remaining - (f.tell() - start):
        raise ArrayFileError(f"file is truncated inside {what}")
    f.seek(start)
    return np.lib.format.read_array(f, allow_pickle=False)


def read_array_file(path: str | os.PathLike, file_format: str,
                    version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file of `write_array_file`; ArrayFileError if it is truncated, corrupt or foreign."""
    path = Path(path)
    size = path.stat().st_size  # a missing file is FileNotFoundError, not a format error
    with open(path, "rb") as f:
        try:
            header_arr = _read_record(f, size, "the header")
            header = json.loads(header_arr.tobytes())
            kind = (header.get("format"), header.get("version"))
            if kind != (file_format, version):
                raise ArrayFileError(f"not a {file_format} v{version} file "
                                        f"(format, version = {kind})")
            arrays, crcs = {}, [_crc(header_arr)]
            for name, dtype, shape in header["arrays"]:
                arr = _read_record(f, size - f.tell(), f"array {name!r}")
                if arr.dtype != np.dtype(dtype) or arr.shape != tuple(shape):
                    raise ArrayFileError(f"array {name!r} is {arr.shape} {arr.dtype}, header "
                                            f"says {tuple(shape)} {dtype}")
                arrays[name] = arr
                crcs.append(_crc(arr))
            trailer = json.loads(_read_record(f, size - f.tell(), "the trailer").tobytes())
            if trailer.get("end") != file_format or trailer.get("crc32") != crcs:
                raise ArrayFileError("checksum mismatch: the file is corrupt")
            if f.read(1):
                raise ArrayFileError("unexpected bytes after the trailer")
        except ArrayFileError as exc:
            raise ArrayFileError(f"{path}: {exc}") from None
        except (ValueError, EOFError, OSError, KeyError, TypeError, AttributeError) as exc:
            raise ArrayFileError(f"{path}: unreadable file "
                                    f"(truncated or corrupt): {exc!r}") from exc
    return header["meta"], arrays
