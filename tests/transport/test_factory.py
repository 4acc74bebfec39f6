"""The transport kinds and the factory: one list of kinds, per-kind options, state/restore."""

import dataclasses
import inspect
import json

import pytest

from hiljax.config import ConfigError
from hiljax.config.security import ActorSecurityConfig, LearnerSecurityConfig
from transport.factory import (
    CLIENT_OPTIONS,
    KINDS,
    NETWORK_KINDS,
    SERVER_OPTIONS,
    GrpcClientOptions,
    GrpcServerOptions,
    InprocClientOptions,
    InprocServerOptions,
    ZmqClientOptions,
    ZmqServerOptions,
    check_kind,
    make_actor_transport,
    make_learner_transport,
)
from transport.grpc_client import GrpcActorClient
from transport.grpc_server import GrpcLearnerServer
from transport.inproc import InprocLearner
from transport.zmq_client import ZmqActorClient
from transport.zmq_server import ZmqLearnerServer

NOBODY = "127.0.0.1:1"  # actors connect lazily, so nothing needs to listen here


def test_kinds_and_check_kind():
    assert KINDS == ("grpc", "zmq", "inproc") and NETWORK_KINDS == ("grpc", "zmq")
    assert all(check_kind(kind) == kind for kind in KINDS)
    assert check_kind("zmq", NETWORK_KINDS) == "zmq"
    with pytest.raises(ValueError, match=r"one of grpc, zmq; got 'inproc'"):
        check_kind("inproc", NETWORK_KINDS)


def test_every_kind_has_its_options_classes():
    assert tuple(SERVER_OPTIONS) == tuple(CLIENT_OPTIONS) == KINDS
    assert SERVER_OPTIONS["grpc"] is GrpcServerOptions and CLIENT_OPTIONS["zmq"] is ZmqClientOptions


def _takes(options, name: str) -> bool:
    return name in {field.name for field in dataclasses.fields(options)}


@pytest.mark.parametrize(("section", "options_by_kind"),
                         [(LearnerSecurityConfig, SERVER_OPTIONS),
                          (ActorSecurityConfig, CLIENT_OPTIONS)])
def test_every_security_field_belongs_to_exactly_one_kind(section, options_by_kind):
    """hiljax's security sections learn each kind's fields from these maps: a field no kind's
    options took would be dropped without a word, one two kinds took would be refused."""
    for field in dataclasses.fields(section):
        kinds = [kind for kind, options in options_by_kind.items() if _takes(options, field.name)]
        assert len(kinds) == 1, f"security.{field.name} is taken by {kinds or 'no kind'}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_plain_security_section_gives_each_kinds_defaults(kind):
    sized = {"max_actors": 3} if _takes(SERVER_OPTIONS[kind], "max_actors") else {}
    assert LearnerSecurityConfig().transport_options(kind, max_actors=3) == SERVER_OPTIONS[kind](
        **sized)
    assert ActorSecurityConfig().transport_options(kind) == CLIENT_OPTIONS[kind]()


def test_security_refuses_an_unknown_kind():
    with pytest.raises(ConfigError, match="security: transport must be one of"):
        ActorSecurityConfig().transport_options("carrier-pigeon")


def test_factory_refuses_unknown_kinds():
    message = r"transport must be one of grpc, zmq, inproc; got 'carrier-pigeon'"
    with pytest.raises(ValueError, match=message):
        make_learner_transport("carrier-pigeon")
    with pytest.raises(ValueError, match=message):
        make_actor_transport("carrier-pigeon", NOBODY)


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [("grpc", ZmqServerOptions()), ("zmq", GrpcServerOptions()), ("inproc", GrpcServerOptions())],
)
def test_learner_refuses_another_kinds_options(kind, wrong):
    with pytest.raises(ValueError, match=f"'{kind}' takes"):
        make_learner_transport(kind, port=0, options=wrong)


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [("grpc", ZmqClientOptions()), ("zmq", GrpcClientOptions()), ("inproc", ZmqClientOptions())],
)
def test_actor_refuses_another_kinds_options(kind, wrong):
    with pytest.raises(ValueError, match=f"'{kind}' takes"):
        make_actor_transport(kind, NOBODY, options=wrong)


