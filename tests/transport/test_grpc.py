"""gRPC specifics: a stock LeRobot client, capacity, push rate, and refused input."""

import logging
import os
import time

import grpc
import pytest

from tests.transport.helpers import drain, encoded_episode, fixture_bytes, manifest, wait_for
from transport import codec, lerobot_codec
from transport._generated import services_pb2, services_pb2_grpc
from transport.factory import GrpcServerOptions
from transport.interface import CODEC_HILJAX, CODEC_LEROBOT, unpack_parameters

pytestmark = pytest.mark.timeout(60)
CHUNK = 2 * 1024 * 1024


def lerobot_style_chunks(payload: bytes, message_class):
    """The reference's chunking, written out here so this client needs nothing from transport/."""
    sent = 0
    while sent < len(payload):
        if sent + CHUNK >= len(payload):
            state = services_pb2.TRANSFER_END
        elif sent == 0:
            state = services_pb2.TRANSFER_BEGIN
        else:
            state = services_pb2.TRANSFER_MIDDLE
        yield message_class(transfer_state=state, data=payload[sent : sent + CHUNK])
        sent += CHUNK


@pytest.fixture
def stub_for():
    channels = []

    def make(address):
        channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 4 << 20)]
        )
        channels.append(channel)
        return services_pb2_grpc.LearnerServiceStub(channel)

    yield make
    for channel in channels:
        channel.close()


def test_stock_lerobot_client_built_from_the_stubs_alone(transports, stub_for):
    learner = transports.learner("grpc")
    learner.publish_parameters(
        {CODEC_LEROBOT: fixture_bytes("params_big.pt"), CODEC_HILJAX: codec.encode({})}, version=1
    )
    stub = stub_for(learner.address)
    stub.Ready(services_pb2.Empty(), timeout=10)

    # Like a stock actor: one long-lived stream carrying several episodes, no metadata.
    episodes = [fixture_bytes("transitions_images.pt"), fixture_bytes("transitions_state.pt")]
    stub.SendTransitions(
        (m for e in episodes for m in lerobot_style_chunks(e, services_pb2.Transition)), timeout=20
    )
    stub.SendInteractions(
        lerobot_style_chunks(fixture_bytes("interactions.pkl"), services_pb2.InteractionMessage),
        timeout=20,
    )

    received = drain(learner)
    assert [r.codec for r in received] == [CODEC_LEROBOT, CODEC_LEROBOT]
    assert received[0].client_id.startswith("ipv4:127.0.0.1:")  # named by its peer address
    assert [len(lerobot_codec.decode_transitions(r.payload)) for r in received] == [2, 3]
    [stats] = drain(learner, kind="interactions")
    assert lerobot_codec.decode_interactions(stats.payload)["Episodic reward"] == 1.0

    # Parameters arrive bare (no envelope), chunked exactly as LeRobot chunks them.
    call = stub.StreamParameters(services_pb2.Empty(), timeout=20)
    messages = [next(call) for _ in manifest()["files"]["params_big.pt"]["chunks"]]
    call.cancel()
    assert [(m.transfer_state, len(m.data)) for m in messages] == [
        (c["transfer_state"], c["bytes"]) for c in manifest()["files"]["params_big.pt"]["chunks"]
    ]
    assert b"".join(m.data for m in messages) == fixture_bytes("params_big.pt")


def test_hiljax_metadata_gets_the_versioned_envelope(transports, stub_for):
    learner = transports.learner("grpc")
    learner.publish_parameters(codec.encode({}, seq=5), version=5)
    stub = stub_for(learner.address)
    call = stub.StreamParameters(
        services_pb2.Empty(),
        timeout=20,
        metadata=(("hiljax-client-id", "x"), ("hiljax-param-codec", "hiljax")),
    )
    frame = next(call).data
    call.cancel()
    codec_name, version, payload = unpack_parameters(frame)
    assert (codec_name, version, codec.read_header(payload).seq) == (CODEC_HILJAX, 5, 5)


