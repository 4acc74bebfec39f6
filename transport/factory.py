"""make_learner_transport / make_actor_transport: one flag (`--transport grpc|zmq`) switches."""

from transport.interface import DEFAULT_HOST, DEFAULT_PORT, ActorTransport, LearnerTransport

KINDS = ("grpc", "zmq", "inproc")


def make_learner_transport(
    kind: str = "grpc", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **options
) -> LearnerTransport:
    """An unstarted learner transport; call .start() (or use it as a context manager).

    options: push_frequency_s, max_payload_bytes, queue_max_items, queue_max_bytes,
    duplicate_filter, max_actors (gRPC worker threads), client_timeout_s (ZeroMQ).
    """
    if kind == "grpc":
        from transport.grpc_server import GrpcLearnerServer

        options.pop("client_timeout_s", None)
        return GrpcLearnerServer(host, port, **options)
    if kind == "zmq":
        from transport.zmq_server import ZmqLearnerServer

        return ZmqLearnerServer(host, port, **options)
    if kind == "inproc":
        from transport.inproc import InprocLearner

        return InprocLearner(**options)
    raise ValueError(f"unknown transport {kind!r}; expected one of {KINDS}")


def make_actor_transport(kind: str, address: str, **options) -> ActorTransport:
    """A connected actor transport (background threads already running).

    options: client_id, param_codec ("hiljax" | "lerobot"), max_queue_items, max_queue_bytes,
    max_payload_bytes, max_backoff_s; gRPC: send_timeout_s; ZeroMQ: window, ack_timeout_s,
    heartbeat_s.
    """
    if kind == "grpc":
        from transport.grpc_client import GrpcActorClient

        for key in ("window", "ack_timeout_s", "heartbeat_s"):
            options.pop(key, None)
        return GrpcActorClient(address, **options)
    if kind == "zmq":
        from transport.zmq_client import ZmqActorClient

        options.pop("send_timeout_s", None)
        return ZmqActorClient(address, **options)
    if kind == "inproc":
        from transport.inproc import InprocActor

        return InprocActor(address, **options)
    raise ValueError(f"unknown transport {kind!r}; expected one of {KINDS}")
