"""Sixteen actors on one learner at once, over each network transport (the LeRobot setting of
several robots feeding one learner): every payload arrives exactly once, every actor gets the
parameters the learner publishes. Actors run on threads here (benchmarks/many_actors.py runs
them as processes); no timing assertions, only bounded waits."""

import threading
from collections import Counter

import numpy as np
import pytest

from tests.transport.conftest import NETWORK_KINDS
from tests.transport.helpers import drain, encoded_episode, wait_for
from transport import codec

pytestmark = pytest.mark.timeout(60)

ACTORS = 16
EPISODES = 6  # per actor


def parameters(version: int) -> bytes:
    return codec.encode({"w": np.full(1000, version, np.float32)}, sender="learner", seq=version)


def statistics(sender: str, seq: int) -> bytes:
    return codec.encode({}, sender=sender, seq=seq, meta={"Episodic reward": float(seq)})


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_sixteen_actors_are_served_at_once(transports, kind):
    learner = transports.learner(kind)
    actors = [transports.actor(kind, learner.address, client_id=f"actor-{i:02d}")
              for i in range(ACTORS)]
    errors: list[BaseException] = []

    def actor_thread(actor) -> None:
        try:  # handshakes and sends of all sixteen overlap
            assert actor.ready(timeout=20), f"{actor.client_id} got no handshake"
            for seq in range(EPISODES):
                actor.send_transitions(encoded_episode(actor.client_id, seq, steps=3, size=8))
            actor.send_interactions(statistics(actor.client_id, EPISODES))
            assert actor.flush(timeout=30), f"{actor.client_id}: payloads not acknowledged"
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=actor_thread, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    received, statistics_received = [], []

    def everything_arrived() -> bool:
        received.extend(learner.poll_transitions(timeout=0.05))
        statistics_received.extend(learner.poll_interactions())
        return (len(received) >= ACTORS * EPISODES and len(statistics_received) >= ACTORS) \
            or bool(errors)

    wait_for(everything_arrived, timeout=40)
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    # Every actor's queue is acknowledged; nothing more may trickle in (no duplicates).
    received += drain(learner, "transitions")
    statistics_received += drain(learner, "interactions")

    expected = {(actor.client_id, seq) for actor in actors for seq in range(EPISODES)}
    keys = []
    for item in received:
        header = codec.read_header(item.payload)
        assert item.client_id == header.sender  # the transport names the actor that sent it
        keys.append((header.sender, header.seq))
    counts = Counter(keys)
    assert set(counts) == expected
    assert all(count == 1 for count in counts.values()), {k: c for k, c in counts.items() if c > 1}
    decoded = codec.decode(received[-1].payload).arrays
    assert decoded["observations"]["front"].shape == (4, 8, 8, 3)
    assert sorted(codec.read_header(i.payload).sender for i in statistics_received) == \
        sorted(actor.client_id for actor in actors)
    assert learner.connected_clients() >= {actor.client_id for actor in actors}

    # Parameters: every actor gets each published version (newest only, so wait for each).
    for version in (1, 2):
        learner.publish_parameters(parameters(version), version=version)
        for actor in actors:
            got = wait_for(lambda a=actor, v=version: (a.latest_parameters() or (-1,))[0] == v
                           and a.latest_parameters(), timeout=20)
            assert codec.decode(got[1]).arrays["w"][0] == version
