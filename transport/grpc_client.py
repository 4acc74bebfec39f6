"""The actor's side of the LearnerService over gRPC.

Two background threads:
- the sender takes the oldest queued payload and sends it as one SendTransitions /
  SendInteractions call (chunked, with the actor id and the payload's sequence number in the
  metadata); the Empty reply is the acknowledgement, and only then does the payload leave the
  queue. Failures are retried with backoff, so a learner restart loses nothing (the learner
  drops what it had already accepted);
- the parameter reader keeps a StreamParameters call open (reopening it with backoff after a
  failure) and keeps only the newest parameters.
With `tls_ca` the channel is TLS and trusts only that CA (plus the actor's own certificate for
mutual TLS); with `token_file` every call carries `authorization: Bearer <token>`.
"""

import logging
import threading
import time

import grpc

from transport import chunks as chunking
from transport._generated import services_pb2, services_pb2_grpc
from transport.errors import PayloadError
from transport.grpc_options import (
    META_AUTHORIZATION,
    META_CLIENT_ID,
    META_PARAM_CODEC,
    META_SEQ,
    channel_credentials,
    channel_options,
)
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
    unpack_parameters,
)
from transport.queues import Backoff, NewestSlot, Outgoing
from transport.security import BEARER, checked_name, read_secret_file

