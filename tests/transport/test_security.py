"""Authenticated, encrypted links: TLS / mutual TLS / tokens over gRPC, CURVE over ZeroMQ, the
identity the learner gives a caller, the per-client call cap and the plain-link warning.

Real sockets on 127.0.0.1 (ports from the OS); the keys come from `python -m hiljax.keys`, made
once for the module, so the tool is tested by every test that uses its files."""

import json
import logging
import stat

import grpc
import pytest
import zmq
import zmq.auth

from hiljax.config import ActorConfig, ConfigError, LearnerConfig, from_dict
from hiljax.keys import main as keys_main
from tests.transport.helpers import drain, encoded_episode, wait_for
from transport import codec
from transport import zmq_protocol as proto
from transport._generated import services_pb2, services_pb2_grpc
from transport.factory import (
    GrpcClientOptions,
    GrpcServerOptions,
    ZmqClientOptions,
    ZmqServerOptions,
    make_actor_transport,
)
from transport.security import Caller, TokenBook, grpc_peer_host, is_loopback

pytestmark = pytest.mark.timeout(60)
REFUSED_WITHIN_S = 1.0  # how long an actor the learner cannot admit tries before giving up


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    out = tmp_path_factory.mktemp("security") / "keys"
    assert keys_main(["--out", str(out), "--actors", "actor1", "actor2",
                      "--host", "learner.example", "10.1.2.3"]) == 0
    return out


def grpc_actor_options(keys, name, tls=True, cert=True, token=True, token_of=None):
    folder = keys / name
    return GrpcClientOptions(
        tls_ca=str(folder / "ca.crt") if tls else None,
        tls_cert=str(folder / "tls.crt") if tls and cert else None,
        tls_key=str(folder / "tls.key") if tls and cert else None,
        token_file=str(keys / (token_of or name) / "token") if token else None,
    )


def zmq_actor_options(keys, name):
    curve = keys / name / "curve"
    return ZmqClientOptions(curve_server_public=str(curve / "public_keys" / "learner.key"),
                            curve_client_secret=str(curve / "private_keys" / f"{name}.key_secret"))


def send_and_flush(actor, seqs) -> None:
    assert actor.ready(timeout=10)
    for seq in seqs:
        actor.send_transitions(encoded_episode(actor.client_id, seq, steps=2, size=8))
    assert actor.flush(timeout=10)


def received_keys(learner) -> list[tuple[str, int]]:
    return sorted((r.client_id, codec.read_header(r.payload).seq) for r in drain(learner))


def raw_stub(address, token=None, client_id=None, credentials=None):
    channel = (grpc.insecure_channel(address) if credentials is None
               else grpc.secure_channel(address, credentials))
    metadata = [("authorization", f"Bearer {token}")] if token else []
    metadata += [("hiljax-client-id", client_id)] if client_id else []
    return channel, services_pb2_grpc.LearnerServiceStub(channel), tuple(metadata)


def admitted(stub, metadata) -> bool:
    """Whether a Ready call gets through; False while the caller has no free call slot."""
    try:
        stub.Ready(services_pb2.Empty(), metadata=metadata, timeout=5)
        return True
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return False


# ----------------------------------------------------------------------------- the keys tool


def test_keys_tool_writes_private_files_for_each_machine(keys, tmp_path):
    secrets = [keys / "ca" / "ca.key", keys / "learner" / "tls.key",
               keys / "learner" / "tokens.json",
               keys / "learner" / "curve" / "private_keys" / "learner.key_secret",
               keys / "actor1" / "tls.key", keys / "actor1" / "token",
               keys / "actor1" / "curve" / "private_keys" / "actor1.key_secret"]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    tokens = json.loads((keys / "learner" / "tokens.json").read_text())
    assert sorted(tokens.values()) == ["actor1", "actor2"]
    assert tokens[(keys / "actor2" / "token").read_text().strip()] == "actor2"
    public, secret = zmq.auth.load_certificate(
        keys / "actor1" / "curve" / "private_keys" / "actor1.key_secret")
    assert secret and zmq.auth.load_certificate(
        keys / "learner" / "curve" / "public_keys" / "actor1.key")[0] == public
    learner_public, _ = zmq.auth.load_certificate(
        keys / "learner" / "curve" / "private_keys" / "learner.key_secret")
    assert zmq.auth.load_certificate(
        keys / "actor2" / "curve" / "public_keys" / "learner.key")[0] == learner_public


