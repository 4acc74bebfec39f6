"""gRPC channel/server options, TLS credentials and metadata keys shared by server and client."""

from pathlib import Path

import grpc

from transport.chunks import MAX_MESSAGE_SIZE

# Invocation metadata a hiljax actor sends; a caller without it is a stock LeRobot actor.
META_CLIENT_ID = "hiljax-client-id"
META_SEQ = "hiljax-seq"  # sequence number of the single payload a SendTransitions call carries
META_PARAM_CODEC = "hiljax-param-codec"  # codec the actor wants its parameters in
META_AUTHORIZATION = "authorization"  # "Bearer <token>", checked on every call when tokens are on

_KEEPALIVE = [
    # Ping idle connections so a vanished peer (no FIN, e.g. a pulled cable) is noticed.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


def server_options() -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
        # Two servers must never share a port silently (tests restart learners on one port).
        ("grpc.so_reuseport", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        *_KEEPALIVE,
    ]


def channel_options() -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
        # hiljax retries whole payloads itself (resend until acknowledged); gRPC's own retry
        # would buffer client streams in memory and hide the failure from that loop.
        ("grpc.enable_retries", 0),
        # Reconnect fast after a learner restart (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1_000),
        *_KEEPALIVE,
    ]


# ----------------------------------------------------------------------------- TLS


def server_credentials(cert: str, key: str, client_ca: str | None) -> grpc.ServerCredentials:
    """TLS with the learner's certificate; with `client_ca`, every actor must present a
    certificate that CA signed (mutual TLS) and its common name names the actor."""
    return grpc.ssl_server_credentials(
        [(_read_pem(key, "TLS key"), _read_pem(cert, "TLS certificate"))],
        root_certificates=None if client_ca is None else _read_pem(client_ca, "client CA"),
        require_client_auth=client_ca is not None,
    )


def channel_credentials(ca: str, cert: str | None, key: str | None) -> grpc.ChannelCredentials:
    """TLS that trusts only `ca` (not the system's CAs: the learner's certificate comes from
    `python -m hiljax.keys`), presenting the actor's own certificate when it has one."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(ca, "CA certificate"),
        private_key=None if key is None else _read_pem(key, "TLS key"),
        certificate_chain=None if cert is None else _read_pem(cert, "TLS certificate"),
    )


def _read_pem(path: str, what: str) -> bytes:
    """The file's bytes, or a ValueError that names it (gRPC's own error would not)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the {what} {path}: {error.strerror}") from None
    if b"-----BEGIN" not in data:
        raise ValueError(f"the {what} {path} is not a PEM file")
    return data
