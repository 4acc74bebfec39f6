"""The learner's side of the ZeroMQ fast path (see zmq_protocol.py for the frames).

One I/O thread owns both sockets (ZeroMQ sockets are not thread-safe); the learner's threads
talk to it through the bounded queues and a Waker. When an inbound queue is full the thread
stops reading the ROUTER, so payloads wait in the actors' windows (back-pressure).
"""

import logging
import threading
import time
from collections.abc import Mapping

import zmq

from transport import zmq_protocol as proto
from transport.errors import PayloadError
from transport.interface import (
    CODECS,
    DEFAULT_HOST,
    DEFAULT_LEARNER_QUEUE_ITEMS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PORT,
    DEFAULT_PUSH_FREQUENCY_S,
    DEFAULT_QUEUE_BYTES,
    KIND_INTERACTIONS,
    KIND_TRANSITIONS,
    LearnerTransport,
    Payload,
    Received,
    identify_codec,
    normalise_parameters,
    pack_parameters,
)
from transport.queues import DuplicateFilter, PayloadQueue

log = logging.getLogger(__name__)
_KINDS = {proto.KIND_T: KIND_TRANSITIONS, proto.KIND_I: KIND_INTERACTIONS}
_IDLE_POLL_MS = 200
_BACKLOG_POLL_MS = 5