def test_parameters_are_pushed_at_most_once_per_period(transports, stub_for):
    period = 0.3
    learner = transports.learner("grpc", push_frequency_s=period)
    learner.publish_parameters(codec.encode({}), version=0)
    call = stub_for(learner.address).StreamParameters(
        services_pb2.Empty(), timeout=30, metadata=(("hiljax-client-id", "rate"),)
    )
    versions, started = [], time.monotonic()
    for version in range(1, 40):
        learner.publish_parameters(codec.encode({}), version=version)
        time.sleep(0.03)
    learner.publish_parameters(codec.encode({}), version=99)
    for message in call:
        versions.append(unpack_parameters(message.data)[1])
        if versions[-1] == 99:
            break
    call.cancel()
    elapsed = time.monotonic() - started
    assert versions == sorted(set(versions))  # never an older or repeated version
    assert len(versions) <= elapsed / period + 2  # rate bound, whatever the machine's speed


def test_callers_beyond_capacity_are_refused_not_left_hanging(transports, stub_for):
    learner = transports.learner("grpc", options=GrpcServerOptions(max_actors=1))  # 5 workers
    stub = stub_for(learner.address)
    streams = [
        stub.StreamParameters(services_pb2.Empty(), metadata=(("hiljax-client-id", f"s{i}"),))
        for i in range(learner.max_workers)
    ]
    wait_for(lambda: len(learner.connected_clients()) == learner.max_workers)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Ready(services_pb2.Empty(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    streams[0].cancel()
    wait_for(lambda: len(learner.connected_clients()) < learner.max_workers)
    stub.Ready(services_pb2.Empty(), timeout=10)  # a freed slot serves the next caller
    for stream in streams:
        stream.cancel()


def test_bad_streams_are_refused_and_others_still_served(transports, stub_for, caplog):
    learner = transports.learner("grpc", max_payload_bytes=1 << 20)
    stub = stub_for(learner.address)
    good = transports.actor("grpc", learner.address, client_id="good-actor")
    caplog.set_level(logging.ERROR, logger="transport")

    with pytest.raises(grpc.RpcError) as unknown_state:
        stub.SendTransitions(
            iter(
                [services_pb2.Transition(transfer_state=services_pb2.TRANSFER_UNKNOWN, data=b"x")]
            ),
            timeout=10,
            metadata=(("hiljax-client-id", "state-breaker"),),
        )
    assert unknown_state.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as oversize:
        stub.SendTransitions(
            lerobot_style_chunks(os.urandom(3 << 20), services_pb2.Transition),
            timeout=10,
            metadata=(("hiljax-client-id", "too-big"),),
        )
    assert oversize.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A stock actor's garbage is logged and skipped; its stream carries on.
    stub.SendTransitions(
        iter(
            [
                services_pb2.Transition(
                    transfer_state=services_pb2.TRANSFER_END, data=os.urandom(64)
                ),
                services_pb2.Transition(
                    transfer_state=services_pb2.TRANSFER_END,
                    data=fixture_bytes("transitions_state.pt"),
                ),
            ]
        ),
        timeout=10,
    )
    # A hiljax actor's malformed payload is refused, dropped, and the next one flows.
    good.send_transitions(b"HJXP" + bytes(40))
    good.send_transitions(encoded_episode("good-actor", 1))
    assert good.flush(timeout=20)

    received = drain(learner)
    assert [(r.client_id.startswith("ipv4:"), r.codec) for r in received] == [
        (True, CODEC_LEROBOT),
        (False, CODEC_HILJAX),
    ]
    logged = " ".join(record.getMessage() for record in caplog.records)
    for client in ("state-breaker", "too-big", "ipv4:127.0.0.1", "good-actor"):
        assert client in logged


def test_arriving_payloads_share_one_byte_budget_and_all_get_through(transports):
    """Calls told "no room" resend later: every payload arrives once, the budget ends empty."""
    payloads = {f"a{i}": [encoded_episode(f"a{i}", seq, steps=20, size=64) for seq in range(2)]
                for i in range(3)}
    size = len(payloads["a0"][0])
    learner = transports.learner("grpc", max_payload_bytes=2 * size,
                                 options=GrpcServerOptions(max_inflight_bytes=size + 1))
    actors = [transports.actor("grpc", learner.address, client_id=name) for name in payloads]
    for actor in actors:
        assert actor.ready(timeout=10)
        for payload in payloads[actor.client_id]:
            actor.send_transitions(payload)
    received = []
    wait_for(lambda: received.extend(learner.poll_transitions(timeout=0.05))
             or len(received) == 6, timeout=60)
    assert sorted(r.client_id for r in received) == sorted([*payloads] * 2)
    assert all(actor.flush(timeout=20) for actor in actors)
    assert learner._inflight.held == 0
