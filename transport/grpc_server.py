"""The learner's side of the LearnerService over gRPC (wire-identical to LeRobot's).

Differences from the reference, each fixing one of its faults:
- enough worker threads for `max_actors` actors (3 long-lived RPCs each for stock actors) and
  `maximum_concurrent_rpcs` equal to them, so an extra caller is refused, never left hanging;
- StreamParameters watches `context.is_active()` and a done-callback, so a vanished actor's
  stream ends and frees its thread; it sends only the newest parameters, at most once per
  push period, chunked once per version and shared by every stream;
- inbound queues are bounded (items and bytes); a full queue blocks the sender (back-pressure)
  and the acknowledgement (the Empty reply) only follows the enqueue;
- payload size limits, unknown chunk states and unknown formats are refused with a logged
  error naming the client, and only that client's call fails;
- optional TLS (mutual with `tls_client_ca`) and tokens, checked on every call: a caller who
  fails them gets UNAUTHENTICATED and nobody else notices; a client's identity is what its
  credentials prove (transport/security.py), and one client holds at most
  `max_calls_per_client` calls at once (RESOURCE_EXHAUSTED beyond).
"""

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent import futures

import grpc

from transport import chunks as chunking
from transport._generated import services_pb2, services_pb2_grpc
from transport.errors import PayloadError
from transport.grpc_options import (
    META_AUTHORIZATION,
    META_CLIENT_ID,
    META_PARAM_CODEC,
    META_SEQ,
    server_credentials,
    server_options,
)
from transport.interface import (
    CODEC_HILJAX,
    CODEC_LEROBOT,
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
from transport.queues import ByteBudget, DuplicateFilter, NewestSlot, PayloadQueue
from transport.security import (
    Caller,
    CallSlots,
    RefusalLog,
    TokenBook,
    checked_name,
    grpc_peer_host,
    read_secret_file,
    read_tokens_file,
    warn_if_exposed,
)

log = logging.getLogger(__name__)
_POLL_S = 0.25  # how often blocked handlers re-check "client gone / server stopping"
DEFAULT_INFLIGHT = 1 << 30  # bytes of arriving payloads all calls together may hold
_INFLIGHT_WAIT_S = 5.0  # a call waits this long for room before it is told to resend


class GrpcLearnerServer(LearnerTransport):
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        max_actors: int = 16,
        max_calls_per_client: int = 6,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_client_ca: str | None = None,
        tokens_file: str | None = None,
        token_file: str | None = None,
        max_inflight_bytes: int | None = None,
        push_frequency_s: float = DEFAULT_PUSH_FREQUENCY_S,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        queue_max_items: int = DEFAULT_LEARNER_QUEUE_ITEMS,
        queue_max_bytes: int = DEFAULT_QUEUE_BYTES,
    ):
        self.host, self._requested_port = host, port
        self.push_frequency_s = push_frequency_s
        self.max_payload_bytes = max_payload_bytes
        self.max_workers = 3 * max_actors + 2
        # Never the whole pool: one worker always stays for somebody else.
        self._slots = CallSlots(min(max_calls_per_client, self.max_workers - 1))
        # Without it, every worker could hold a payload of max_payload_bytes half-assembled.
        self._inflight = ByteBudget(max(max_payload_bytes, max_inflight_bytes or DEFAULT_INFLIGHT))
        # Credentials are read now, so a missing or bad file stops the learner before it serves.
        _check_tls_files(tls_cert, tls_key, tls_client_ca)
        self._credentials = (
            None if tls_cert is None else server_credentials(tls_cert, tls_key, tls_client_ca)
        )
        self._mutual_tls = tls_client_ca is not None
        self._tokens = TokenBook(
            read_tokens_file(tokens_file) if tokens_file else None,
            read_secret_file(token_file) if token_file else None,
        )
        self._refusals = RefusalLog(log)
        self._duplicates = DuplicateFilter()
        self._queues = {
            KIND_TRANSITIONS: PayloadQueue(queue_max_items, queue_max_bytes),
            KIND_INTERACTIONS: PayloadQueue(queue_max_items, queue_max_bytes),
        }
        # {codec: NewestSlot of (version, _ChunkedParameters)}
        self._parameters = {codec: NewestSlot() for codec in CODECS}
        self._clients: Counter[str] = Counter()
        self._clients_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: grpc.Server | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "GrpcLearnerServer":
        self._started = True
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="learner-grpc"
            ),
            options=server_options(),
            maximum_concurrent_rpcs=self.max_workers,
        )
        services_pb2_grpc.add_LearnerServiceServicer_to_server(_Servicer(self), self._server)
        where = f"{self.host}:{self._requested_port}"
        if self._credentials is None:
            self._port = self._server.add_insecure_port(where)
        else:
            self._port = self._server.add_secure_port(where, self._credentials)
        if self._port == 0:
            raise OSError(f"could not bind {self.host}:{self._requested_port}")
        self._server.start()
        log.info("gRPC learner listening on %s (%d workers, %s)", self.address, self.max_workers,
                 self.protection or "plain: no TLS, no tokens")
        # Tokens without TLS travel in clear text: no protection from anyone on the path.
        warn_if_exposed(log, "gRPC", self.host, self.protection if self._credentials else None)
        return self

    @property
    def protection(self) -> str | None:
        """What protects the link, in words; None when nothing does."""
        parts = [
            "mutual TLS" if self._mutual_tls else "TLS" if self._credentials else None,
            "tokens" if self._tokens else None,
        ]
        return " + ".join(p for p in parts if p) or None

    def stop(self, grace: float = 1.0) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace).wait(grace + 5.0)
            self._server = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    # ------------------------------------------------------------------ learner API

    def publish_parameters(self, payloads: Mapping[str, Payload] | Payload, version: int) -> None:
        for codec, payload in normalise_parameters(payloads).items():
            self._parameters[codec].offer(version, _ChunkedParameters(codec, version, payload))

    def connected_clients(self) -> set[str]:
        with self._clients_lock:
            return {client for client, count in self._clients.items() if count > 0}

    # ------------------------------------------------------------------ handlers

    def _track(self, client: str, delta: int) -> None:
        with self._clients_lock:
            self._clients[client] += delta
            if self._clients[client] <= 0:
                del self._clients[client]

    @contextlib.contextmanager
    def admitted(self, context: grpc.ServicerContext):
        """(caller, metadata) for the length of one call, holding one of the caller's slots.
        Aborts the call (only this one) when its credentials fail or it holds too many."""
        caller, metadata = self._identify(context)
        if not self._slots.acquire(caller.slot):
            self._refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, caller.host,
                         f"more than {self._slots.per_client} calls at once from {caller.name}")
        try:
            yield caller, metadata
        finally:
            self._slots.release(caller.slot)

    def _identify(self, context: grpc.ServicerContext) -> tuple[Caller, dict[str, str]]:
        metadata = {
            key: value for key, value in context.invocation_metadata() if isinstance(value, str)
        }
        peer = context.peer()
        host = grpc_peer_host(peer)
        announced = metadata.get(META_CLIENT_ID)
        if announced is not None:
            try:
                checked_name(announced)
            except ValueError as error:
                self._refuse(context, grpc.StatusCode.INVALID_ARGUMENT, host, str(error))
        principal = self._authenticate(context, metadata, host)
        return Caller(peer, host, announced, principal), metadata

    def _authenticate(self, context, metadata: dict[str, str], host: str) -> str | None:
        """The actor the credentials name (None: they name nobody, or there are none)."""
        principal = None
        if self._tokens:
            accepted, principal = self._tokens.identify(metadata.get(META_AUTHORIZATION))
            if not accepted:
                self._refuse(context, grpc.StatusCode.UNAUTHENTICATED, host,
                             "missing or unknown token")
        if self._mutual_tls:
            names = context.auth_context().get("x509_common_name") or [b""]
            common_name = names[0].decode(errors="replace")
            if principal is not None and common_name != principal:
                self._refuse(context, grpc.StatusCode.UNAUTHENTICATED, host,
                             f"the token of {principal!r} with the certificate of {common_name!r}")
            principal = common_name
        return principal

    def _refuse(self, context, code: grpc.StatusCode, host: str, reason: str) -> None:
        self._refusals.refused(reason, host)
        context.abort(code, reason)  # raises: only this call ends

    def stream_parameters(self, caller: Caller, metadata: dict[str, str], context):
        client = caller.name
        hiljax_actor = caller.announced is not None
        codec = metadata.get(META_PARAM_CODEC, CODEC_HILJAX if hiljax_actor else CODEC_LEROBOT)
        if codec not in CODECS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown parameter codec {codec!r}")
        gone = threading.Event()
        self._track(client, +1)
        context.add_callback(
            gone.set
        )  # runs when the RPC ends for any reason, client gone included
        log.info("actor %s subscribed to parameters (%s codec)", client, codec)
        try:
            yield from self._parameter_messages(
                codec, "envelope" if hiljax_actor else "bare", context, gone
            )
        finally:
            self._track(client, -1)
            log.info("parameter stream of %s ended", client)

    def _parameter_messages(self, codec: str, form: str, context, gone: threading.Event):
        sent_version, sent_at = -1, float("-inf")
        warned = False
        while not (gone.is_set() or self._stopping.is_set()) and context.is_active():
            wait = sent_at + self.push_frequency_s - time.monotonic()
            if wait > 0:  # at most one push per period, whatever the learner publishes
                gone.wait(min(wait, _POLL_S))
                continue
            newest = self._parameters[codec].wait_newer(sent_version, _POLL_S)
            if newest is None:
                if (
                    not warned
                    and sent_version < 0
                    and any(s.get() for s in self._parameters.values())
                ):
                    log.warning(
                        "an actor wants %s parameters but the learner publishes none", codec
                    )
                    warned = True
                continue
            version, parameters = newest
            yield from parameters.messages(form)
            sent_version, sent_at = version, time.monotonic()

    def receive(self, kind: str, caller: Caller, metadata: dict[str, str], request_iterator,
                context: grpc.ServicerContext):
        # Only an actor that announced itself numbers its payloads (its key is announced@scope).
        seq = _int_or_none(metadata.get(META_SEQ)) if caller.announced is not None else None
        assembler = chunking.ChunkAssembler(self.max_payload_bytes)
        reserved = 0  # of the in-flight budget, for the payload being assembled
        try:
            for message in request_iterator:
                if not self._inflight.reserve(len(message.data), _INFLIGHT_WAIT_S):
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  "the learner holds its limit of arriving payloads; resend later")
                reserved += len(message.data)
                payload = assembler.feed(message.transfer_state, message.data)
                if payload is not None:
                    self._accept(kind, caller, seq, payload, context)
                    seq = None if seq is None else seq + 1
                    self._inflight.release(reserved)  # now the queue's (or dropped)
                    reserved = 0
        except PayloadError as error:
            log.error("refused %s from client %s: %s", kind, caller.name, error)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        finally:
            self._inflight.release(reserved)
        return services_pb2.Empty()

    def _accept(self, kind: str, caller: Caller, seq: int | None, payload: bytes,
                context) -> None:
        client = caller.name
        if seq is not None and self._duplicates.seen(caller.key, seq):
            log.debug("dropped duplicate %s %d from %s", kind, seq, client)
            return
        try:
            codec = identify_codec(payload)
        except PayloadError as error:
            if seq is not None:
                raise  # a hiljax actor learns of the refusal and drops the payload
            log.error("refused %s payload from client %s: %s", kind, client, error)
            return  # a stock actor's stream carries on
        item = Received(client, codec, payload, kind)
        # The per-client byte cap counts by what the credentials prove (an actor's principal),
        # so new session ids do not buy an actor more of the queue.
        while not self._queues[kind].put(item, len(payload), timeout=_POLL_S,
                                         client=caller.slot):
            if self._stopping.is_set() or not context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, "learner stopping; payload not accepted")
        if seq is not None:
            self._duplicates.mark(caller.key, seq)


