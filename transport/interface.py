"""The small interface both transports (gRPC, ZeroMQ) and the in-process one implement.

Payloads are bytes at this layer; codecs are separate, so the learner decides what to decode.
`Received.codec` says which codec a payload is in, detected from its first bytes, so one
learner port serves hiljax actors and stock LeRobot actors alike.

Parameters travel to hiljax actors inside a 13-byte envelope (magic, codec, version) so the
actor learns the version without decoding; a stock LeRobot actor gets the bare torch.save bytes.
"""

import abc
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from transport import codec as hiljax_codec
from transport.errors import PayloadError, TransportClosed
from transport.lerobot_codec import is_pickle
from transport.queues import DuplicateFilter, OutgoingQueue, PayloadQueue
from transport.spool import Spool
from transport.torch_archive import is_torch_archive

CODEC_HILJAX = "hiljax"
CODEC_LEROBOT = "lerobot"
CODECS = (CODEC_HILJAX, CODEC_LEROBOT)
KIND_TRANSITIONS = "transitions"
KIND_INTERACTIONS = "interactions"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051  # the reference's learner_port; tests pass 0 (chosen by the OS)
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
DEFAULT_PUSH_FREQUENCY_S = 4.0  # the reference's policy_parameters_push_frequency
# Queue bounds shared by every implementation, so the factory and the constructors agree.
DEFAULT_LEARNER_QUEUE_ITEMS = 1024  # per kind (transitions, interactions)
DEFAULT_ACTOR_QUEUE_ITEMS = 64  # payloads waiting for the learner's acknowledgement
DEFAULT_QUEUE_BYTES = 1 << 30
DEFAULT_MAX_BACKOFF_S = 2.0  # reconnect backoff cap

Payload = bytes | memoryview


@dataclass(frozen=True)
class Received:
    client_id: str  # the actor's id (hiljax) or its peer address (stock LeRobot actor)
    codec: str  # CODEC_HILJAX or CODEC_LEROBOT
    payload: Payload
    kind: str = KIND_TRANSITIONS


def identify_codec(payload: Payload) -> str:
    """CODEC_HILJAX or CODEC_LEROBOT from the first bytes; PayloadError for anything else.

    A hiljax payload's framing is validated here (cheap: header only), so garbage is refused
    at the door; LeRobot payloads are fully checked when the learner decodes them.
    """
    if len(payload) == 0:
        raise PayloadError("empty payload")
    if hiljax_codec.is_hiljax_payload(payload):
        hiljax_codec.read_header(payload)
        return CODEC_HILJAX
    if is_torch_archive(payload) or is_pickle(payload):
        return CODEC_LEROBOT
    raise PayloadError(f"unknown payload format (first bytes {bytes(payload[:8])!r})")


def new_client_id() -> str:
    return uuid.uuid4().hex[:16]


# ----------------------------------------------------------------------------- parameters envelope

PARAMS_MAGIC = b"HJPV"
_ENVELOPE = struct.Struct("<4sBQ")
_CODEC_TAGS = {CODEC_HILJAX: 1, CODEC_LEROBOT: 2}


def params_topic(codec: str) -> bytes:
    """The envelope's first bytes for a codec (a ZeroMQ subscription prefix)."""
    return PARAMS_MAGIC + bytes([_CODEC_TAGS[codec]])


def pack_parameters(codec: str, version: int, payload: Payload) -> bytes:
    return b"".join([_ENVELOPE.pack(PARAMS_MAGIC, _CODEC_TAGS[codec], version), payload])


def unpack_parameters(frame: Payload) -> tuple[str, int, memoryview]:
    """(codec, version, payload view) of an envelope."""
    if len(frame) < _ENVELOPE.size:
        raise PayloadError("truncated parameters envelope")
    magic, tag, version = _ENVELOPE.unpack_from(frame, 0)
    codecs = {value: name for name, value in _CODEC_TAGS.items()}
    if magic != PARAMS_MAGIC or tag not in codecs:
        raise PayloadError("not a parameters envelope")
    return codecs[tag], version, memoryview(frame)[_ENVELOPE.size :]


def normalise_parameters(payloads: Mapping[str, Payload] | Payload) -> dict[str, Payload]:
    """publish_parameters accepts bytes (hiljax codec) or {codec: bytes}."""
    if isinstance(payloads, (bytes, bytearray, memoryview)):
        payloads = {CODEC_HILJAX: payloads}
    unknown = set(payloads) - set(CODECS)
    if unknown:
        raise ValueError(f"unknown parameter codecs {sorted(unknown)}")
    return dict(payloads)


# ----------------------------------------------------------------------------- the interface


