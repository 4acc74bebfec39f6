import pytest

from transport.factory import make_actor_transport, make_learner_transport

NETWORK_KINDS = ["grpc", "zmq"]
ALL_KINDS = ["grpc", "zmq", "inproc"]


@pytest.fixture
def transports():
    """Factory of started learners and connected actors, all stopped at teardown."""
    made = []

    class Maker:
        def learner(self, kind, **options):
            options.setdefault("push_frequency_s", 0.05)
            learner = make_learner_transport(kind, port=options.pop("port", 0), **options).start()
            made.append(learner)
            return learner

        def actor(self, kind, address, **options):
            options.setdefault("max_backoff_s", 0.2)
            actor = make_actor_transport(kind, address, **options)
            made.append(actor)
            return actor

    yield Maker()
    for thing in reversed(made):
        if hasattr(thing, "close"):
            thing.close()
        else:
            thing.stop(grace=0)
