"""Files written whole or not at all: write beside the target, fsync it, rename it over the
target, fsync the directory. A reader, a killed process or a power cut then sees the old file or
the new one, never half of one (without the fsyncs, a rename can reach the disk before the data
it names). numpy only; used by every layer that saves something."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which then replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_file(path: str | os.PathLike) -> None:
    """Push a file's data to the disk (whoever wrote it, through whatever file object)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make the names in a directory durable: a rename or a new file is only on the disk once
    its directory is. (Windows cannot open a directory; its renames are journalled anyway.)"""
    if os.name == "nt":
        return
    fsync_file(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: str | os.PathLike, obj, indent: int = 2) -> None:
    text = json.dumps(obj, indent=indent, default=json_default) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def json_default(value):
    """JSON for numpy values and tuples (json.dumps' `default`)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
