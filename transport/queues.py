"""Thread-safe bounded queues, the duplicate filter and backoff shared by the transports."""

import collections
import itertools
import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from transport.errors import TransportClosed, TransportFull
from transport.spool import Spool

log = logging.getLogger(__name__)


class PayloadQueue:
    """FIFO bounded by item count AND total bytes (the learner's inbound queue), and by the bytes
    any one client has queued.

    An item bigger than max_bytes is still admitted into an empty queue, else it could never
    pass; the byte bound then holds for everything queued behind it. Likewise a client with
    nothing queued may always queue one item (if the queue has room), whatever its size.

    The per-client cap (default max_bytes // 4) keeps one fast or hostile actor from filling
    the queue: once it holds that much, its next put waits (its acknowledgement is delayed: the
    same back-pressure as a full queue) while other actors' payloads still find room. A quarter
    leaves three quarters for everyone else, and with the defaults (1 GiB queue, 256 MiB
    payloads) still lets a client queue one maximal payload. The client is the `client`
    argument of put, else the item's `client_id` (transport.interface.Received has one), so both
    servers get the cap without naming it; items with neither share no cap.
    """

    def __init__(self, max_items: int, max_bytes: int, max_client_bytes: int | None = None):
        self.max_items, self.max_bytes = max_items, max_bytes
        self.max_client_bytes = max_bytes // 4 if max_client_bytes is None else max_client_bytes
        self._items: collections.deque = collections.deque()
        self._bytes = 0
        self._client_bytes: dict[str, int] = {}  # only clients with something queued
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def queued_bytes(self, client: str | None = None) -> int:
        """Bytes queued in all, or by `client`."""
        with self._cond:
            return self._bytes if client is None else self._client_bytes.get(client, 0)

    def _fits(self, size: int, client: str | None) -> bool:
        if not self._items:
            return True
        if len(self._items) >= self.max_items or self._bytes + size > self.max_bytes:
            return False
        held = self._client_bytes.get(client, 0) if client is not None else 0
        return held == 0 or held + size <= self.max_client_bytes

    def put(self, item, size: int, timeout: float | None = None, client: str | None = None) -> bool:
        """Append; wait up to `timeout` for room (in the queue and under the client's cap).
        False if there was none."""
        if client is None:
            client = getattr(item, "client_id", None)
        with self._cond:
            if not self._cond.wait_for(lambda: self._fits(size, client), timeout):
                return False
            self._items.append((item, size, client))
            self._bytes += size
            if client is not None:
                self._client_bytes[client] = self._client_bytes.get(client, 0) + size
            self._cond.notify_all()
            return True

    def get_many(self, timeout: float = 0.0, max_items: int | None = None) -> list:
        """Up to max_items items (all if None); waits up to `timeout` for the first one."""
        with self._cond:
            if not self._items and timeout > 0:
                self._cond.wait_for(lambda: bool(self._items), timeout)
            count = len(self._items) if max_items is None else min(max_items, len(self._items))
            out = []
            for _ in range(count):
                item, size, client = self._items.popleft()
                self._bytes -= size
                self._release(client, size)
                out.append(item)
            if out:
                self._cond.notify_all()
            return out

    def _release(self, client: str | None, size: int) -> None:
        if client is None:
            return
        left = self._client_bytes[client] - size
        if left > 0:
            self._client_bytes[client] = left
        else:  # forgotten at zero: the table holds only clients with payloads queued
            del self._client_bytes[client]