def test_options_reach_the_transport():
    grpc_learner = make_learner_transport("grpc", port=0, options=GrpcServerOptions(max_actors=1))
    assert grpc_learner.max_workers == 5
    zmq_learner = make_learner_transport("zmq", port=0, options=ZmqServerOptions(2.5))
    assert zmq_learner.client_timeout_s == 2.5
    inproc_learner = make_learner_transport("inproc", options=InprocServerOptions(name="x"))
    assert inproc_learner.address == "inproc://x"
    with make_actor_transport("grpc", NOBODY, options=GrpcClientOptions(7.0)) as actor:
        assert actor.send_timeout_s == 7.0
    zmq_options = ZmqClientOptions(window=2, ack_timeout_s=1.0, heartbeat_s=0.1)
    with make_actor_transport("zmq", NOBODY, options=zmq_options, max_queue_items=3) as actor:
        assert (actor.window, actor.ack_timeout_s, actor.heartbeat_s) == (2, 1.0, 0.1)
        assert actor._outgoing.max_items == 3
    with make_actor_transport("inproc", "inproc://x", options=InprocClientOptions()) as actor:
        assert actor.client_id


@pytest.mark.parametrize(
    ("options", "constructor"),
    [
        (GrpcServerOptions, GrpcLearnerServer),
        (ZmqServerOptions, ZmqLearnerServer),
        (InprocServerOptions, InprocLearner),
        (GrpcClientOptions, GrpcActorClient),
        (ZmqClientOptions, ZmqActorClient),
    ],
)
def test_option_defaults_match_the_constructors(options, constructor):
    """Whoever calls a server or client directly gets the same defaults as the factory."""
    parameters = inspect.signature(constructor).parameters
    for name, value in vars(options()).items():
        assert parameters[name].default == value, name


@pytest.mark.parametrize(
    "options",
    [
        lambda: GrpcServerOptions(max_actors=0),
        lambda: ZmqServerOptions(client_timeout_s=0),
        lambda: GrpcClientOptions(send_timeout_s=-1),
        lambda: ZmqClientOptions(window=0),
    ],
)
def test_options_refuse_non_positive_values(options):
    with pytest.raises(ValueError, match="must be > 0"):
        options()


@pytest.mark.parametrize("kind", KINDS)
def test_state_is_json_and_malformed_states_are_refused(kind):
    learner = make_learner_transport(kind, port=0)
    state = learner.state()
    assert json.loads(json.dumps(state)) == state
    learner.restore(state)
    learner.restore({})
    for malformed in (None, [], {"duplicate": {}}, {"duplicates": {"floor": {"a": "1"}}}):
        with pytest.raises(ValueError, match="transport state|duplicate filter"):
            learner.restore(malformed)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (lambda: GrpcServerOptions(tls_cert="c.pem"), "go together"),
        (lambda: GrpcServerOptions(tls_client_ca="ca.pem"), "needs tls_cert"),
        (lambda: ZmqServerOptions(curve_clients_dir="keys"), "go together"),
        (lambda: GrpcClientOptions(tls_cert="c.pem", tls_key="k.pem"), "needs tls_ca"),
        (lambda: ZmqClientOptions(curve_server_public="learner.key"), "go together"),
    ],
)
def test_security_files_that_only_work_together_are_refused_alone(options, message):
    with pytest.raises(ValueError, match=message):
        options()


def test_missing_security_files_are_named_before_anything_listens(tmp_path):
    missing = str(tmp_path / "missing.pem")
    learners = [("grpc", GrpcServerOptions(tls_cert=missing, tls_key=missing)),
                ("grpc", GrpcServerOptions(tokens_file=missing)),
                ("zmq", ZmqServerOptions(curve_server_secret=missing,
                                         curve_clients_dir=str(tmp_path)))]
    actors = [("grpc", GrpcClientOptions(tls_ca=missing)),
              ("zmq", ZmqClientOptions(curve_server_public=missing, curve_client_secret=missing))]
    for kind, options in learners:
        with pytest.raises(ValueError, match="missing.pem"):
            make_learner_transport(kind, port=0, options=options)
    for kind, options in actors:
        with pytest.raises(ValueError, match="missing.pem"):
            make_actor_transport(kind, NOBODY, options=options)
