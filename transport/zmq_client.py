"""The actor's side of the ZeroMQ fast path (see zmq_protocol.py for the frames).

One I/O thread owns the DEALER (payloads out, acknowledgements in) and the SUB (parameters).
Payloads leave the send queue only when acknowledged; at most `window` are in flight. They are
resent at once when the learner restarts (a new instance id in WELCOME) and, as a fallback,
when no acknowledgement came for `ack_timeout_s` (doubling up to a minute).

With CURVE keys (the learner's public key, the actor's own keypair) both sockets encrypt and the
learner knows the actor by its key. Sends never block the I/O thread: a message the full send
pipe refuses stays in flight and goes again with the next resend.
"""

import logging
import threading
import time

import zmq

from transport import zmq_protocol as proto
from transport.errors import PayloadError
from transport.interface import (
    CODEC_HILJAX,
    CODECS,
    DEFAULT_ACTOR_QUEUE_ITEMS,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_QUEUE_BYTES,
    KIND_INTERACTIONS,
    KIND_TRANSITIONS,
    ActorTransport,
    new_client_id,
    params_topic,
    unpack_parameters,
)
from transport.queues import Backoff, NewestSlot
from transport.security import checked_name

log = logging.getLogger(__name__)
_KIND_FRAMES = {KIND_TRANSITIONS: proto.KIND_T, KIND_INTERACTIONS: proto.KIND_I}
_MAX_ACK_TIMEOUT_S = 60.0