class ByteBudget:
    """Bytes a server's handlers may hold at once for payloads still arriving (the gRPC server
    assembles up to one payload per call, and it has many worker threads): a reservation waits
    for room, and gives up after `timeout` so streams stuck half-way cannot hold each other
    forever. A reservation into an empty budget always succeeds (one payload may use it all)."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0
        self._room = threading.Condition()

    def reserve(self, size: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._room:
            while self.held and self.held + size > self.limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            self.held += size
            return True

    def release(self, size: int) -> None:
        with self._room:
            self.held -= size
            self._room.notify_all()


@dataclass(frozen=True)
class Outgoing:
    seq: int
    kind: str
    payload: bytes | memoryview
    spooled: Path | None = None  # its file in the spool, deleted on acknowledgement


class OutgoingQueue:
    """The actor's send queue: an entry leaves only when the learner has acknowledged it.

    With a `spool` (transport.spool.Spool) each payload of `spooled_kind` (the transitions) is
    on disk before it is queued and its file goes when it is acknowledged; what an earlier
    process left in the spool is queued first. Other kinds (episode statistics: metrics only)
    are not spooled.
    """

    def __init__(self, max_items: int, max_bytes: int, spool: Spool | None = None,
                 spooled_kind: str = "transitions"):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._entries: collections.OrderedDict[int, Outgoing] = collections.OrderedDict()
        self._bytes = 0
        self._seq = itertools.count()
        self._closed = False
        self._cond = threading.Condition()
        self.spool, self.spooled_kind = spool, spooled_kind
        self.recovered = 0  # payloads an earlier process left in the spool, queued first
        with self._cond:
            for path, payload in spool.pending() if spool else ():
                self._insert(spooled_kind, payload, path)
                self.recovered += 1

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def _fits(self, size: int) -> bool:
        if not self._entries:
            return True
        return len(self._entries) < self.max_items and self._bytes + size <= self.max_bytes

    def put(self, kind: str, payload, timeout: float | None = None) -> int:
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._fits(len(payload)), timeout):
                raise TransportFull(
                    f"send queue full ({len(self._entries)} payloads, {self._bytes} bytes)"
                )
            self._check_open()
        # Written outside the lock: acknowledgements go on meanwhile. The room found above is
        # not taken back (the actor is the only producer; at worst one payload over the bound).
        path = self._write_spool(payload) if self._spools(kind) else None
        with self._cond:
            self._check_open()  # closed meanwhile: the file stays and is resent by the next one
            return self._insert(kind, payload, path)

    def _write_spool(self, payload) -> Path | None:
        """The payload's file, or None when the disk refuses it (full, gone read-only): then it
        is kept in memory only, as without a spool, and the actor goes on."""
        try:
            return self.spool.write(payload)
        except OSError as error:
            log.error("cannot write the spool %s (%s): this episode is kept in memory only "
                      "and is lost if the actor process dies", self.spool.directory, error)
            return None

    def park(self, kind: str, payload) -> bool:
        """Keep a payload for the next process without queueing it (the actor stops while the
        queue is full): True if it is in the spool, False if there is no spool to keep it."""
        if self._closed or not self._spools(kind):
            return False
        return self._write_spool(payload) is not None

    def _spools(self, kind: str) -> bool:
        return self.spool is not None and kind == self.spooled_kind

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("actor transport is closed")

    def _insert(self, kind: str, payload, path: Path | None) -> int:
        entry = Outgoing(next(self._seq), kind, payload, path)
        self._entries[entry.seq] = entry
        self._bytes += len(payload)
        self._cond.notify_all()
        return entry.seq

    def first(self, timeout: float | None = None) -> Outgoing | None:
        """The oldest unacknowledged entry (waits for one), None if closed or timed out."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._entries, timeout)
            if self._closed or not self._entries:
                return None
            return next(iter(self._entries.values()))

    def after(self, seq: int, limit: int) -> list[Outgoing]:
        """Up to `limit` entries with a sequence number above `seq`, oldest first."""
        with self._cond:
            return list(itertools.islice((e for s, e in self._entries.items() if s > seq), limit))

    def snapshot(self) -> list[Outgoing]:
        with self._cond:
            return list(self._entries.values())

    def ack(self, seq: int) -> bool:
        with self._cond:
            entry = self._entries.pop(seq, None)
            if entry is None:
                return False
            self._bytes -= len(entry.payload)
            self._cond.notify_all()
        if entry.spooled is not None:
            self.spool.remove(entry.spooled)
        return True

    def wait_empty(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._entries, timeout)

    def close(self) -> None:
        """Unacknowledged payloads stay in the spool (if any) for the next process."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.spool is not None:
            self.spool.close()


class DuplicateFilter:
    """Remembers which (client, seq) payloads were accepted, so resends are dropped.

    Per client: every seq below `floor` counts as seen, plus a set of seqs above it (actors
    send in order, so the set stays small and the floor advances). A learner transport owns
    one; its `LearnerTransport.state()` / `restore()` carry it across learner restarts.
    """

    def __init__(self, max_tracked_per_client: int = 65536, state: dict | None = None,
                 max_clients: int = 4096):
        self.max_tracked = max_tracked_per_client
        # A client announcing a fresh id per payload must not grow the table (or the
        # checkpoint) without bound: beyond `max_clients` ids the one marked longest ago is
        # forgotten (its resends, should any still come, would be accepted once more).
        self.max_clients = max_clients
        self._floor, self._above = _checked_filter_state(state)
        self._recent: OrderedDict[str, None] = OrderedDict.fromkeys(self._floor)
        self._lock = threading.Lock()

    def seen(self, client: str, seq: int) -> bool:
        with self._lock:
            return seq < self._floor.get(client, 0) or seq in self._above.get(client, ())

    def mark(self, client: str, seq: int) -> None:
        with self._lock:
            floor = self._floor.get(client, 0)
            above = self._above.setdefault(client, set())
            if seq >= floor:
                above.add(seq)
            while floor in above:
                above.discard(floor)
                floor += 1
            if (
                len(above) > self.max_tracked
            ):  # a gap that never fills (a dropped payload): give up on it
                floor = min(above)
                while floor in above:
                    above.discard(floor)
                    floor += 1
            self._floor[client] = floor
            self._recent[client] = None
            self._recent.move_to_end(client)
            while len(self._recent) > self.max_clients:
                oldest, _ = self._recent.popitem(last=False)
                self._floor.pop(oldest, None)
                self._above.pop(oldest, None)

    def __len__(self) -> int:
        """Client ids remembered."""
        return len(self._recent)

    def state(self) -> dict:
        with self._lock:
            return {
                "floor": dict(self._floor),
                "above": {c: sorted(s) for c, s in self._above.items()},
            }


def _checked_filter_state(state: dict | None) -> tuple[dict[str, int], dict[str, set[int]]]:
    """(floors, seqs above them) from a DuplicateFilter.state(). A malformed one (a corrupt or
    hand-edited checkpoint) is a ValueError: accepting it would silently let resends through."""
    if state is None:
        return {}, {}
    if not isinstance(state, dict) or set(state) - {"floor", "above"}:
        raise ValueError(f"duplicate filter state must be {{'floor', 'above'}}, got {state!r:.200}")
    floor, above = state.get("floor", {}), state.get("above", {})
    if not (isinstance(floor, dict) and all(_is_client_seq(c, n) for c, n in floor.items())):
        raise ValueError(f"duplicate filter floor must map client ids to seqs, got {floor!r:.200}")
    if not (
        isinstance(above, dict)
        and all(isinstance(s, (list, tuple)) for s in above.values())
        and all(_is_client_seq(c, n) for c, s in above.items() for n in s)
    ):
        raise ValueError(
            f"duplicate filter above must map client ids to seq lists, got {above!r:.200}"
        )
    return dict(floor), {c: set(s) for c, s in above.items()}


def _is_client_seq(client, seq) -> bool:
    return (
        isinstance(client, str) and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
    )


class NewestSlot:
    """Holds only the newest (version, value); older offers are ignored."""

    def __init__(self):
        self._value = None
        self._cond = threading.Condition()

    def offer(self, version: int, value) -> bool:
        with self._cond:
            if self._value is not None and version <= self._value[0]:
                return False
            self._value = (version, value)
            self._cond.notify_all()
            return True

    def get(self):
        with self._cond:
            return self._value

    def wait_newer(self, version: int, timeout: float):
        """The newest value if its version exceeds `version` (waits up to timeout), else None."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._value is not None and self._value[0] > version, timeout
            )
            value = self._value
            return value if value is not None and value[0] > version else None


class Backoff:
    """Exponential backoff with jitter: initial, x multiplier, capped at maximum."""

    def __init__(self, initial: float = 0.05, maximum: float = 2.0, multiplier: float = 2.0):
        self.initial, self.maximum, self.multiplier = initial, maximum, multiplier
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.multiplier)
        return delay * random.uniform(0.8, 1.0)

    def sleep(self, stop: threading.Event) -> bool:
        """Wait one backoff step; True if `stop` was set meanwhile."""
        return stop.wait(self.next_delay())
