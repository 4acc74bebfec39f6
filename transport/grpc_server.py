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
  error naming the client, and only that client's call fails.
"""

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
from transport.grpc_options import META_CLIENT_ID, META_PARAM_CODEC, META_SEQ, server_options
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
from transport.queues import DuplicateFilter, NewestSlot, PayloadQueue

log = logging.getLogger(__name__)
_POLL_S = 0.25  # how often blocked handlers re-check "client gone / server stopping"


class GrpcLearnerServer(LearnerTransport):
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        max_actors: int = 16,
        push_frequency_s: float = DEFAULT_PUSH_FREQUENCY_S,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        queue_max_items: int = DEFAULT_LEARNER_QUEUE_ITEMS,
        queue_max_bytes: int = DEFAULT_QUEUE_BYTES,
    ):
        self.host, self._requested_port = host, port
        self.push_frequency_s = push_frequency_s
        self.max_payload_bytes = max_payload_bytes
        self.max_workers = 3 * max_actors + 2
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
        self._port = self._server.add_insecure_port(f"{self.host}:{self._requested_port}")
        if self._port == 0:
            raise OSError(f"could not bind {self.host}:{self._requested_port}")
        self._server.start()
        log.info("gRPC learner listening on %s (%d workers)", self.address, self.max_workers)
        return self

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

    def stream_parameters(self, context: grpc.ServicerContext):
        client, metadata = _caller(context)
        hiljax_actor = META_CLIENT_ID in metadata
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

    def receive(self, kind: str, request_iterator, context: grpc.ServicerContext):
        client, metadata = _caller(context)
        seq = _int_or_none(metadata.get(META_SEQ))
        assembler = chunking.ChunkAssembler(self.max_payload_bytes)
        try:
            for message in request_iterator:
                payload = assembler.feed(message.transfer_state, message.data)
                if payload is not None:
                    self._accept(kind, client, seq, payload, context)
                    seq = None if seq is None else seq + 1
        except PayloadError as error:
            log.error("refused %s from client %s: %s", kind, client, error)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return services_pb2.Empty()

    def _accept(self, kind: str, client: str, seq: int | None, payload: bytes, context) -> None:
        if seq is not None and self._duplicates.seen(client, seq):
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
        while not self._queues[kind].put(item, len(payload), timeout=_POLL_S):
            if self._stopping.is_set() or not context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, "learner stopping; payload not accepted")
        if seq is not None:
            self._duplicates.mark(client, seq)


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

    def Ready(self, request, context):
        return services_pb2.Empty()

    def StreamParameters(self, request, context):
        return self.learner.stream_parameters(context)

    def SendTransitions(self, request_iterator, context):
        return self.learner.receive(KIND_TRANSITIONS, request_iterator, context)

    def SendInteractions(self, request_iterator, context):
        return self.learner.receive(KIND_INTERACTIONS, request_iterator, context)


def _caller(context: grpc.ServicerContext) -> tuple[str, dict[str, str]]:
    """(client id, invocation metadata); a stock actor is named by its peer address."""
    metadata = {
        key: value for key, value in context.invocation_metadata() if isinstance(value, str)
    }
    return metadata.get(META_CLIENT_ID) or context.peer(), metadata


def _int_or_none(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None
