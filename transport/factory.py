"""The transport kinds, and the one place that turns a kind into a learner or actor transport.

Config checks and command lines take their choices from `KINDS` / `NETWORK_KINDS` and
`check_kind` instead of spelling the list out, and each kind's options class from
`SERVER_OPTIONS` / `CLIENT_OPTIONS`. Options every kind understands are plain keyword
arguments; the few that only one kind has travel in that kind's small options dataclass, so
nothing is silently dropped for the other kinds. Security options (TLS, tokens, CURVE) are
paths to the files `python -m hiljax.keys` writes; all None means a plain link.
"""

import dataclasses
from dataclasses import dataclass

from transport.interface import (
    CODEC_HILJAX,
    DEFAULT_ACTOR_QUEUE_ITEMS,
    DEFAULT_HOST,
    DEFAULT_LEARNER_QUEUE_ITEMS,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PORT,
    DEFAULT_PUSH_FREQUENCY_S,
    DEFAULT_QUEUE_BYTES,
    ActorTransport,
    LearnerTransport,
)

KINDS = ("grpc", "zmq", "inproc")  # every kind
NETWORK_KINDS = ("grpc", "zmq")  # kinds that cross processes (command-line `choices=`)


def check_kind(kind: str, allowed: tuple[str, ...] = KINDS) -> str:
    """`kind` if it is one of `allowed`, else a ValueError naming the choices."""
    if kind not in allowed:
        raise ValueError(f"transport must be one of {', '.join(allowed)}; got {kind!r}")
    return kind


# ----------------------------------------------------------------------------- per-kind options


def _require_positive(options, *names: str) -> None:
    """Refuse a non-positive size or period when the options are built, not when first used."""
    for name in names:
        if getattr(options, name) <= 0:
            raise ValueError(f"{type(options).__name__}.{name} must be > 0")


def _require_together(options, *names: str) -> None:
    """Files that only work as a set (a certificate and its key): all of them or none."""
    given = [getattr(options, name) is not None for name in names]
    if any(given) and not all(given):
        raise ValueError(f"{type(options).__name__}: {', '.join(names)} go together")


def _require_with(options, name: str, needed: str) -> None:
    if getattr(options, name) is not None and getattr(options, needed) is None:
        raise ValueError(f"{type(options).__name__}.{name} needs {needed}")


@dataclass(frozen=True)
class GrpcServerOptions:
    # Sizes the worker pool: 3 long-lived RPCs per stock LeRobot actor, so a caller beyond
    # capacity is refused at once instead of hanging.
    max_actors: int = 16
    # Calls one client may hold at once (RESOURCE_EXHAUSTED beyond): a hiljax actor holds at
    # most 3, a stock LeRobot actor 4; the rest leaves room for an actor's restart.
    max_calls_per_client: int = 6
    tls_cert: str | None = None  # the learner's certificate (PEM): TLS on
    tls_key: str | None = None  # its private key
    tls_client_ca: str | None = None  # actors must show a certificate from this CA (mutual TLS)
    tokens_file: str | None = None  # JSON {token: actor name}: every call needs one of them
    token_file: str | None = None  # one token shared by every actor (names nobody)
    # Bytes all calls together may hold while payloads arrive (null: max(max payload, 1 GiB));
    # a call that finds no room within a few seconds gets RESOURCE_EXHAUSTED and resends.
    max_inflight_bytes: int | None = None

    def __post_init__(self):
        _require_positive(self, "max_actors", "max_calls_per_client")
        if self.max_inflight_bytes is not None:
            _require_positive(self, "max_inflight_bytes")
        _require_together(self, "tls_cert", "tls_key")
        _require_with(self, "tls_client_ca", "tls_cert")


@dataclass(frozen=True)
class ZmqServerOptions:
    client_timeout_s: float = 3.0  # an actor silent this long drops out of connected_clients()
    curve_server_secret: str | None = None  # the learner's CURVE .key_secret file: CURVE on
    curve_clients_dir: str | None = None  # folder of the allowed actors' <name>.key files

    def __post_init__(self):
        _require_positive(self, "client_timeout_s")
        _require_together(self, "curve_server_secret", "curve_clients_dir")


@dataclass(frozen=True)
class InprocServerOptions:
    name: str | None = None  # the address is "inproc://<name>"; None -> a random name


@dataclass(frozen=True)
class GrpcClientOptions:
    send_timeout_s: float = 60.0  # one SendTransitions call; it is retried after this
    tls_ca: str | None = None  # the CA of the learner's certificate: TLS on
    tls_cert: str | None = None  # the actor's certificate, for mutual TLS
    tls_key: str | None = None  # its private key
    token_file: str | None = None  # a file holding this actor's (or the shared) token

    def __post_init__(self):
        _require_positive(self, "send_timeout_s")
        _require_together(self, "tls_cert", "tls_key")
        _require_with(self, "tls_cert", "tls_ca")


