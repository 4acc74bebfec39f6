"""Learner restarts and actors that die: nothing is lost, nobody hangs (LeRobot #3979)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.transport.conftest import NETWORK_KINDS
from tests.transport.helpers import drain, encoded_episode, wait_for
from transport import codec
from transport.factory import ZmqServerOptions, make_learner_transport

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_learner_restart_mid_stream_loses_nothing_and_duplicates_nothing(transports, kind):
    first = transports.learner(kind)
    port = int(first.address.rsplit(":", 1)[1])
    actor = transports.actor(kind, first.address)
    assert actor.ready(timeout=10)
    total = 40
    sender = threading.Thread(
        target=lambda: [
            actor.send_transitions(encoded_episode(actor.client_id, seq)) for seq in range(total)
        ]
    )
    sender.start()
    received = []
    wait_for(
        lambda: received.extend(first.poll_transitions(timeout=0.05)) or len(received) >= 10,
        timeout=30,
    )
    first.stop(grace=0)  # killed mid-stream: in-flight payloads are cut off
    received.extend(drain(first, timeout=0.05))

    # The restarted learner restores the first one's state (as from a checkpoint, through JSON)
    # before serving on the same port, so the actor's resends of acknowledged payloads are dropped.
    saved = json.loads(json.dumps(first.state()))
    second = make_learner_transport(kind, port=port, push_frequency_s=0.05)
    second.restore(saved)
    second.start()
    try:
        sender.join(timeout=60)
        assert actor.flush(timeout=60), "the actor never got its payloads acknowledged"
        received.extend(drain(second, timeout=0.2))
    finally:
        second.stop(grace=0)
    seqs = sorted(codec.read_header(r.payload).seq for r in received)
    assert seqs == list(range(total))  # every transition exactly once


ACTOR_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from transport.factory import make_actor_transport
    from tests.transport.helpers import encoded_episode
    actor = make_actor_transport({kind!r}, {address!r}, client_id="doomed", max_backoff_s=0.2)
    assert actor.ready(timeout=20)
    actor.send_transitions(encoded_episode("doomed", 0))
    actor.flush(timeout=20)
    print("streaming", flush=True)
    seq = 1
    while True:  # keep every stream busy until SIGKILL
        actor.send_transitions(encoded_episode("doomed", seq, steps=50, size=64))
        seq += 1
""")


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_killed_actor_does_not_block_its_replacement(transports, kind):
    learner = (
        transports.learner(kind, options=ZmqServerOptions(client_timeout_s=1.0))
        if kind == "zmq"
        else transports.learner(kind)
    )
    learner.publish_parameters(codec.encode({"w": np.ones(10, np.float32)}), version=1)
    script = ACTOR_SCRIPT.format(root=str(ROOT), kind=kind, address=learner.address)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "streaming"
        wait_for(lambda: "doomed" in learner.connected_clients(), timeout=20)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    wait_for(lambda: "doomed" not in learner.connected_clients(), timeout=20)  # noticed it vanished

    replacement = transports.actor(kind, learner.address, client_id="replacement")
    assert replacement.ready(timeout=10)
    replacement.send_transitions(encoded_episode("replacement", 0))
    assert replacement.flush(timeout=20)
    assert wait_for(replacement.latest_parameters, timeout=20)[0] == 1
    senders = {r.client_id for r in drain(learner)}
    assert "replacement" in senders and "doomed" in senders
