"""The learner's side of the ZeroMQ fast path (see zmq_protocol.py for the frames).

One I/O thread owns both sockets (ZeroMQ sockets are not thread-safe); the learner's threads
talk to it through the bounded queues and a Waker. When an inbound queue is full the thread
stops reading the ROUTER, so payloads wait in the actors' windows (back-pressure).

With CURVE keys both sockets encrypt and admit only the allowed client keys; a client's
identity is then its key's actor name, else its address (transport/security.py explains how
that scopes the duplicate filter).
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
from transport.security import Caller, checked_name, warn_if_exposed

log = logging.getLogger(__name__)
_KINDS = {proto.KIND_T: KIND_TRANSITIONS, proto.KIND_I: KIND_INTERACTIONS}
_IDLE_POLL_MS = 200
_BACKLOG_POLL_MS = 5
# Accepted payloads waiting for room in a full queue (or under their client's cap): while
# fewer wait, the ROUTER is still read, so one capped actor cannot stall the others.
MAX_BACKLOG = 16
_MAX_TRACKED_CLIENTS = 4096  # connected_clients() entries before silent ones are forgotten


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
        curve_server_secret: str | None = None,
        curve_clients_dir: str | None = None,
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
        # Keys are read now, so a missing or bad file stops the learner before it serves.
        if (curve_server_secret is None) != (curve_clients_dir is None):
            raise ValueError("CURVE needs both curve_server_secret and curve_clients_dir")
        self._curve_keys = (
            None if curve_server_secret is None else proto.load_curve_secret(curve_server_secret)
        )
        self._curve_clients = (
            None if curve_clients_dir is None else proto.allowed_curve_clients(curve_clients_dir)
        )
        self._authenticator = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "ZmqLearnerServer":
        self._started = True
        self._context = zmq.Context()
        if self._curve_keys is not None:  # before any socket binds: no unchecked handshake
            self._authenticator = proto.CurveAuthenticator(self._context, self._curve_clients)
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        # Per frame: a larger payload frame ends the sender's connection before it is buffered.
        self._router.setsockopt(zmq.MAXMSGSIZE,
                                self.max_payload_bytes + proto.FRAME_OVERHEAD_BYTES)
        self._router.setsockopt(zmq.RCVHWM, proto.LEARNER_RCVHWM)
        self._router.setsockopt(zmq.SNDHWM, proto.LEARNER_SNDHWM)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._secure(self._router)
        port = "*" if self._requested_port == 0 else str(self._requested_port)
        self._router.bind(f"tcp://{self.host}:{port}")
        self._port = proto.bound_port(self._router)
        self._xpub = self._context.socket(zmq.XPUB)
        self._xpub.setsockopt(zmq.LINGER, 0)
        self._xpub.setsockopt(zmq.XPUB_VERBOSE, 1)  # report every subscriber, not only the first
        self._xpub.setsockopt(zmq.CONFLATE, 1)  # newest parameters win in every outbound pipe
        self._xpub.setsockopt(zmq.SNDHWM, proto.PARAMETERS_HWM)
        self._xpub.setsockopt(zmq.RCVHWM, proto.LEARNER_RCVHWM)  # subscription messages
        self._xpub.setsockopt(zmq.MAXMSGSIZE, proto.CONTROL_MAX_BYTES)  # subscriptions are tiny
        self._secure(self._xpub)
        self._xpub.bind(f"tcp://{self.host}:*")
        self._param_port = proto.bound_port(self._xpub)
        self._waker = proto.Waker(self._context)
        self._thread = threading.Thread(target=self._run, name="learner-zmq", daemon=True)
        self._thread.start()
        log.info("ZeroMQ learner on %s (parameters on port %d, %s)", self.address,
                 self._param_port, self.protection or "plain: no CURVE")
        warn_if_exposed(log, "ZeroMQ", self.host, self.protection)
        return self

    @property
    def protection(self) -> str | None:
        """What protects the link, in words; None when nothing does."""
        return None if self._curve_keys is None else "CURVE"

    def _secure(self, socket: zmq.Socket) -> None:
        if self._curve_keys is not None:
            proto.make_curve_server(socket, self._curve_keys)

    def stop(self, grace: float = 1.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._waker.wake()
        self._thread.join(timeout=grace + 5.0)
        self._thread = None
        if self._authenticator is not None:
            self._authenticator.stop()
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
        if len(state.backlog) < MAX_BACKLOG:  # full: leave payloads in the actors' windows
            poller.register(self._router, zmq.POLLIN)
        timeout = _BACKLOG_POLL_MS if state.backlog else self._publish_wait_ms(state)
        events = dict(poller.poll(timeout))
        if self._waker.receiver in events:
            self._waker.drain()
        if self._xpub in events:
            self._read_subscriptions(state)
        if state.backlog:
            self._drain_backlog(state)
        if self._router in events:
            for _ in range(64):  # bounded batch so publishing is never starved
                if len(state.backlog) >= MAX_BACKLOG:
                    break
                try:
                    frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._handle(frames, state)
        self._publish_if_due(state)

    def _caller(self, frames: list) -> Caller | None:
        """Who sent `frames`: CURVE names the actor (User-Id); the address is only a scope."""
        host = proto.peer_property(frames[1], "Peer-Address") or "?"
        try:
            announced = checked_name(frames[2].bytes.decode(errors="replace"))
        except ValueError as error:
            log.error("refused a message from %s: %s", host, error)
            return None
        principal = None
        if self._curve_keys is not None:
            principal = proto.peer_property(frames[1], "User-Id")
        return Caller(host, host, announced, principal)

    def _handle(self, frames: list, state: "_LoopState") -> None:
        identity, kind = frames[0].bytes, frames[1].bytes if len(frames) > 1 else b""
        if len(frames) < 3:
            log.error("refused a malformed message (%d frames)", len(frames))
            return
        caller = self._caller(frames)
        if caller is None:
            return
        client = caller.name
        if kind in (proto.HELLO, proto.HEARTBEAT) and len(frames) == 3:
            self._note_seen(client)
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
        self._note_seen(client)
        try:
            seq = proto.unpack_seq(frames[3].bytes)
        except ValueError:
            log.error("refused a message with a bad sequence frame from client %s", client)
            return
        self._accept(identity, caller, _KINDS[kind], seq, frames[4].buffer, state)

    def _note_seen(self, client: str) -> None:
        now = time.monotonic()
        if client not in self._last_seen and len(self._last_seen) >= _MAX_TRACKED_CLIENTS:
            # Ids are cheap to make up: forget the silent ones rather than grow without bound.
            for stale in [c for c, t in self._last_seen.items()
                          if now - t >= self.client_timeout_s]:
                del self._last_seen[stale]
        self._last_seen[client] = now

    def _accept(
        self, identity: bytes, caller: Caller, kind: str, seq: int, payload: memoryview, state
    ) -> None:
        client = caller.name
        if self._duplicates.seen(caller.key, seq):
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
        if any(c.key == caller.key and s == seq for _, c, s, _ in state.backlog):
            return  # a resend of a payload still waiting for room: acknowledged once it fits
        state.backlog.append((identity, caller, seq, Received(client, codec, payload, kind)))
        self._drain_backlog(state)

    def _drain_backlog(self, state: "_LoopState") -> None:
        """Queue what fits, oldest first; a client whose payload does not fit (its per-client
        cap, or a full queue) keeps the rest of its payloads in order, and the others go on."""
        blocked: set = set()
        waiting = []
        for entry in state.backlog:
            identity, caller, seq, item = entry
            # The per-client byte cap counts by what the keys prove (the actor's principal).
            if caller.slot in blocked or not self._queues[item.kind].put(
                    item, len(item.payload), timeout=0, client=caller.slot):
                blocked.add(caller.slot)
                waiting.append(entry)
                continue
            self._duplicates.mark(caller.key, seq)
            self._router.send_multipart([identity, proto.ACK, proto.pack_seq(seq)])
        state.backlog[:] = waiting

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
