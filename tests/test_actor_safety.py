"""An actor whose learner goes away stops its robot, applies on_learner_lost, and carries on
when the learner is back (real ZeroMQ sockets; the learner side is the transport alone)."""

import threading
import time

import pytest

from hiljax.actor import Actor
from hiljax.config import ActorConfig
from tests.sac_helpers import tiny_config
from tests.test_actor import DictPendulum
from tests.transport.helpers import wait_for
from transport.factory import make_actor_transport, make_learner_transport

pytestmark = pytest.mark.timeout(90)


class CountingEnv(DictPendulum):
    """Counts steps and closes, as a robot would notice them."""

    steps = 0
    closes = 0

    def step(self, action):
        CountingEnv.steps += 1
        time.sleep(0.005)  # a robot's pace, so the test's clock is not raced
        return super().step(action)

    def close(self):
        CountingEnv.closes += 1


def _received(learner, got: list) -> int:
    got.extend(learner.poll_transitions(timeout=0.05))
    learner.poll_interactions()
    return len(got)


def test_the_robot_stops_while_the_learner_is_gone_and_resumes_when_it_is_back():
    policy = tiny_config(input_features={"observation.state": (18,)})
    learner = make_learner_transport("zmq", host="127.0.0.1", port=0).start()
    port = int(learner.address.rsplit(":", 1)[1])
    config = ActorConfig(policy=policy, transport="zmq", warmup_steps=10**9,
                         learner_timeout_s=1.0, on_learner_lost="disconnect")
    builds = []

    def make_env():
        builds.append(1)
        return CountingEnv(length=10)

    transport = make_actor_transport("zmq", learner.address)
    assert transport.ready(timeout=10)
    stop = threading.Event()
    actor = Actor(config, make_env(), transport, make_env=make_env, stop=stop)
    runner = threading.Thread(target=actor.run, daemon=True)
    CountingEnv.steps = CountingEnv.closes = 0
    runner.start()
    got: list = []
    try:
        wait_for(lambda: _received(learner, got) >= 3, timeout=20)
        learner.stop()  # the learner is gone
        wait_for(lambda: CountingEnv.closes == 1, timeout=20)  # disconnected: torque policy
        still = CountingEnv.steps
        time.sleep(1.0)
        assert CountingEnv.steps == still  # the robot does not move while the learner is away

        learner = make_learner_transport("zmq", host="127.0.0.1", port=port).start()
        wait_for(lambda: CountingEnv.steps > still + 20, timeout=30)  # acting again
        assert len(builds) == 2  # the env was rebuilt (a real arm reconnects)
        got.clear()
        wait_for(lambda: _received(learner, got) >= 2, timeout=20)  # episodes flow again
    finally:
        stop.set()
        runner.join(timeout=20)
        transport.close()
        learner.stop()
    assert not runner.is_alive()


def test_a_full_send_queue_holds_the_robot_and_stopping_keeps_every_episode(tmp_path):
    policy = tiny_config(input_features={"observation.state": (18,)})
    config = ActorConfig(policy=policy, transport="zmq", warmup_steps=10**9,
                         learner_timeout_s=None)  # only the back-pressure acts here
    # Nobody listens there: nothing is ever acknowledged, so the queue (2 payloads) fills.
    transport = make_actor_transport("zmq", "127.0.0.1:9", max_queue_items=2,
                                     spool_dir=str(tmp_path))
    stop = threading.Event()
    actor = Actor(config, CountingEnv(length=5), transport, stop=stop)
    runner = threading.Thread(target=actor.run, daemon=True)
    CountingEnv.steps = 0
    runner.start()
    try:
        wait_for(lambda: transport.pending() == 2, timeout=20)
        time.sleep(0.3)
        held = CountingEnv.steps
        time.sleep(1.0)
        assert CountingEnv.steps == held  # waiting for room, robot still
    finally:
        stop.set()
        runner.join(timeout=20)
        transport.close()
    assert not runner.is_alive()
    # Every episode queued (the queue's two slots also hold episode statistics) and the one
    # that waited for room are on disk for the next start.
    assert actor.episodes_dropped == 0 and actor.episodes_sent >= 1
    assert len(list(tmp_path.glob("*.payload"))) == actor.episodes_sent + 1
