"""ZeroMQ specifics: raw-socket bad input, parameter push rate over PUB/SUB."""

import logging
import os
import time

import numpy as np
import pytest
import zmq

from tests.transport.helpers import drain, encoded_episode, wait_for
from transport import codec, zmq_protocol
from transport.interface import CODEC_HILJAX, params_topic, unpack_parameters

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def zmq_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def raw_dealer(context, address):
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://{address}")
    return dealer


def test_bad_messages_are_refused_and_others_still_served(transports, zmq_context, caplog):
    caplog.set_level(logging.ERROR, logger="transport")
    learner = transports.learner("zmq", max_payload_bytes=1 << 20)
    dealer = raw_dealer(zmq_context, learner.address)
    dealer.send_multipart([b"T", b"junk-sender"])  # wrong frame count
    dealer.send_multipart([b"X", b"junk-sender", b"", b""])  # unknown kind
    dealer.send_multipart([b"T", b"junk-sender", b"\x01", b"HJXP"])  # bad sequence frame
    dealer.send_multipart([b"T", b"junk-sender", zmq_protocol.pack_seq(4), os.urandom(100)])
    assert dealer.poll(10_000)
    kind, seq, reason = dealer.recv_multipart()
    assert (kind, zmq_protocol.unpack_seq(seq)) == (
        zmq_protocol.NACK,
        4,
    ) and b"unknown payload format" in reason

    oversize = raw_dealer(zmq_context, learner.address)  # dropped by MAXMSGSIZE, never buffered
    oversize.send_multipart([b"T", b"huge-sender", zmq_protocol.pack_seq(0), bytes(2 << 20)])

    good = transports.actor("zmq", learner.address, client_id="good-actor")
    assert good.ready(timeout=10)
    good.send_transitions(encoded_episode("good-actor", 0))
    assert good.flush(timeout=20)
    assert [r.client_id for r in drain(learner)] == ["good-actor"]
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert logged.count("junk-sender") >= 4


def test_actor_drops_a_payload_the_learner_refuses(transports, caplog):
    caplog.set_level(logging.ERROR, logger="transport")
    learner = transports.learner("zmq")
    actor = transports.actor("zmq", learner.address, client_id="sloppy")
    assert actor.ready(timeout=10)
    actor.send_transitions(b"HJXP" + bytes(40))
    actor.send_transitions(encoded_episode("sloppy", 1))
    assert actor.flush(timeout=20)
    [received] = drain(learner)
    assert codec.read_header(received.payload).seq == 1
    assert any("refused" in r.getMessage() and "sloppy" in r.getMessage() for r in caplog.records)


def test_parameters_are_published_at_most_once_per_period(transports, zmq_context):
    period = 0.3
    learner = transports.learner("zmq", push_frequency_s=period)
    actor = transports.actor("zmq", learner.address)
    assert actor.ready(timeout=10)
    sub = zmq_context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, params_topic(CODEC_HILJAX))
    sub.connect(f"tcp://127.0.0.1:{learner.parameter_port}")
    learner.publish_parameters(codec.encode({}), version=0)
    assert sub.poll(10_000)
    versions, started = [unpack_parameters(sub.recv())[1]], time.monotonic()
    for version in range(1, 40):
        learner.publish_parameters(codec.encode({"v": np.array(version)}), version=version)
        time.sleep(0.03)
    learner.publish_parameters(codec.encode({}), version=99)
    while versions[-1] != 99:
        assert sub.poll(10_000)
        versions.append(unpack_parameters(sub.recv())[1])
    elapsed = time.monotonic() - started
    assert versions == sorted(versions)
    assert len(versions) <= elapsed / period + 3  # (+1 resend for the actor's own subscription)
    wait_for(lambda: actor.latest_parameters()[0] == 99)


def test_the_first_publish_wait_is_immediate_not_an_overflow():
    """Before the first push `published_at` is -inf; the poll timeout must still be a small int
    (it once raised OverflowError and killed the I/O thread when parameters arrived mid-poll)."""
    from types import SimpleNamespace

    from transport.zmq_server import ZmqLearnerServer, _LoopState

    server = SimpleNamespace(push_frequency_s=0.3, _publish_pending=lambda state: True)
    state = _LoopState()
    assert ZmqLearnerServer._publish_wait_ms(server, state) == 1
    state.published_at = time.monotonic()
    assert 1 <= ZmqLearnerServer._publish_wait_ms(server, state) <= 301


def test_an_actor_over_its_byte_cap_waits_while_the_others_go_by(transports):
    """The I/O thread keeps reading while one client's payloads wait for room (MAX_BACKLOG)."""
    from transport.interface import KIND_TRANSITIONS

    learner = transports.learner("zmq", max_payload_bytes=1 << 20)
    payload = encoded_episode("greedy", 0)
    learner._queues[KIND_TRANSITIONS].max_client_bytes = len(payload)  # one payload per client
    greedy = transports.actor("zmq", learner.address, client_id="greedy")
    polite = transports.actor("zmq", learner.address, client_id="polite")
    assert greedy.ready(timeout=10) and polite.ready(timeout=10)
    for seq in range(3):
        greedy.send_transitions(encoded_episode("greedy", seq))
    wait_for(lambda: len(learner._queues[KIND_TRANSITIONS]) == 1)  # greedy's first, the rest wait
    polite.send_transitions(encoded_episode("polite", 0))
    assert polite.flush(timeout=20)  # acknowledged although greedy's payloads still wait
    received = drain(learner)
    assert [r.client_id for r in received][:2] == ["greedy", "polite"]
    while not greedy.flush(timeout=0.2):  # each drain makes room for greedy's next one
        received += drain(learner)
    received += drain(learner)
    assert sorted(r.client_id for r in received) == ["greedy"] * 3 + ["polite"]
