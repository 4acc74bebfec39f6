"""The shared interface, over real sockets on 127.0.0.1 (and in-process): same behaviour."""

import json
import threading

import numpy as np
import pytest

from tests.transport.conftest import ALL_KINDS, NETWORK_KINDS
from tests.transport.helpers import drain, encoded_episode, fixture_bytes, image_episode, wait_for
from transport import codec, lerobot_codec
from transport.errors import PayloadError, TransportFull
from transport.interface import CODEC_HILJAX, CODEC_LEROBOT, KIND_INTERACTIONS, KIND_TRANSITIONS

pytestmark = pytest.mark.timeout(60)


def big_parameters(version: int) -> bytes:
    # 5 MB: more than two 2 MiB chunks on gRPC
    return codec.encode(
        {"w": np.full(1_250_000, version, np.float32)}, sender="learner", seq=version
    )


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_round_trip_of_transitions_interactions_and_parameters(transports, kind):
    learner = transports.learner(kind)
    if kind != "inproc":
        assert learner.address.startswith("127.0.0.1:")  # loopback unless told otherwise
    actor = transports.actor(kind, learner.address)
    assert actor.ready(timeout=10)
    episode = image_episode(steps=5, size=128)
    actor.send_transitions(codec.encode(episode, sender=actor.client_id, seq=0))
    actor.send_interactions(
        codec.encode({"episodic_reward": np.float32(1.5)}, sender=actor.client_id, seq=1)
    )
    assert actor.flush(timeout=20)

    [transition] = wait_for(lambda: learner.poll_transitions(timeout=0.1))
    assert (transition.client_id, transition.codec, transition.kind) == (
        actor.client_id,
        CODEC_HILJAX,
        KIND_TRANSITIONS,
    )
    decoded = codec.decode(transition.payload).arrays
    np.testing.assert_array_equal(
        decoded["observations"]["front"], episode["observations"]["front"]
    )
    assert decoded["observations"]["front"].dtype == np.uint8
    [interaction] = wait_for(lambda: learner.poll_interactions(timeout=0.1))
    assert interaction.kind == KIND_INTERACTIONS
    assert codec.decode(interaction.payload).arrays["episodic_reward"] == np.float32(1.5)

    learner.publish_parameters(big_parameters(7), version=7)
    version, payload = wait_for(actor.latest_parameters)
    assert version == 7
    assert codec.decode(payload).arrays["w"][-1] == 7
    assert actor.client_id in learner.connected_clients()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_lerobot_payloads_are_recognised_on_the_same_port(transports, kind):
    learner = transports.learner(kind)
    actor = transports.actor(kind, learner.address)
    assert actor.ready(timeout=10)
    actor.send_transitions(fixture_bytes("transitions_state.pt"))
    actor.send_interactions(fixture_bytes("interactions.pkl"))
    assert actor.flush(timeout=20)
    [transition] = wait_for(lambda: learner.poll_transitions(timeout=0.1))
    assert transition.codec == CODEC_LEROBOT
    assert len(lerobot_codec.decode_transitions(transition.payload)) == 3
    [interaction] = wait_for(lambda: learner.poll_interactions(timeout=0.1))
    assert lerobot_codec.decode_interactions(interaction.payload)["Interaction step"] == 1234


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_actor_can_ask_for_lerobot_parameters(transports, kind):
    learner = transports.learner(kind)
    actor = transports.actor(kind, learner.address, param_codec=CODEC_LEROBOT)
    assert actor.ready(timeout=10)
    reference = fixture_bytes("params.pt")
    learner.publish_parameters(
        {CODEC_HILJAX: big_parameters(1), CODEC_LEROBOT: reference}, version=1
    )
    version, payload = wait_for(actor.latest_parameters)
    assert version == 1 and bytes(payload) == reference


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_eight_concurrent_actors_each_get_parameters_and_deliver_everything(transports, kind):
    learner = transports.learner(kind)
    learner.publish_parameters(big_parameters(3), version=3)
    actors = [transports.actor(kind, learner.address) for _ in range(8)]
    per_actor = 6

    def run(actor):
        assert actor.ready(timeout=20)
        for seq in range(per_actor):
            actor.send_transitions(encoded_episode(actor.client_id, seq))

    threads = [threading.Thread(target=run, args=(a,)) for a in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(actor.flush(timeout=30) for actor in actors)
    received = drain(learner)
    keys = sorted((r.client_id, codec.read_header(r.payload).seq) for r in received)
    assert keys == sorted((a.client_id, s) for a in actors for s in range(per_actor))
    for actor in actors:
        assert wait_for(actor.latest_parameters, timeout=20)[0] == 3


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_only_the_newest_parameters_are_kept(transports, kind):
    learner = transports.learner(kind, push_frequency_s=0.2)
    actor = transports.actor(kind, learner.address)
    assert actor.ready(timeout=10)
    for version in range(1, 30):
        learner.publish_parameters(codec.encode({"v": np.array(version)}), version=version)
    wait_for(lambda: (actor.latest_parameters() or (0,))[0] == 29, timeout=20)
    learner.publish_parameters(codec.encode({"v": np.array(1)}), version=1)  # older: ignored
    assert actor.latest_parameters()[0] == 29


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_full_learner_queue_applies_back_pressure_without_loss(transports, kind):
    learner = transports.learner(kind, queue_max_items=2)
    actor = transports.actor(kind, learner.address)
    assert actor.ready(timeout=10)
    for seq in range(8):
        actor.send_transitions(encoded_episode(actor.client_id, seq))
    assert not actor.flush(timeout=1.0)  # the learner holds back its acknowledgements
    received = []
    wait_for(
        lambda: received.extend(learner.poll_transitions(timeout=0.05)) or len(received) >= 8,
        timeout=30,
    )
    assert actor.flush(timeout=10)
    assert sorted(codec.read_header(r.payload).seq for r in received) == list(range(8))


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_actor_queue_is_bounded(transports, kind):
    actor = transports.actor(kind, "127.0.0.1:1", max_queue_items=2)  # nobody listens there
    actor.send_transitions(b"HJXP-one")
    actor.send_transitions(b"HJXP-two")
    with pytest.raises(TransportFull):
        actor.send_transitions(b"HJXP-three", timeout=0.2)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_actor_refuses_oversize_payloads_before_queueing(transports, kind):
    learner = transports.learner(kind)
    actor = transports.actor(kind, learner.address, max_payload_bytes=1000)
    with pytest.raises(PayloadError):
        actor.send_transitions(bytes(2000))


def send_and_flush(actor, seqs) -> None:
    assert actor.ready(timeout=10)
    for seq in seqs:
        actor.send_transitions(encoded_episode(actor.client_id, seq))
    assert actor.flush(timeout=10)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_restored_learner_refuses_payloads_acknowledged_before_the_restart(transports, kind):
    first = transports.learner(kind)
    send_and_flush(transports.actor(kind, first.address, client_id="actor-a"), range(2))
    assert len(drain(first)) == 2
    saved = json.loads(json.dumps(first.state()))  # as through a checkpoint file
    first.stop(grace=0)

    second = transports.learner(kind, start=False)  # a new learner object, as after a crash
    second.restore(saved)
    second.start()
    with pytest.raises(RuntimeError, match="before start"):
        second.restore(saved)  # once serving, a resend could already have slipped past
    # A new actor object with the same id numbers its payloads from 0 again, like an actor
    # resending payloads whose acknowledgement the restart cut off.
    send_and_flush(transports.actor(kind, second.address, client_id="actor-a"), range(3))
    assert [codec.read_header(r.payload).seq for r in drain(second)] == [2]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_restoring_an_empty_or_old_state_starts_a_fresh_filter(transports, kind):
    first = transports.learner(kind)
    send_and_flush(transports.actor(kind, first.address, client_id="actor-a"), range(2))
    drain(first)
    for old in ({}, {"duplicates": None}):  # no state yet, or a checkpoint from before state()
        learner = transports.learner(kind, start=False)
        learner.restore(first.state())
        learner.restore(old)  # replaces, never merges
        learner.start()
        send_and_flush(transports.actor(kind, learner.address, client_id="actor-a"), range(1))
        assert [codec.read_header(r.payload).seq for r in drain(learner)] == [0]
