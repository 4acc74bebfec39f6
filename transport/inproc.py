"""An in-process transport with the same interface, for tests of the learner and the actor.

No sockets and no threads: an actor delivers straight into the learner's bounded queues (the
delivery is the acknowledgement) and reads parameters from the learner's newest slot, at most
once per push period. Addresses look like "inproc://<name>".
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping

from transport.errors import PayloadError, TransportClosed, TransportFull
from transport.interface import (
    CODEC_HILJAX,
    CODECS,
    DEFAULT_LEARNER_QUEUE_ITEMS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PUSH_FREQUENCY_S,
    DEFAULT_QUEUE_BYTES,
    KIND_INTERACTIONS,
    KIND_TRANSITIONS,
    ActorTransport,
    LearnerTransport,
    Payload,
    Received,
    identify_codec,
    new_client_id,
    normalise_parameters,
)
from transport.queues import DuplicateFilter, NewestSlot, PayloadQueue

_PREFIX = "inproc://"
_registry: dict[str, "InprocLearner"] = {}
_registry_lock = threading.Lock()


class InprocLearner(LearnerTransport):
    def __init__(
        self,
        name: str | None = None,
        *,
        push_frequency_s: float = DEFAULT_PUSH_FREQUENCY_S,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        queue_max_items: int = DEFAULT_LEARNER_QUEUE_ITEMS,
        queue_max_bytes: int = DEFAULT_QUEUE_BYTES,
    ):
        self.name = name or uuid.uuid4().hex
        self.push_frequency_s = push_frequency_s
        self.max_payload_bytes = max_payload_bytes
        self._duplicates = DuplicateFilter()
        self._queues = {
            KIND_TRANSITIONS: PayloadQueue(queue_max_items, queue_max_bytes),
            KIND_INTERACTIONS: PayloadQueue(queue_max_items, queue_max_bytes),
        }
        self.parameters = {codec: NewestSlot() for codec in CODECS}
        self._clients: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> "InprocLearner":
        with _registry_lock:
            if self.name in _registry:
                raise OSError(f"{self.address} is already in use")
            _registry[self.name] = self
        self._started = True
        self.running = True
        return self

    def stop(self, grace: float = 1.0) -> None:
        self.running = False
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]

    @property
    def address(self) -> str:
        return _PREFIX + self.name

    def publish_parameters(self, payloads: Mapping[str, Payload] | Payload, version: int) -> None:
        for codec, payload in normalise_parameters(payloads).items():
            self.parameters[codec].offer(version, payload)

    def connected_clients(self) -> set[str]:
        with self._lock:
            return {client for client, count in self._clients.items() if count > 0}

    def attach(self, client: str, delta: int) -> None:
        with self._lock:
            self._clients[client] += delta

    def deliver(
        self, kind: str, client: str, seq: int, payload: Payload, timeout: float | None
    ) -> None:
        if not self.running:
            raise TransportClosed(f"{self.address} is stopped")
        if len(payload) > self.max_payload_bytes:
            raise PayloadError(
                f"payload too large: {len(payload)} > {self.max_payload_bytes} bytes"
            )
        if self._duplicates.seen(client, seq):
            return
        item = Received(client, identify_codec(payload), payload, kind)
        if not self._queues[kind].put(item, len(payload), timeout):
            raise TransportFull(f"{self.address} {kind} queue is full")
        self._duplicates.mark(client, seq)


class InprocActor(ActorTransport):
    def __init__(
        self,
        address: str,
        *,
        client_id: str | None = None,
        param_codec: str = CODEC_HILJAX,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ):
        if not address.startswith(_PREFIX):
            raise ValueError(f"not an inproc address: {address!r}")
        if param_codec not in CODECS:
            raise ValueError(f"unknown parameter codec {param_codec!r}")
        self.name = address[len(_PREFIX) :]
        self.client_id = client_id or new_client_id()
        self.param_codec = param_codec
        self.max_payload_bytes = max_payload_bytes
        self._seq = 0
        self._delivered: tuple[int, Payload] | None = None
        self._delivered_at = float("-inf")
        self._attached_to: InprocLearner | None = None
        self._closed = False

    def _learner(self) -> InprocLearner:
        with _registry_lock:
            learner = _registry.get(self.name)
        if learner is None or self._closed:
            raise TransportClosed(f"no learner at inproc://{self.name}")
        if learner is not self._attached_to:
            learner.attach(self.client_id, +1)
            self._attached_to = learner
        return learner

    def ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._learner()
                return True
            except TransportClosed:
                if self._closed or time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)

    def send_transitions(self, payload: Payload, timeout: float | None = None) -> None:
        self._send(KIND_TRANSITIONS, payload, timeout)

    def send_interactions(self, payload: Payload, timeout: float | None = None) -> None:
        self._send(KIND_INTERACTIONS, payload, timeout)

    def _send(self, kind: str, payload: Payload, timeout: float | None) -> None:
        if len(payload) == 0 or len(payload) > self.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(payload)} bytes outside (0, {self.max_payload_bytes}]"
            )
        self._learner().deliver(kind, self.client_id, self._seq, payload, timeout)
        self._seq += 1

    def latest_parameters(self) -> tuple[int, Payload] | None:
        try:
            newest = self._learner().parameters[self.param_codec].get()
        except TransportClosed:
            return self._delivered
        due = time.monotonic() - self._delivered_at >= self._attached_to.push_frequency_s
        if (
            newest is not None
            and due
            and (self._delivered is None or newest[0] > self._delivered[0])
        ):
            self._delivered, self._delivered_at = newest, time.monotonic()
        return self._delivered

    def flush(self, timeout: float) -> bool:
        return True  # delivery is synchronous

    def pending(self) -> int:
        return 0

    def park_transitions(self, payload: Payload) -> bool:
        return False  # no spool: the learner is in this process and dies with it

    def recovered(self) -> int:
        return 0

    def seconds_since_contact(self) -> float:
        return 0.0  # the learner is in this process

    def close(self) -> None:
        if self._attached_to is not None and not self._closed:
            self._attached_to.attach(self.client_id, -1)
        self._closed = True