def test_keys_tool_adds_actors_to_an_existing_folder(tmp_path):
    out = tmp_path / "keys"
    assert keys_main(["--out", str(out), "--actors", "a"]) == 0
    ca = (out / "ca" / "ca.crt").read_bytes()
    assert keys_main(["--out", str(out), "--actors", "b"]) == 0
    assert (out / "ca" / "ca.crt").read_bytes() == ca  # the same CA signs the newcomer
    tokens = json.loads((out / "learner" / "tokens.json").read_text())
    assert sorted(tokens.values()) == ["a", "b"]
    assert (out / "learner" / "curve" / "public_keys" / "b.key").exists()
    assert keys_main(["--out", str(out), "--actors", "b"]) == 2  # never overwritten
    assert keys_main(["--out", str(out), "--actors", "bad name"]) == 2


# ----------------------------------------------------------------------------- gRPC


def test_tls_round_trip_and_a_plain_client_gets_nothing(transports, keys):
    learner = transports.learner("grpc", options=GrpcServerOptions(
        tls_cert=str(keys / "learner" / "tls.crt"), tls_key=str(keys / "learner" / "tls.key")))
    assert learner.protection == "TLS"
    actor = transports.actor("grpc", learner.address, client_id="tls-actor",
                             options=grpc_actor_options(keys, "actor1", cert=False, token=False))
    send_and_flush(actor, range(2))
    learner.publish_parameters(b"weights", version=3)
    assert wait_for(actor.latest_parameters) == (3, b"weights")
    assert received_keys(learner) == [("tls-actor", 0), ("tls-actor", 1)]  # names nobody

    plain = transports.actor("grpc", learner.address)
    assert not plain.ready(timeout=REFUSED_WITHIN_S)


def test_mutual_tls_names_the_actor_and_refuses_one_without_a_certificate(transports, keys):
    learner_keys = keys / "learner"
    learner = transports.learner("grpc", options=GrpcServerOptions(
        tls_cert=str(learner_keys / "tls.crt"), tls_key=str(learner_keys / "tls.key"),
        tls_client_ca=str(learner_keys / "ca.crt"), tokens_file=str(learner_keys / "tokens.json")))
    assert learner.protection == "mutual TLS + tokens"
    no_cert = transports.actor("grpc", learner.address,
                               options=grpc_actor_options(keys, "actor1", cert=False))
    assert not no_cert.ready(timeout=REFUSED_WITHIN_S)  # the TLS handshake fails
    # actor1's certificate with actor2's token: two credentials naming different actors.
    mixed = transports.actor("grpc", learner.address,
                             options=grpc_actor_options(keys, "actor1", token_of="actor2"))
    assert not mixed.ready(timeout=10)  # refused at once (UNAUTHENTICATED), not timed out

    actor = transports.actor("grpc", learner.address, client_id="arm-0",
                             options=grpc_actor_options(keys, "actor1"))
    send_and_flush(actor, range(1))
    assert received_keys(learner) == [("arm-0@actor1", 0)]  # the certificate's name


