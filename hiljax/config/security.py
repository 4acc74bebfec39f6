"""Who may talk to the learner, and how an actor proves who it is: the `security` sections of
LearnerConfig and ActorConfig (file paths made by `python -m hiljax.keys`), turned into the
transport's per-kind options."""

from __future__ import annotations

import dataclasses

from hiljax.config.errors import ConfigError, require
from transport.factory import (
    GrpcClientOptions,
    GrpcServerOptions,
    ZmqClientOptions,
    ZmqServerOptions,
)


def _security_fields(config, kind: str, fields: dict[str, tuple[str, ...]]) -> dict:
    """The security fields of transport `kind`. One set for the other transport is refused: it
    would be ignored, and the link plain without a word. (Checked when the transport is built,
    not in __post_init__: a train config's sections only learn the transport afterwards.)"""
    for other, names in fields.items():
        stray = [name for name in names if getattr(config, name) is not None]
        require(not stray or other == kind,
                f"security.{', security.'.join(stray)} only apply to the {other} transport "
                f"(this one is {kind})")
    return {name: getattr(config, name) for name in fields.get(kind, ())}


def _options(make, **kwargs):
    """transport.factory options, their ValueErrors (a certificate without its key) as
    ConfigErrors."""
    try:
        return make(**kwargs)
    except ValueError as error:
        raise ConfigError(f"security: {error}") from None


_LEARNER_SECURITY = {"grpc": ("tls_cert", "tls_key", "tls_client_ca", "tokens_file", "token_file"),
                     "zmq": ("curve_server_secret", "curve_clients_dir")}


@dataclasses.dataclass(frozen=True)
class LearnerSecurityConfig:
    """Who may talk to the learner: file paths (made by `python -m hiljax.keys`), all null
    meaning a plain link (fine on 127.0.0.1 and for stock LeRobot actors; loudly warned about
    on any other address). gRPC: TLS, optionally mutual, and/or tokens; ZeroMQ: CURVE."""

    tls_cert: str | None = None  # the learner's certificate (PEM): TLS on
    tls_key: str | None = None  # its private key
    tls_client_ca: str | None = None  # actors need a certificate from this CA (mutual TLS)
    tokens_file: str | None = None  # JSON {token: actor name}: per-actor tokens
    token_file: str | None = None  # one token every actor shares (it names no actor)
    curve_server_secret: str | None = None  # the learner's CURVE .key_secret file: CURVE on
    curve_clients_dir: str | None = None  # the allowed actors' CURVE public keys (<name>.key)

    def __post_init__(self):
        for kind in _LEARNER_SECURITY:  # pairs that only work together (a cert and its key)
            self.transport_options(kind, max_actors=1, check_kind=False)

    def transport_options(self, kind: str, max_actors: int, check_kind: bool = True):
        """transport.factory options for `kind` (None for inproc); ConfigError when the other
        transport's files are set."""
        fields = _LEARNER_SECURITY if check_kind else {kind: _LEARNER_SECURITY[kind]}
        chosen = _security_fields(self, kind, fields)
        if kind == "grpc":
            return _options(GrpcServerOptions, max_actors=max_actors, **chosen)
        if kind == "zmq":
            return _options(ZmqServerOptions, **chosen)
        return None


_ACTOR_SECURITY = {"grpc": ("tls_ca", "tls_cert", "tls_key", "token_file"),
                   "zmq": ("curve_server_public", "curve_client_secret")}


@dataclasses.dataclass(frozen=True)
class ActorSecurityConfig:
    """How the actor proves who it is and checks the learner: file paths (made by
    `python -m hiljax.keys`, in the actor's folder), all null meaning a plain link."""

    tls_ca: str | None = None  # the CA of the learner's certificate: TLS on
    tls_cert: str | None = None  # this actor's certificate (when the learner wants mutual TLS)
    tls_key: str | None = None  # its private key
    token_file: str | None = None  # a file holding this actor's token (or the shared one)
    curve_server_public: str | None = None  # the learner's CURVE public key file: CURVE on
    curve_client_secret: str | None = None  # this actor's CURVE .key_secret file

    def __post_init__(self):
        for kind in _ACTOR_SECURITY:  # pairs that only work together (a cert and its key)
            self.transport_options(kind, check_kind=False)

    def transport_options(self, kind: str, check_kind: bool = True):
        """transport.factory options for `kind` (None for inproc); ConfigError when the other
        transport's files are set."""
        fields = _ACTOR_SECURITY if check_kind else {kind: _ACTOR_SECURITY[kind]}
        chosen = _security_fields(self, kind, fields)
        if kind == "grpc":
            return _options(GrpcClientOptions, **chosen)
        if kind == "zmq":
            return _options(ZmqClientOptions, **chosen)
        return None