class ZmqActorClient(ActorTransport):
    def __init__(
        self,
        address: str,
        *,
        client_id: str | None = None,
        param_codec: str = CODEC_HILJAX,
        max_queue_items: int = DEFAULT_ACTOR_QUEUE_ITEMS,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        spool_dir: str | None = None,
        window: int = 4,
        ack_timeout_s: float = 5.0,
        heartbeat_s: float = 0.5,
        curve_server_public: str | None = None,
        curve_client_secret: str | None = None,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    ):
        if param_codec not in CODECS:
            raise ValueError(f"unknown parameter codec {param_codec!r}")
        self.host, self.port = proto.split_address(address)
        # The learner refuses ids it could confuse with its own "id@actor" keys: fail here.
        self.client_id = checked_name(client_id or new_client_id())
        self.param_codec = param_codec
        self.max_payload_bytes = max_payload_bytes
        self.window, self.ack_timeout_s, self.heartbeat_s = window, ack_timeout_s, heartbeat_s
        self.max_backoff_s = max_backoff_s
        if (curve_server_public is None) != (curve_client_secret is None):
            raise ValueError("CURVE needs both curve_server_public and curve_client_secret")
        self._curve = None if curve_server_public is None else (
            proto.load_curve_public(curve_server_public),
            proto.load_curve_secret(curve_client_secret),
        )
        self._outgoing = self._make_outgoing(max_queue_items, max_queue_bytes,
                                             max_payload_bytes, spool_dir)
        self._parameters = NewestSlot()
        self._ready = threading.Event()
        self._hello_now = threading.Event()  # ready() wants a handshake without waiting a period
        self._closed = threading.Event()
        self._context = zmq.Context()
        self._waker = proto.Waker(self._context)
        self._thread = threading.Thread(target=self._run, name="actor-zmq", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ actor API

    def ready(self, timeout: float) -> bool:
        self._ready.clear()  # ask for a fresh handshake; the I/O thread retries it with backoff
        self._hello_now.set()
        self._waker.wake()
        return self._ready.wait(timeout)

    def _wake_sender(self) -> None:
        self._waker.wake()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._outgoing.close()
        self._waker.wake()
        self._thread.join(timeout=5.0)
        self._context.term()

    # ------------------------------------------------------------------ I/O thread

    def _run(self) -> None:
        link = _Link(self)
        try:
            while not self._closed.is_set():
                link.step()
        except Exception:
            log.exception("ZeroMQ actor I/O thread crashed")
        finally:
            link.close()
            self._waker.close()


class _Link:
    """State of the I/O thread: sockets, in-flight payloads, handshake and timers."""

    def __init__(self, owner: ZmqActorClient):
        self.owner = owner
        self.dealer = owner._context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.RECONNECT_IVL, 100)
        self.dealer.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self.dealer.setsockopt(zmq.SNDHWM, proto.ACTOR_SNDHWM)
        self.dealer.setsockopt(zmq.RCVHWM, proto.ACTOR_RCVHWM)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, proto.CONTROL_MAX_BYTES)
        self._secure(self.dealer)
        self.dealer.connect(f"tcp://{owner.host}:{owner.port}")
        self.sub: zmq.Socket | None = None
        self.param_port: int | None = None
        self.instance: bytes | None = None
        self.in_flight: dict[int, object] = {}  # seq -> Outgoing
        self.last_sent_seq = -1
        self.oldest_send = 0.0
        self.ack_timeout = owner.ack_timeout_s
        self.hello_backoff = Backoff(maximum=owner.max_backoff_s)
        self.next_hello = 0.0

    def _secure(self, socket: zmq.Socket) -> None:
        if self.owner._curve is not None:
            server_public, keys = self.owner._curve
            proto.make_curve_client(socket, server_public, keys)

    def _post(self, frames: list) -> bool:
        """Send without ever blocking the I/O thread; False when the send pipe is full (the
        learner has been away long enough to fill it: what matters is resent later)."""
        try:
            self.dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        try:  # tell the learner at once instead of letting it time us out
            self.dealer.send_multipart([proto.GOODBYE, self.owner.client_id.encode()], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self.dealer.close(linger=100)
        if self.sub is not None:
            self.sub.close(linger=0)

    def step(self) -> None:
        poller = zmq.Poller()
        poller.register(self.owner._waker.receiver, zmq.POLLIN)
        poller.register(self.dealer, zmq.POLLIN)
        if self.sub is not None:
            poller.register(self.sub, zmq.POLLIN)
        events = dict(poller.poll(self._wait_ms()))
        if self.owner._waker.receiver in events:
            self.owner._waker.drain()
        if self.dealer in events:
            self._read_dealer()
        if self.sub is not None and self.sub in events:
            self._read_parameters()
        self._say_hello_if_due()
        self._resend_if_stale()
        self._send_new()

    def _wait_ms(self) -> int:
        return max(0, min(200, int((self.next_hello - time.monotonic()) * 1000) + 1))

    # -- handshake and heartbeat

    def _say_hello_if_due(self) -> None:
        now = time.monotonic()
        if self.owner._hello_now.is_set():
            self.owner._hello_now.clear()
            self.hello_backoff.reset()
            self.next_hello = now
        if now < self.next_hello:
            return
        kind = proto.HEARTBEAT if self.owner._ready.is_set() else proto.HELLO
        self._post([kind, self.owner.client_id.encode()])
        delay = (
            self.owner.heartbeat_s
            if self.owner._ready.is_set()
            else self.hello_backoff.next_delay()
        )
        self.next_hello = now + delay

    def _welcome(self, instance: bytes, param_port: int) -> None:
        if self.instance is not None and instance != self.instance:
            log.info("learner restarted; resending %d unacknowledged payloads", len(self.in_flight))
            self._resend_all()
        self.instance = instance
        if param_port != self.param_port:
            self._subscribe(param_port)
        self.hello_backoff.reset()
        self.owner._ready.set()

    def _subscribe(self, param_port: int) -> None:
        if self.sub is not None:
            self.sub.close(linger=0)
        self.sub = self.owner._context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.CONFLATE, 1)  # keep only the newest parameters
        self.sub.setsockopt(zmq.RCVHWM, proto.PARAMETERS_HWM)
        self.sub.setsockopt(zmq.MAXMSGSIZE,
                            self.owner.max_payload_bytes + proto.FRAME_OVERHEAD_BYTES)
        self._secure(self.sub)
        self.sub.setsockopt(zmq.SUBSCRIBE, params_topic(self.owner.param_codec))
        self.sub.connect(f"tcp://{self.owner.host}:{param_port}")
        self.param_port = param_port

    # -- inbound

    def _read_dealer(self) -> None:
        while True:
            try:
                frames = self.dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = frames[0]
            self.owner._contact()  # any reply: the learner is there (heartbeats get WELCOME)
            if kind == proto.ACK and len(frames) == 2:
                self._acknowledged(proto.unpack_seq(frames[1]))
            elif kind == proto.NACK and len(frames) == 3:
                seq = proto.unpack_seq(frames[1])
                log.error("learner refused payload %d: %s", seq, frames[2].decode(errors="replace"))
                self._acknowledged(seq)  # resending cannot help
            elif kind == proto.WELCOME and len(frames) == 3:
                self._welcome(frames[1], int(frames[2]))

    def _acknowledged(self, seq: int) -> None:
        if self.in_flight.pop(seq, None) is not None:
            self.owner._outgoing.ack(seq)
            self.ack_timeout = self.owner.ack_timeout_s
            self.oldest_send = time.monotonic()

    def _read_parameters(self) -> None:
        while True:
            try:
                frame = self.sub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                _codec, version, payload = unpack_parameters(frame.buffer)
            except PayloadError as error:
                log.error("ignored bad parameters from the learner: %s", error)
                continue
            self.owner._parameters.offer(version, payload)

    # -- outbound

    def _send(self, entry) -> None:
        frames = [
            _KIND_FRAMES[entry.kind],
            self.owner.client_id.encode(),
            proto.pack_seq(entry.seq),
            entry.payload,
        ]
        if not self._post(frames):
            log.debug("send pipe full; payload %d goes with the next resend", entry.seq)

    def _send_new(self) -> None:
        room = self.owner.window - len(self.in_flight)
        if room <= 0:
            return
        for entry in self.owner._outgoing.after(self.last_sent_seq, room):
            if not self.in_flight:
                self.oldest_send = time.monotonic()
            self._send(entry)
            self.in_flight[entry.seq] = entry
            self.last_sent_seq = entry.seq

    def _resend_all(self) -> None:
        for entry in list(self.in_flight.values()):
            self._send(entry)
        self.oldest_send = time.monotonic()

    def _resend_if_stale(self) -> None:
        if self.in_flight and time.monotonic() - self.oldest_send > self.ack_timeout:
            log.warning(
                "no acknowledgement for %.1f s; resending %d payloads",
                self.ack_timeout,
                len(self.in_flight),
            )
            self._resend_all()
            self.ack_timeout = min(_MAX_ACK_TIMEOUT_S, self.ack_timeout * 2)
