import pytest

from transport.factory import KINDS as ALL_KINDS
from transport.factory import NETWORK_KINDS, make_actor_transport, make_learner_transport

__all__ = ["ALL_KINDS", "NETWORK_KINDS", "transports"]


@pytest.fixture
def transports():
    """Factory of learners (started unless start=False) and connected actors, all stopped at
    teardown."""
    made = []

    class Maker:
        def learner(self, kind, start=True, **options):
            options.setdefault("push_frequency_s", 0.05)
            learner = make_learner_transport(kind, port=options.pop("port", 0), **options)
            made.append(learner)
            return learner.start() if start else learner

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