class LearnerTransport(abc.ABC):
    """Learner side: serves many actors; newest parameters out, payloads in."""

    @abc.abstractmethod
    def start(self) -> "LearnerTransport": ...

    @abc.abstractmethod
    def stop(self, grace: float = 1.0) -> None:
        """Stop serving; payloads already received stay available to poll_*()."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """What an actor passes to make_actor_transport (e.g. "127.0.0.1:50051")."""

    @abc.abstractmethod
    def publish_parameters(self, payloads: Mapping[str, Payload] | Payload, version: int) -> None:
        """Offer new parameters ({codec: bytes}, or bytes for the hiljax codec). Only the newest
        is kept; each actor gets at most one per push period."""

    # Implementations keep one bounded PayloadQueue per kind in `self._queues`, the filter that
    # drops resent payloads in `self._duplicates`, and set `self._started` in start().
    _queues: Mapping[str, PayloadQueue]
    _duplicates: DuplicateFilter
    _started: bool = False

    def state(self) -> dict:
        """What must survive a learner restart, JSON-serialisable: checkpoint it with the
        learner's own state. Today that is which (actor, seq) payloads were accepted, so an
        actor's resend of a payload acknowledged before the restart is not learned from twice."""
        return {_STATE_DUPLICATES: self._duplicates.state()}

    def restore(self, state: dict) -> None:
        """Put back a `state()` (a fresh filter for `{}` or a state saved before this existed).

        Only before start(): once serving, a resent payload could be accepted in the gap before
        the restore, and replacing the filter would forget what was accepted meanwhile; so
        restoring a started transport is a RuntimeError. A malformed state is a ValueError."""
        if self._started:
            raise RuntimeError("restore() must be called before start()")
        self._duplicates = DuplicateFilter(state=_duplicates_state(state))

    def poll_transitions(
        self, timeout: float = 0.0, max_items: int | None = None
    ) -> list[Received]:
        return self._queues[KIND_TRANSITIONS].get_many(timeout, max_items)

    def poll_interactions(
        self, timeout: float = 0.0, max_items: int | None = None
    ) -> list[Received]:
        return self._queues[KIND_INTERACTIONS].get_many(timeout, max_items)

    @abc.abstractmethod
    def connected_clients(self) -> set[str]:
        """Ids of the actors currently connected (a vanished actor drops out)."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


_STATE_DUPLICATES = "duplicates"


def _duplicates_state(state: dict) -> dict | None:
    """The duplicate filter's part of a LearnerTransport.state(), refusing anything else."""
    if not isinstance(state, Mapping) or set(state) - {_STATE_DUPLICATES}:
        raise ValueError(
            f"transport state must be a dict with at most the key {_STATE_DUPLICATES!r} "
            f"(from LearnerTransport.state()), got {state!r:.200}"
        )
    return state.get(_STATE_DUPLICATES)


class ActorTransport(abc.ABC):
    """Actor side: queued, acknowledged sends; the newest parameters in a single slot."""

    client_id: str

    @abc.abstractmethod
    def ready(self, timeout: float) -> bool:
        """Handshake with the learner (retried with backoff); False if the deadline passed."""

    # Implementations keep their bounded outgoing queue in `self._outgoing`, a `self._closed`
    # event and `self.max_payload_bytes`; `_wake_sender` nudges an I/O thread if they have one.
    _outgoing: OutgoingQueue
    _closed: threading.Event
    max_payload_bytes: int

    def send_transitions(self, payload: Payload, timeout: float | None = None) -> None:
        """Queue a payload; it stays queued until the learner acknowledges it. Blocks while the
        bounded queue is full (TransportFull after `timeout`)."""
        self._enqueue(KIND_TRANSITIONS, payload, timeout)

    def send_interactions(self, payload: Payload, timeout: float | None = None) -> None:
        self._enqueue(KIND_INTERACTIONS, payload, timeout)

    def park_transitions(self, payload: Payload) -> bool:
        """Keep a payload on disk for the next actor process without queueing it (stopping
        while the queue is full): False when this transport has no spool."""
        return self._outgoing.park(KIND_TRANSITIONS, payload)

    def recovered(self) -> int:
        """Payloads an earlier actor process left unacknowledged in the spool (queued first)."""
        return self._outgoing.recovered

    @staticmethod
    def _make_outgoing(max_items: int, max_bytes: int, max_payload_bytes: int,
                       spool_dir: str | None) -> OutgoingQueue:
        """The send queue; with `spool_dir`, transitions are on disk until acknowledged
        (transport.spool), and what an earlier process left there is sent first."""
        spool = Spool(spool_dir, max_payload_bytes) if spool_dir else None
        return OutgoingQueue(max_items, max_bytes, spool=spool, spooled_kind=KIND_TRANSITIONS)

    def _enqueue(self, kind: str, payload: Payload, timeout: float | None) -> None:
        if self._closed.is_set():
            raise TransportClosed("actor transport is closed")
        if len(payload) == 0 or len(payload) > self.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(payload)} bytes outside (0, {self.max_payload_bytes}]"
            )
        self._outgoing.put(kind, payload, timeout)
        self._wake_sender()

    def _wake_sender(self) -> None:
        """Hook: tell the sending thread there is work (ZeroMQ's I/O loop needs a nudge)."""

    # Queue-based implementations keep the newest parameters in `self._parameters` (NewestSlot).
    def latest_parameters(self) -> tuple[int, Payload] | None:
        """(version, payload) of the newest parameters received, or None."""
        return self._parameters.get()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued payload is acknowledged; False on timeout."""
        return self._outgoing.wait_empty(timeout)

    def pending(self) -> int:
        """Payloads queued and not yet acknowledged."""
        return len(self._outgoing)

    # Implementations call `_contact()` whenever the learner answers (an acknowledgement, a
    # handshake or heartbeat reply, parameters), so a silent learner is noticed within seconds.
    _last_contact: float | None = None

    def _contact(self) -> None:
        self._last_contact = time.monotonic()

    def seconds_since_contact(self) -> float:
        """Seconds since the learner last answered (counted from creation before it ever has);
        the actor's watchdog stops the robot when this grows past its limit."""
        if self._last_contact is None:
            self._contact()
        return time.monotonic() - self._last_contact

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