class _ChunkedParameters:
    """One published version, chunked into messages once per form and shared by all streams.

    "bare" is the torch.save payload as a stock actor expects it; "envelope" adds the version
    for hiljax actors. Each form is built on first use, so a form nobody asks for costs nothing.
    """

    def __init__(self, codec: str, version: int, payload: Payload):
        self.codec, self.version, self.payload = codec, version, payload
        self._forms: dict[str, list] = {}
        self._lock = threading.Lock()

    def messages(self, form: str) -> list:
        with self._lock:
            if form not in self._forms:
                raw = (
                    self.payload
                    if form == "bare"
                    else pack_parameters(self.codec, self.version, self.payload)
                )
                self._forms[form] = [
                    services_pb2.Parameters(transfer_state=state, data=data)
                    for state, data in chunking.iter_chunks(raw)
                ]
            return self._forms[form]


class _Servicer(services_pb2_grpc.LearnerServiceServicer):
    def __init__(self, learner: GrpcLearnerServer):
        self.learner = learner

    # Every method is admitted first: credentials checked, one of the caller's slots held.

    def Ready(self, request, context):
        with self.learner.admitted(context):
            return services_pb2.Empty()

    def StreamParameters(self, request, context):
        with self.learner.admitted(context) as (caller, metadata):
            yield from self.learner.stream_parameters(caller, metadata, context)

    def SendTransitions(self, request_iterator, context):
        with self.learner.admitted(context) as (caller, metadata):
            return self.learner.receive(KIND_TRANSITIONS, caller, metadata, request_iterator,
                                        context)

    def SendInteractions(self, request_iterator, context):
        with self.learner.admitted(context) as (caller, metadata):
            return self.learner.receive(KIND_INTERACTIONS, caller, metadata, request_iterator,
                                        context)


def _check_tls_files(cert: str | None, key: str | None, client_ca: str | None) -> None:
    if (cert is None) != (key is None):
        raise ValueError("TLS needs both tls_cert and tls_key")
    if client_ca is not None and cert is None:
        raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")


def _int_or_none(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None