def test_wrong_or_missing_tokens_are_refused_while_a_good_client_keeps_working(transports,
                                                                               keys):
    learner = transports.learner("grpc", options=GrpcServerOptions(
        tokens_file=str(keys / "learner" / "tokens.json")))
    good = transports.actor("grpc", learner.address, client_id="good",
                            options=grpc_actor_options(keys, "actor1", tls=False))
    send_and_flush(good, range(1))
    for token in (None, "not-a-token-at-all", (keys / "actor1" / "token").read_text()[:-5]):
        channel, stub, metadata = raw_stub(learner.address, token=token, client_id="intruder")
        payload = iter([services_pb2.Transition(transfer_state=services_pb2.TRANSFER_END,
                                                data=b"x")])
        for method, request in ((stub.Ready, services_pb2.Empty()),
                                (stub.SendTransitions, payload)):
            with pytest.raises(grpc.RpcError) as refused:
                method(request, metadata=metadata, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        channel.close()
    send_and_flush(good, range(1, 3))  # served all along
    assert received_keys(learner) == [("good@actor1", 0), ("good@actor1", 1), ("good@actor1", 2)]


def test_a_client_lying_about_its_id_cannot_shadow_another(transports, keys):
    """The duplicate filter keys on (announced id, authenticated actor): the liar's payloads
    land in its own namespace, the victim's all arrive, and the victim's resends still drop."""
    learner = transports.learner("grpc", options=GrpcServerOptions(
        tokens_file=str(keys / "learner" / "tokens.json")))

    def actor(name):
        return transports.actor("grpc", learner.address, client_id="arm-0",
                                options=grpc_actor_options(keys, name, tls=False))

    send_and_flush(actor("actor2"), range(2))  # the liar goes first, with the victim's id
    send_and_flush(actor("actor1"), range(2))
    assert received_keys(learner) == [("arm-0@actor1", 0), ("arm-0@actor1", 1),
                                      ("arm-0@actor2", 0), ("arm-0@actor2", 1)]
    send_and_flush(actor("actor1"), range(3))  # the victim restarts and resends
    assert received_keys(learner) == [("arm-0@actor1", 2)]


def test_one_client_cannot_hold_more_than_its_share_of_calls(transports, keys):
    learner = transports.learner("grpc", options=GrpcServerOptions(
        tokens_file=str(keys / "learner" / "tokens.json"), max_calls_per_client=2))
    token1 = (keys / "actor1" / "token").read_text().strip()
    channels, streams = [], []
    for index in range(2):  # new session ids do not buy actor1 more calls
        channel, stub, metadata = raw_stub(learner.address, token1, client_id=f"s{index}")
        channels.append(channel)
        streams.append(stub.StreamParameters(services_pb2.Empty(), metadata=metadata))
    wait_for(lambda: len(learner.connected_clients()) == 2)
    channel, stub, metadata = raw_stub(learner.address, token1, client_id="s2")
    channels.append(channel)
    assert not admitted(stub, metadata)  # RESOURCE_EXHAUSTED
    other = transports.actor("grpc", learner.address,
                             options=grpc_actor_options(keys, "actor2", tls=False))
    assert other.ready(timeout=10)  # another actor is served meanwhile
    streams[0].cancel()
    wait_for(lambda: admitted(stub, metadata))  # a freed slot serves it
    for stream in streams:
        stream.cancel()
    for channel in channels:
        channel.close()


# ----------------------------------------------------------------------------- ZeroMQ


def test_curve_round_trip_names_the_key_and_unknown_keys_get_nothing(transports, keys,
                                                                      tmp_path):
    learner_curve = keys / "learner" / "curve"
    learner = transports.learner("zmq", max_payload_bytes=1 << 20, options=ZmqServerOptions(
        curve_server_secret=str(learner_curve / "private_keys" / "learner.key_secret"),
        curve_clients_dir=str(learner_curve / "public_keys")))
    assert learner.protection == "CURVE"
    assert learner._router.getsockopt(zmq.MAXMSGSIZE) == (1 << 20) + proto.FRAME_OVERHEAD_BYTES
    assert learner._router.getsockopt(zmq.RCVHWM) == proto.LEARNER_RCVHWM
    actor = transports.actor("zmq", learner.address, client_id="arm-0",
                             options=zmq_actor_options(keys, "actor1"))
    send_and_flush(actor, range(2))
    # A payload of exactly max_payload_bytes passes MAXMSGSIZE despite CURVE's overhead: it is
    # answered (refused as no known format), not dropped with the connection.
    actor.send_transitions(b"Z" * (1 << 20))
    assert actor.flush(timeout=10)
    learner.publish_parameters(b"weights", version=5)  # over the CURVE XPUB / SUB too
    assert wait_for(actor.latest_parameters) == (5, b"weights")
    liar = transports.actor("zmq", learner.address, client_id="arm-0",
                            options=zmq_actor_options(keys, "actor2"))
    send_and_flush(liar, range(1))
    assert received_keys(learner) == [("arm-0@actor1", 0), ("arm-0@actor1", 1),
                                      ("arm-0@actor2", 0)]

    _, stranger_secret = zmq.auth.create_certificates(tmp_path, "stranger")
    stranger = transports.actor("zmq", learner.address, options=ZmqClientOptions(
        curve_server_public=str(learner_curve.parent.parent / "actor1" / "curve" / "public_keys"
                                / "learner.key"),
        curve_client_secret=stranger_secret))
    plain = transports.actor("zmq", learner.address)
    assert not stranger.ready(timeout=REFUSED_WITHIN_S)
    assert not plain.ready(timeout=0.1)  # had the whole second above as well
    send_and_flush(actor, range(2, 3))  # the known actor is still served
    assert received_keys(learner) == [("arm-0@actor1", 2)]


# ----------------------------------------------------------------------------- plain links


@pytest.mark.parametrize("kind", ["grpc", "zmq"])
def test_a_plain_learner_on_a_reachable_address_warns_loudly(transports, keys, kind, caplog):
    caplog.set_level(logging.WARNING, logger="transport")
    transports.learner(kind)  # 127.0.0.1: plain is fine there
    protected = (GrpcServerOptions(tls_cert=str(keys / "learner" / "tls.crt"),
                                   tls_key=str(keys / "learner" / "tls.key")) if kind == "grpc"
                 else ZmqServerOptions(
                     curve_server_secret=str(keys / "learner" / "curve" / "private_keys"
                                             / "learner.key_secret"),
                     curve_clients_dir=str(keys / "learner" / "curve" / "public_keys")))
    transports.learner(kind, host="0.0.0.0", options=protected)
    assert not [r for r in caplog.records if "PLAIN" in r.getMessage()]
    transports.learner(kind, host="0.0.0.0")
    [warning] = [r for r in caplog.records if "PLAIN" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "0.0.0.0" in warning.getMessage()
    assert warning.getMessage().count("\n") >= 5  # a paragraph, not a line lost in the log


def test_identity_rules():
    assert grpc_peer_host("ipv4:10.0.0.5:4321") == "10.0.0.5"
    assert grpc_peer_host("ipv6:[::1]:4321") == "::1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("*") and not is_loopback("10.0.0.5")
    # On a plain link the host scopes an announced id: another machine cannot collide with it.
    here, there = (Caller(f"ipv4:{h}:1", h, "arm-0") for h in ("10.0.0.5", "10.0.0.6"))
    assert here.key != there.key and here.name == there.name == "arm-0"
    named = Caller("ipv4:10.0.0.5:1", "10.0.0.5", "arm-0", principal="actor1")
    assert (named.name, named.key, named.slot) == ("arm-0@actor1", "arm-0@actor1", "actor1")
    book = TokenBook({"t" * 20: "actor1"}, shared="s" * 20)
    assert book.identify("Bearer " + "t" * 20) == (True, "actor1")
    assert book.identify("Bearer " + "s" * 20) == (True, None)  # the shared token names nobody
    assert book.identify("t" * 20) == (False, None) and book.identify(None) == (False, None)


def test_security_config_reaches_the_options_and_refuses_strays(keys):
    learner = from_dict(LearnerConfig, {"security": {"tls_cert": "c", "tls_key": "k",
                                                     "tokens_file": "t"}})
    options = learner.security.transport_options("grpc", max_actors=3)
    assert (options.tls_cert, options.tls_key, options.tokens_file, options.max_actors) == (
        "c", "k", "t", 3)
    with pytest.raises(ConfigError, match="only apply to the grpc transport"):
        learner.security.transport_options("zmq", max_actors=3)
    with pytest.raises(ConfigError, match="go together"):
        from_dict(LearnerConfig, {"security": {"tls_cert": "c"}})
    actor = from_dict(ActorConfig, {"transport": "zmq", "security": {
        "curve_server_public": "p", "curve_client_secret": "s"}})
    assert actor.security.transport_options("zmq").curve_client_secret == "s"
    with pytest.raises(ConfigError, match="needs tls_ca"):
        from_dict(ActorConfig, {"security": {"tls_cert": "c", "tls_key": "k"}})


def test_a_shared_token_admits_every_holder_and_names_none(transports, keys, tmp_path):
    shared = tmp_path / "shared.token"
    shared.write_text("s" * 43 + "\n")
    shared.chmod(0o600)
    learner = transports.learner("grpc", options=GrpcServerOptions(token_file=str(shared)))
    actor = transports.actor("grpc", learner.address, client_id="arm-0",
                             options=GrpcClientOptions(token_file=str(shared)))
    send_and_flush(actor, range(1))
    assert received_keys(learner) == [("arm-0", 0)]  # scoped by host, like a plain link
    stranger = transports.actor("grpc", learner.address, options=GrpcClientOptions(
        token_file=str(keys / "actor1" / "token")))
    assert not stranger.ready(timeout=10)  # refused at once


def test_ids_that_could_pass_for_another_key_are_refused(transports):
    """"arm-0@actor1" announced on a plain link must not read as actor1's arm-0."""
    learner = transports.learner("grpc")
    channel, stub, metadata = raw_stub(learner.address, client_id="arm-0@actor1")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Ready(services_pb2.Empty(), metadata=metadata, timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    for kind in ("grpc", "zmq"):
        with pytest.raises(ValueError, match="bad client id"):
            make_actor_transport(kind, learner.address, client_id="arm-0@actor1")