log = logging.getLogger(__name__)
_MESSAGES = {
    KIND_TRANSITIONS: services_pb2.Transition,
    KIND_INTERACTIONS: services_pb2.InteractionMessage,
}
# The learner refused the payload itself: resending cannot help.
_FATAL_CODES = (grpc.StatusCode.INVALID_ARGUMENT,)
HEARTBEAT_S = 1.0  # an idle actor asks Ready this often (seconds_since_contact stays fresh)
# The learner refused our credentials: retrying cannot help until someone fixes them.
_REFUSED_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class GrpcActorClient(ActorTransport):
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
        send_timeout_s: float = 60.0,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        token_file: str | None = None,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    ):
        if param_codec not in CODECS:
            raise ValueError(f"unknown parameter codec {param_codec!r}")
        self.address = address
        # The learner refuses ids it could confuse with its own "id@actor" keys: fail here.
        self.client_id = checked_name(client_id or new_client_id())
        self.param_codec = param_codec
        self.max_payload_bytes = max_payload_bytes
        self.send_timeout_s = send_timeout_s
        self.max_backoff_s = max_backoff_s
        self._metadata = ((META_CLIENT_ID, self.client_id), (META_PARAM_CODEC, param_codec))
        if token_file is not None:
            self._metadata += ((META_AUTHORIZATION, BEARER + read_secret_file(token_file)),)
        # The spool first: a busy one (SpoolBusy) must not leave a channel behind.
        self._outgoing = self._make_outgoing(max_queue_items, max_queue_bytes,
                                             max_payload_bytes, spool_dir)
        self._channel = _make_channel(address, tls_ca, tls_cert, tls_key)
        self._stub = services_pb2_grpc.LearnerServiceStub(self._channel)
        self._parameters = NewestSlot()
        self._closed = threading.Event()
        self._param_call = None
        self._call_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send_loop, name="actor-grpc-send", daemon=True),
            threading.Thread(target=self._parameter_loop, name="actor-grpc-params", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ actor API

    def ready(self, timeout: float) -> bool:
        deadline = _Deadline(timeout)
        backoff = Backoff(maximum=self.max_backoff_s)
        while not self._closed.is_set():
            try:
                self._stub.Ready(
                    services_pb2.Empty(),
                    timeout=max(0.05, min(1.0, deadline.left())),
                    metadata=self._metadata,
                )
                self._contact()
                return True
            except grpc.RpcError as error:
                if error.code() in _REFUSED_CODES:
                    log.error("the learner at %s refused this actor: %s (check the actor's "
                              "token / certificate)", self.address, error.details())
                    return False
                log.debug("Ready failed: %s", error.code())
            if deadline.left() <= 0 or backoff.sleep(self._closed) or deadline.left() <= 0:
                return False
        return False

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._outgoing.close()
        with self._call_lock:
            if self._param_call is not None:
                self._param_call.cancel()
        self._channel.close()  # cancels in-flight calls, which unblocks both threads
        for thread in self._threads:
            thread.join(timeout=5.0)

    # ------------------------------------------------------------------ sender

    def _send_loop(self) -> None:
        backoff = Backoff(maximum=self.max_backoff_s)
        unreachable_since = None  # tell the user once per outage, not once per retry
        while not self._closed.is_set():
            entry = self._outgoing.first(timeout=0.5)
            if entry is None:
                self._heartbeat_if_due()
                continue
            try:
                self._send_one(entry)
                self._contact()
                self._outgoing.ack(entry.seq)
                backoff.reset()
                if unreachable_since is not None:
                    log.info("learner at %s is back after %.0f s; sending %d queued payloads",
                             self.address, time.monotonic() - unreachable_since,
                             len(self._outgoing))
                    unreachable_since = None
            except grpc.RpcError as error:
                if self._closed.is_set():
                    return
                if error.code() in _FATAL_CODES:
                    log.error(
                        "learner refused %s payload %d: %s", entry.kind, entry.seq, error.details()
                    )
                    self._outgoing.ack(entry.seq)  # drop it: resending cannot help
                    continue
                if unreachable_since is None:
                    unreachable_since = time.monotonic()
                    if error.code() in _REFUSED_CODES:
                        log.error("the learner at %s refused this actor's credentials (%s): "
                                  "payloads stay queued (bounded)", self.address, error.details())
                    log.warning("learner at %s unreachable (%s): payloads stay queued (bounded) "
                                "and are resent when it is back", self.address, error.code())
                log.debug(
                    "sending %s %d failed (%s); retrying", entry.kind, entry.seq, error.code()
                )
                backoff.sleep(self._closed)

    def _heartbeat_if_due(self) -> None:
        """With nothing to send, ask Ready (a unary call LeRobot's service has) once a second,
        so the contact clock also runs while the actor is idle."""
        if self._closed.is_set() or self.seconds_since_contact() < HEARTBEAT_S:
            return
        try:
            self._stub.Ready(services_pb2.Empty(), timeout=HEARTBEAT_S, metadata=self._metadata)
            self._contact()
        except (grpc.RpcError, ValueError):  # unreachable (or the channel closed meanwhile)
            pass  # the clock keeps running

    def _send_one(self, entry: Outgoing) -> None:
        message = _MESSAGES[entry.kind]
        requests = (
            message(transfer_state=state, data=data)
            for state, data in chunking.iter_chunks(entry.payload)
        )
        method = (
            self._stub.SendTransitions
            if entry.kind == KIND_TRANSITIONS
            else self._stub.SendInteractions
        )
        method(
            requests,
            timeout=self.send_timeout_s,
            wait_for_ready=True,
            metadata=self._metadata + ((META_SEQ, str(entry.seq)),),
        )

    # ------------------------------------------------------------------ parameters

    def _parameter_loop(self) -> None:
        backoff = Backoff(maximum=self.max_backoff_s)
        while not self._closed.is_set():
            try:
                with self._call_lock:
                    if self._closed.is_set():
                        return
                    self._param_call = self._stub.StreamParameters(
                        services_pb2.Empty(), metadata=self._metadata, wait_for_ready=True
                    )
                self._read_parameters(self._param_call, backoff)
            except grpc.RpcError as error:
                if self._closed.is_set():
                    return
                log.debug("parameter stream broke (%s); reopening", error.code())
            backoff.sleep(self._closed)

    def _read_parameters(self, call, backoff: Backoff) -> None:
        assembler = chunking.ChunkAssembler(self.max_payload_bytes + 64)
        for message in call:
            try:
                frame = assembler.feed(message.transfer_state, message.data)
                if frame is None:
                    continue
                _codec, version, payload = unpack_parameters(frame)
            except PayloadError as error:
                log.error("ignored bad parameters from the learner: %s", error)
                continue
            self._parameters.offer(version, payload)
            self._contact()
            backoff.reset()


def _make_channel(address: str, tls_ca: str | None, tls_cert: str | None,
                  tls_key: str | None) -> grpc.Channel:
    if tls_ca is None:
        if tls_cert is not None or tls_key is not None:
            raise ValueError("a client certificate needs tls_ca (the CA the learner's is from)")
        return grpc.insecure_channel(address, options=channel_options())
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("mutual TLS needs both tls_cert and tls_key")
    credentials = channel_credentials(tls_ca, tls_cert, tls_key)
    return grpc.secure_channel(address, credentials, options=channel_options())


class _Deadline:
    def __init__(self, timeout: float):
        self._end = time.monotonic() + timeout

    def left(self) -> float:
        return self._end - time.monotonic()
