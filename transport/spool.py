"""The actor's spool: payloads not yet acknowledged, kept on disk until they are.

The gap it closes. The send queue lives in the actor's memory, so an actor process that dies
(SIGKILL, a crash, the robot computer losing power) loses every episode the learner had not yet
acknowledged - on a real robot, minutes of a person's demonstrations. With a spool each
transitions payload is written to disk (fsynced) before it enters the queue and deleted when
the learner acknowledges it; the next actor process started on the same spool directory queues
what it finds there first, in the order it was recorded.

Exactly once. A resent payload is byte for byte what was written, so a learner with its episode
journal (hiljax.run.durability) recognises one it already holds (the actor died after the
learner acknowledged it, before the file went) by its digest and acknowledges it without
storing it twice.

One process per directory: an exclusive `flock` on `<dir>/.lock`, which the kernel releases
when the process dies, however it dies; a second actor on a busy spool is refused (SpoolBusy)
instead of both resending the same files. Standard library only (fcntl: POSIX).

    spool = Spool("outputs/run/spool/actor-0", max_payload_bytes=256 << 20)
    for path, payload in spool.pending(): ...   # what an earlier process left, oldest first
    path = spool.write(payload)                 # on disk (fsync) before it is queued
    spool.remove(path)                          # acknowledged
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIQ")  # magic, crc32 of the payload, payload length
_MAGIC = b"HJSP"
_SUFFIX = ".payload"


class SpoolBusy(ValueError):
    """Another live process holds the spool directory."""


class Spool:
    """Numbered files `<n>.payload` (header + payload) in one directory, owned by one process."""

    def __init__(self, directory: str | os.PathLike, max_payload_bytes: int):
        self.directory = Path(directory)
        self.max_payload_bytes = max_payload_bytes
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = self._take_lock()
        for stale in self.directory.glob("*.tmp"):  # a write the last process never finished
            stale.unlink(missing_ok=True)
        numbers = [n for n, _ in self._numbered()]
        self._next = max(numbers, default=-1) + 1

    def _take_lock(self) -> int:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SpoolBusy(f"the spool {self.directory} is in use by another actor process "
                            f"(pid {holder}): give each actor its own spool directory (another "
                            f"--actor-index, or actor.spool_dir)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _numbered(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            stem = path.name[: -len(_SUFFIX)]
            if stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    def pending(self) -> list[tuple[Path, bytes]]:
        """Every intact payload on disk, oldest first. A damaged file (cut short, wrong
        checksum, over the size limit) is renamed `*.corrupt` with a warning, never sent."""
        intact = []
        for _, path in self._numbered():
            payload = self._read(path)
            if payload is None:
                path.rename(path.with_suffix(".corrupt"))
            else:
                intact.append((path, payload))
        return intact

    def _read(self, path: Path) -> bytes | None:
        size = path.stat().st_size
        if size < _HEADER.size or size - _HEADER.size > self.max_payload_bytes:
            log.warning("spool file %s has %d bytes (limit %d): set aside", path, size,
                        self.max_payload_bytes)
            return None
        data = path.read_bytes()
        magic, crc, length = _HEADER.unpack_from(data)
        payload = data[_HEADER.size:]
        if magic != _MAGIC or length != len(payload) or zlib.crc32(payload) != crc:
            log.warning("spool file %s is damaged (cut short or corrupt): set aside", path)
            return None
        return payload

    def write(self, payload) -> Path:
        """The payload on disk for good (written, fsynced, renamed into place) before this
        returns."""
        path = self.directory / f"{self._next:012d}{_SUFFIX}"
        self._next += 1
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as file:
            file.write(_HEADER.pack(_MAGIC, zlib.crc32(payload), len(payload)))
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _fsync_directory(self.directory)  # the rename itself survives a power cut
        return path

    @staticmethod
    def remove(path: Path) -> None:
        # No directory fsync: a file that reappears after a power cut is resent, and the
        # learner's journal recognises it.
        path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None


def _fsync_directory(directory: Path) -> None:
    # hiljax.storage.files.fsync_dir does the same; transport/ may not import hiljax.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
