"""gRPC channel/server options and metadata keys shared by the gRPC server and client."""

from transport.chunks import MAX_MESSAGE_SIZE

# Invocation metadata a hiljax actor sends; a caller without it is a stock LeRobot actor.
META_CLIENT_ID = "hiljax-client-id"
META_SEQ = "hiljax-seq"  # sequence number of the single payload a SendTransitions call carries
META_PARAM_CODEC = "hiljax-param-codec"  # codec the actor wants its parameters in

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
