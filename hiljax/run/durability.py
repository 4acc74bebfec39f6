"""Exactly-once episodes across learner crashes: a write-ahead journal of received episodes.

The gap it closes. A transport acknowledges an episode once it sits in the learner's inbound
queue; the actor then forgets it. The episode reaches the disk only with the next checkpoint, so
a learner SIGKILLed in between loses every episode acknowledged since the last checkpoint (and
one stopped cleanly loses those acknowledged while and after it saves, before the transport
stops). With the journal, the acknowledgement waits until the episode is on the disk:

    received -> journal (fsync) -> inbound queue -> acknowledged -> ingested -> checkpoint
                   |                                                              |
                   +---- replayed after a restart: every record past the checkpoint's position

- `JournaledQueue` replaces the transport's inbound transition queue: `put` (what every
  transport calls before it acknowledges) appends the episode to the journal first. Puts are
  serialised, so the queue's order is the journal's order and "the first J records" is exactly
  what the ingest loop has taken.
- A checkpoint records J (`counters["journal_ingested"]`), taken with ingestion paused, so the
  buffers hold exactly records [0, J). A restarted learner replays records J.. into its buffers.
- A resend of a journalled episode (its acknowledgement died with the learner, and the restored
  duplicate filter, older than the journal, lets it through) is recognised by its digest and
  acknowledged without being queued again.
- Old segments go once two checkpoints hold their records (one checkpoint of margin: a
  fallback to the previous checkpoint still finds its records; the checkpoint a process
  resumed from counts as the first).

Episode statistics (the interactions queue) are not journalled: metrics only.
Standard library only; the learner is duck-typed (run_dir, counters, ingest, save,
ingest_items), so this module stays below the processes.

    journal = attach_journal(learner, transport)   # after Learner.create, before start()
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hiljax.storage.files import fsync_dir
from transport.interface import KIND_TRANSITIONS, Received

log = logging.getLogger(__name__)

COUNTER = "journal_ingested"  # in the learner's counters: records [0, J) are in the checkpoint
_RECORD = struct.Struct("<4sQII")  # magic, index, body length, crc32 of the body
_MAGIC = b"HJWL"
_NAME = struct.Struct("<H")


@dataclass(frozen=True)
class Record:
    index: int
    client_id: str
    codec: str
    payload: bytes

    def received(self) -> Received:
        return Received(self.client_id, self.codec, self.payload, KIND_TRANSITIONS)


def payload_digest(payload) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


class PayloadJournal:
    """Append-only segment files `seg_<first index>.log` of checksummed records.

    Each learner process writes its own segment (a torn record at the end of a dead process's
    segment is never appended to); reading a segment stops at its first torn or corrupt record.
    """

    def __init__(self, directory: str | os.PathLike, first_index: int = 0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._digests: dict[Path, set[bytes]] = {}  # per segment, for the resend check
        self.next_index = first_index
        for path in self._segments():
            digests = self._digests.setdefault(path, set())
            for record in _read_segment(path):
                digests.add(payload_digest(record.payload))
                self.next_index = max(self.next_index, record.index + 1)
        self._file = None
        # J of the checkpoint this process started from, then of each one it saved.
        self._checkpointed: list[int] = [first_index]

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("seg_*.log"), key=_segment_start)

    @property
    def first_index(self) -> int:
        """The oldest index the journal still holds (next_index when empty)."""
        for path in self._segments():
            for record in _read_segment(path):
                return record.index
        return self.next_index

    def holds(self, digest: bytes) -> bool:
        with self._lock:
            return any(digest in digests for digests in self._digests.values())

    def records(self, start: int) -> Iterator[Record]:
        """Records with index >= start, oldest first."""
        for path in self._segments():
            for record in _read_segment(path):
                if record.index >= start:
                    yield record

    def append(self, client_id: str, codec: str, payload) -> int:
        """Write one record and fsync it: on the disk when this returns."""
        with self._lock:
            if self._file is None:
                self._open_segment()
            client, codec_bytes = client_id.encode(), codec.encode()
            body = b"".join([_NAME.pack(len(client)), client, _NAME.pack(len(codec_bytes)),
                             codec_bytes, bytes(payload)])
            index = self.next_index
            self._file.write(_RECORD.pack(_MAGIC, index, len(body), zlib.crc32(body)) + body)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._digests[self._current].add(payload_digest(payload))
            self.next_index += 1
            return index

    def _open_segment(self) -> None:
        self._current = self.directory / f"seg_{self.next_index:012d}.log"
        # "wb": a file of this name holds no valid record (else next_index would be past it),
        # only a torn one that appending behind would hide everything written after it.
        self._file = open(self._current, "wb")  # noqa: SIM115 - closed by checkpointed/close
        self._digests.setdefault(self._current, set())
        fsync_dir(self.directory)  # the new name must survive too

    def checkpointed(self, ingested: int) -> None:
        """A checkpoint holding records [0, ingested) is on the disk: start a new segment, and
        delete segments wholly before the previous checkpoint's position."""
        with self._lock:
            self._close_segment()
            self._checkpointed.append(ingested)
            if len(self._checkpointed) < 2:
                return
            keep_from = self._checkpointed[-2]
            segments = self._segments()
            for path, following in itertools.pairwise(segments):
                if _segment_start(following) <= keep_from:
                    path.unlink(missing_ok=True)
                    self._digests.pop(path, None)

    def _close_segment(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        with self._lock:
            self._close_segment()


def _segment_start(path: Path) -> int:
    return int(path.stem.removeprefix("seg_"))


def _read_segment(path: Path) -> Iterator[Record]:
    with open(path, "rb") as f:
        while True:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return
            magic, index, length, crc = _RECORD.unpack(head)
            body = f.read(length)
            if magic != _MAGIC or len(body) < length or zlib.crc32(body) != crc:
                log.warning("%s: a torn record after index %d (the process died writing it; "
                            "it was never acknowledged)", path, index - 1)
                return
            yield _parse_body(index, body)


def _parse_body(index: int, body: bytes) -> Record:
    (n,) = _NAME.unpack_from(body, 0)
    client = body[2:2 + n].decode()
    (m,) = _NAME.unpack_from(body, 2 + n)
    codec = body[4 + n:4 + n + m].decode()
    return Record(index, client, codec, body[4 + n + m:])


class JournaledQueue:
    """Wraps the transport's inbound transition queue (its bounds, its per-client caps) so that
    an episode is journalled before `put` returns True, i.e. before the transport acknowledges
    it. One lock covers "enqueue + journal" and "hand out": the queue's order is the journal's,
    and no episode is handed to the ingest loop before it is on the disk."""

    def __init__(self, inner, journal: PayloadJournal, taken: int):
        self._inner, self.journal = inner, journal
        self.taken = taken  # journal records handed to the ingest loop (replayed ones included)
        self.resends_acknowledged = 0
        self._turn = threading.Condition()  # its lock: the one above; notified on put and take

    def __getattr__(self, name):  # max_items, max_bytes, queued_bytes, ...: the inner queue's
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)

    def put(self, item: Received, size: int, timeout: float | None = None, **options) -> bool:
        """Journal and queue; False (neither journalled nor acknowledged) if no room came in
        `timeout`. `options` (e.g. the client whose cap applies) go to the inner queue."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._turn:
            if self.journal.holds(payload_digest(item.payload)):
                self.resends_acknowledged += 1
                log.info("%s resent an episode the journal holds: acknowledged, not queued",
                         item.client_id)
                return True
            while not self._inner.put(item, size, 0, **options):  # never waits holding the lock
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._turn.wait(left)  # until the ingest loop takes something
            self.journal.append(item.client_id, item.codec, item.payload)
            self._turn.notify_all()
            return True

    def get_many(self, timeout: float = 0.0, max_items: int | None = None) -> list:
        deadline = time.monotonic() + timeout
        with self._turn:
            while True:
                items = self._inner.get_many(0, max_items)
                left = deadline - time.monotonic()
                if items or left <= 0:
                    break
                self._turn.wait(left)
            self.taken += len(items)
            if items:
                self._turn.notify_all()
            return items


class DurableIngest:
    """What attach_journal installs: the journalled queue and the pause that lets a checkpoint
    see the buffers and J agree."""

    def __init__(self, learner, queue: JournaledQueue):
        self.learner, self.queue = learner, queue
        self.paused = threading.Lock()  # held while episodes go from the queue to the buffers
        self._ingest, self._save = learner.ingest, learner.save

    def ingest(self, timeout: float = 0.0) -> int:
        with self.paused:
            return self._ingest(timeout)

    def save(self):
        with self.paused:  # nothing taken from the queue is on its way to the buffers
            ingested = self.queue.taken
            self.learner.counters[COUNTER] = ingested
            path = self._save()
        if path is not None:
            self.queue.journal.checkpointed(ingested)
        return path

    def replay(self, start: int) -> int:
        """Insert the journal's records from `start` (those no checkpoint holds); returns
        how many."""
        oldest = self.queue.journal.first_index
        if oldest > start:
            log.error("the journal starts at record %d but the checkpoint holds only [0, %d): "
                      "%d episodes are lost (journal deleted, or an older checkpoint restored)",
                      oldest, start, oldest - start)
        replayed = 0
        for record in self.queue.journal.records(start):
            self.learner.ingest_items([record.received()])
            self.queue.taken = record.index + 1
            replayed += 1
        if replayed:
            log.info("replayed %d journalled episodes received after the checkpoint", replayed)
        return replayed


def attach_journal(learner, transport, directory: str | os.PathLike | None = None
                   ) -> DurableIngest:
    """Make `learner` (fresh or resumed, its transport not started yet) acknowledge episodes
    only once they are durable, and replay what its checkpoint lacks. Idempotent."""
    existing = getattr(learner, "_durable_ingest", None)
    if existing is not None:
        return existing
    if getattr(transport, "_started", False):
        raise RuntimeError("attach_journal() must run before the transport starts")
    start = int(learner.counters.get(COUNTER, 0))
    journal = PayloadJournal(directory or Path(learner.run_dir) / "journal", first_index=start)
    queue = JournaledQueue(transport._queues[KIND_TRANSITIONS], journal, taken=start)
    transport._queues[KIND_TRANSITIONS] = queue
    durable = DurableIngest(learner, queue)
    learner.ingest, learner.save = durable.ingest, durable.save
    learner._durable_ingest = durable
    durable.replay(start)
    if not (Path(learner.run_dir) / "checkpoints").exists():
        learner.save()  # a learner killed before its first periodic save can still --resume
    return durable