@dataclass(frozen=True)
class ZmqClientOptions:
    window: int = 4  # payloads in flight before waiting for acknowledgements (credit)
    ack_timeout_s: float = 5.0  # unacknowledged this long -> reconnect and resend
    heartbeat_s: float = 0.5  # keeps the learner's connected_clients() current
    curve_server_public: str | None = None  # the learner's CURVE public key file: CURVE on
    curve_client_secret: str | None = None  # this actor's .key_secret file

    def __post_init__(self):
        _require_positive(self, "window", "ack_timeout_s", "heartbeat_s")
        _require_together(self, "curve_server_public", "curve_client_secret")


@dataclass(frozen=True)
class InprocClientOptions:
    """The in-process actor has no options of its own (no sockets, no queue)."""


ServerOptions = GrpcServerOptions | ZmqServerOptions | InprocServerOptions
ClientOptions = GrpcClientOptions | ZmqClientOptions | InprocClientOptions
# kind -> its options class, for every kind. Public: hiljax.config.security finds each kind's
# security fields here instead of keeping its own list of kinds.
SERVER_OPTIONS: dict[str, type] = {
    "grpc": GrpcServerOptions,
    "zmq": ZmqServerOptions,
    "inproc": InprocServerOptions,
}
CLIENT_OPTIONS: dict[str, type] = {
    "grpc": GrpcClientOptions,
    "zmq": ZmqClientOptions,
    "inproc": InprocClientOptions,
}


def _options_for(kind: str, options, table: dict[str, type]) -> dict:
    """The kind's options as keyword arguments; its defaults for None. Another kind's options
    are a ValueError: they would otherwise be ignored without a word."""
    expected = table[check_kind(kind)]
    if options is None:
        options = expected()
    if type(options) is not expected:
        raise ValueError(
            f"transport {kind!r} takes {expected.__name__} options, got {type(options).__name__}"
        )
    return dataclasses.asdict(options)


# ----------------------------------------------------------------------------- factories


def make_learner_transport(
    kind: str = "grpc",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    push_frequency_s: float = DEFAULT_PUSH_FREQUENCY_S,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    queue_max_items: int = DEFAULT_LEARNER_QUEUE_ITEMS,
    queue_max_bytes: int = DEFAULT_QUEUE_BYTES,
    options: ServerOptions | None = None,
) -> LearnerTransport:
    """An unstarted learner transport: restore() a saved state() first if resuming, then call
    .start() (or use it as a context manager). "inproc" ignores host and port."""
    extra = _options_for(kind, options, SERVER_OPTIONS)
    common = {
        "push_frequency_s": push_frequency_s,
        "max_payload_bytes": max_payload_bytes,
        "queue_max_items": queue_max_items,
        "queue_max_bytes": queue_max_bytes,
    }
    if kind == "grpc":
        from transport.grpc_server import GrpcLearnerServer

        return GrpcLearnerServer(host, port, **common, **extra)
    if kind == "zmq":
        from transport.zmq_server import ZmqLearnerServer

        return ZmqLearnerServer(host, port, **common, **extra)
    from transport.inproc import InprocLearner

    return InprocLearner(**extra, **common)


def make_actor_transport(
    kind: str,
    address: str,
    *,
    client_id: str | None = None,
    param_codec: str = CODEC_HILJAX,
    max_queue_items: int = DEFAULT_ACTOR_QUEUE_ITEMS,
    max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    spool_dir: str | None = None,
    options: ClientOptions | None = None,
) -> ActorTransport:
    """A connected actor transport (background threads already running).

    param_codec: "hiljax" | "lerobot". spool_dir: keep transitions on disk until acknowledged
    (transport.spool; one process per directory). "inproc" delivers synchronously, so it has no
    queue, no backoff and no spool: max_queue_items, max_queue_bytes, max_backoff_s and
    spool_dir do not apply to it.
    """
    extra = _options_for(kind, options, CLIENT_OPTIONS)
    common = {
        "client_id": client_id,
        "param_codec": param_codec,
        "max_payload_bytes": max_payload_bytes,
    }
    if kind == "inproc":
        from transport.inproc import InprocActor

        return InprocActor(address, **common, **extra)
    queued = {
        "max_queue_items": max_queue_items,
        "max_queue_bytes": max_queue_bytes,
        "max_backoff_s": max_backoff_s,
        "spool_dir": spool_dir,
    }
    if kind == "grpc":
        from transport.grpc_client import GrpcActorClient

        return GrpcActorClient(address, **common, **queued, **extra)
    from transport.zmq_client import ZmqActorClient

    return ZmqActorClient(address, **common, **queued, **extra)