class ZmqLearnerServer(LearnerTransport):
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        push_frequency_s: float = DEFAULT_PUSH_FREQUENCY_S,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        queue_max_items: int = DEFAULT_LEARNER_QUEUE_ITEMS,
        queue_max_bytes: int = DEFAULT_QUEUE_BYTES,
        client_timeout_s: float = 3.0,
    ):
        self.host, self._requested_port = host, port
        self.push_frequency_s = push_frequency_s
        self.max_payload_bytes = max_payload_bytes
        self.client_timeout_s = client_timeout_s
        self._duplicates = DuplicateFilter()
        self._queues = {
            KIND_TRANSITIONS: PayloadQueue(queue_max_items, queue_max_bytes),
            KIND_INTERACTIONS: PayloadQueue(queue_max_items, queue_max_bytes),
        }
        self._instance = proto.new_instance_id()
        self._params_lock = threading.Lock()
        self._params: dict[str, tuple[int, bytes]] = {}  # codec -> (version, envelope)
        self._last_seen: dict[str, float] = {}
        self._stopping = threading.Event()
        self._context: zmq.Context | None = None
        self._thread: threading.Thread | None = None
        self._port = self._param_port = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "ZmqLearnerServer":
        self._started = True
        self._context = zmq.Context()
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, self.max_payload_bytes + 4096)  # oversize: dropped
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        port = "*" if self._requested_port == 0 else str(self._requested_port)
        self._router.bind(f"tcp://{self.host}:{port}")
        self._port = proto.bound_port(self._router)
        self._xpub = self._context.socket(zmq.XPUB)
        self._xpub.setsockopt(zmq.LINGER, 0)
        self._xpub.setsockopt(zmq.XPUB_VERBOSE, 1)  # report every subscriber, not only the first
        self._xpub.setsockopt(zmq.CONFLATE, 1)  # newest parameters win in every outbound pipe
        self._xpub.bind(f"tcp://{self.host}:*")
        self._param_port = proto.bound_port(self._xpub)
        self._waker = proto.Waker(self._context)
        self._thread = threading.Thread(target=self._run, name="learner-zmq", daemon=True)
        self._thread.start()
        log.info("ZeroMQ learner on %s (parameters on port %d)", self.address, self._param_port)
        return self

    def stop(self, grace: float = 1.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._waker.wake()
        self._thread.join(timeout=grace + 5.0)
        self._thread = None
        self._context.term()

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    @property
    def parameter_port(self) -> int:
        """The XPUB port (actors learn it from the WELCOME reply; it changes on restart)."""
        return self._param_port

    # ------------------------------------------------------------------ learner API

    def publish_parameters(self, payloads: Mapping[str, Payload] | Payload, version: int) -> None:
        envelopes = {
            codec: (version, pack_parameters(codec, version, payload))
            for codec, payload in normalise_parameters(payloads).items()
        }
        with self._params_lock:
            self._params.update(envelopes)
        if self._thread is not None:
            self._waker.wake()

    def connected_clients(self) -> set[str]:
        now = time.monotonic()
        return {
            c for c, seen in dict(self._last_seen).items() if now - seen < self.client_timeout_s
        }

    # ------------------------------------------------------------------ I/O thread

    def _run(self) -> None:
        state = _LoopState()
        try:
            while not self._stopping.is_set():
                self._poll_once(state)
        except Exception:  # a bug here must not die silently: the learner would just stall
            log.exception("ZeroMQ learner I/O thread crashed")
        finally:
            for socket in (self._router, self._xpub):
                socket.close(linger=0)
            self._waker.close()

    def _poll_once(self, state: "_LoopState") -> None:
        poller = zmq.Poller()
        poller.register(self._waker.receiver, zmq.POLLIN)
        poller.register(self._xpub, zmq.POLLIN)
        if not state.backlog:  # back-pressure: leave payloads in the actors' windows
            poller.register(self._router, zmq.POLLIN)
        timeout = _BACKLOG_POLL_MS if state.backlog else self._publish_wait_ms(state)
        events = dict(poller.poll(timeout))
        if self._waker.receiver in events:
            self._waker.drain()
        if self._xpub in events:
            self._read_subscriptions(state)
        if state.backlog:
            self._drain_backlog(state)
        elif self._router in events:
            for _ in range(64):  # bounded batch so publishing is never starved
                try:
                    frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._handle(frames, state)
                if state.backlog:
                    break
        self._publish_if_due(state)

    def _handle(self, frames: list, state: "_LoopState") -> None:
        identity, kind = frames[0].bytes, frames[1].bytes if len(frames) > 1 else b""
        client = frames[2].bytes.decode(errors="replace") if len(frames) > 2 else "?"
        if kind in (proto.HELLO, proto.HEARTBEAT) and len(frames) == 3:
            self._last_seen[client] = time.monotonic()
            self._router.send_multipart(
                [identity, proto.WELCOME, self._instance, str(self._param_port).encode()]
            )
            return
        if kind == proto.GOODBYE and len(frames) == 3:
            self._last_seen.pop(client, None)
            return
        if kind not in _KINDS or len(frames) != 5:
            log.error(
                "refused a malformed message (%d frames, kind %r) from client %s",
                len(frames),
                kind,
                client,
            )
            return
        self._last_seen[client] = time.monotonic()
        try:
            seq = proto.unpack_seq(frames[3].bytes)
        except ValueError:
            log.error("refused a message with a bad sequence frame from client %s", client)
            return
        self._accept(identity, client, _KINDS[kind], seq, frames[4].buffer, state)

    def _accept(
        self, identity: bytes, client: str, kind: str, seq: int, payload: memoryview, state
    ) -> None:
        if self._duplicates.seen(client, seq):
            self._router.send_multipart([identity, proto.ACK, proto.pack_seq(seq)])
            return
        try:
            if len(payload) > self.max_payload_bytes:
                raise PayloadError(
                    f"payload too large: {len(payload)} > {self.max_payload_bytes} bytes"
                )
            codec = identify_codec(payload)
        except PayloadError as error:
            log.error("refused %s %d from client %s: %s", kind, seq, client, error)
            self._router.send_multipart(
                [identity, proto.NACK, proto.pack_seq(seq), str(error).encode()]
            )
            return
        state.backlog.append((identity, client, seq, Received(client, codec, payload, kind)))
        self._drain_backlog(state)

    def _drain_backlog(self, state: "_LoopState") -> None:
        while state.backlog:
            identity, client, seq, item = state.backlog[0]
            if not self._queues[item.kind].put(item, len(item.payload), timeout=0):
                return
            state.backlog.pop(0)
            self._duplicates.mark(client, seq)
            self._router.send_multipart([identity, proto.ACK, proto.pack_seq(seq)])

    def _read_subscriptions(self, state: "_LoopState") -> None:
        while True:
            try:
                message = self._xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message[:1] == b"\x01":  # a (re)subscription: send the current parameters again
                state.new_subscriber = True

    def _publish_wait_ms(self, state: "_LoopState") -> int:
        if not self._publish_pending(state):
            return _IDLE_POLL_MS
        wait_s = state.published_at + self.push_frequency_s - time.monotonic()
        # clamp before int(): before the first push published_at is -inf, so wait_s is too
        wait_s = max(0.0, min(_IDLE_POLL_MS / 1000, wait_s))
        return int(wait_s * 1000) + 1

    def _publish_pending(self, state: "_LoopState") -> bool:
        with self._params_lock:
            newest = dict(self._params)
        return bool(newest) and (
            state.new_subscriber
            or any(
                version > state.published.get(codec, -1) for codec, (version, _) in newest.items()
            )
        )

    def _publish_if_due(self, state: "_LoopState") -> None:
        if not self._publish_pending(state):
            return
        if time.monotonic() - state.published_at < self.push_frequency_s:
            return  # at most one push per period, newest wins
        with self._params_lock:
            newest = dict(self._params)
        for codec, (version, envelope) in newest.items():
            if state.new_subscriber or version > state.published.get(codec, -1):
                self._xpub.send(envelope, copy=False)
                state.published[codec] = version
        state.new_subscriber = False
        state.published_at = time.monotonic()


class _LoopState:
    def __init__(self):
        self.backlog: list = []  # accepted payloads waiting for room in a full queue
        self.published: dict[str, int] = {codec: -1 for codec in CODECS}
        self.published_at = float("-inf")
        self.new_subscriber = False
