"""Who may talk to the learner, and how an actor proves who it is: the `security` sections of
LearnerConfig and ActorConfig (file paths made by `python -m hiljax.keys`), turned into the
transport's per-kind options.

The transport owns the list of kinds and each kind's options class (transport.factory's
SERVER_OPTIONS / CLIENT_OPTIONS); a kind's security fields are the fields its options class
shares with the section here, so a new kind or option needs no table of its own in this file."""

from __future__ import annotations

import dataclasses

from hiljax.config.errors import ConfigError, require
from transport.factory import CLIENT_OPTIONS, SERVER_OPTIONS
from transport.factory import check_kind as known_kind  # `check_kind` names a flag below


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


def _field_names(cls) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def _fields_by_kind(section, options_by_kind: dict[str, type]) -> dict[str, tuple[str, ...]]:
    """kind -> the security fields of `section` its options class takes (inproc: none), in the
    section's order (the order error messages name them in)."""
    names = [field.name for field in dataclasses.fields(section)]
    return {kind: tuple(name for name in names if name in _field_names(options))
            for kind, options in options_by_kind.items()}


def _options(options_by_kind: dict[str, type], kind: str, chosen: dict, **sizing):
    """The kind's transport.factory options from the chosen files, plus the `sizing` values
    (max_actors) its options class has a field for; their ValueErrors (an unknown kind, a
    certificate without its key) as ConfigErrors."""
    try:
        options = options_by_kind[known_kind(kind, tuple(options_by_kind))]
        taken = {name: value for name, value in sizing.items() if name in _field_names(options)}
        return options(**chosen, **taken)
    except ValueError as error:
        raise ConfigError(f"security: {error}") from None


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
        """transport.factory server options for `kind` (max_actors where the kind sizes by it);
        ConfigError when another transport's files are set."""
        fields = _LEARNER_SECURITY if check_kind else {kind: _LEARNER_SECURITY.get(kind, ())}
        chosen = _security_fields(self, kind, fields)
        return _options(SERVER_OPTIONS, kind, chosen, max_actors=max_actors)


# Read by the instances' checks only, so it can follow the class it is made from.
_LEARNER_SECURITY = _fields_by_kind(LearnerSecurityConfig, SERVER_OPTIONS)


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
        """transport.factory client options for `kind`; ConfigError when another transport's
        files are set."""
        fields = _ACTOR_SECURITY if check_kind else {kind: _ACTOR_SECURITY.get(kind, ())}
        chosen = _security_fields(self, kind, fields)
        return _options(CLIENT_OPTIONS, kind, chosen)


_ACTOR_SECURITY = _fields_by_kind(ActorSecurityConfig, CLIENT_OPTIONS)
