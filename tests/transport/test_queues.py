"""The small thread-safe pieces under both transports."""

import threading

import pytest

from transport.errors import TransportClosed, TransportFull
from transport.interface import (
    CODEC_HILJAX,
    CODEC_LEROBOT,
    normalise_parameters,
    pack_parameters,
    unpack_parameters,
)
from transport.queues import Backoff, DuplicateFilter, NewestSlot, OutgoingQueue, PayloadQueue


def test_payload_queue_is_bounded_by_items_and_bytes():
    queue = PayloadQueue(max_items=2, max_bytes=10)
    assert queue.put("a", 4, timeout=0) and queue.put("b", 4, timeout=0)
    assert not queue.put("c", 1, timeout=0)  # item bound
    assert queue.get_many(max_items=1) == ["a"]
    assert not queue.put("d", 7, timeout=0)  # byte bound
    assert queue.get_many() == ["b"]
    assert queue.put("huge", 100, timeout=0)  # an empty queue admits anything, else it would stall
    assert queue.get_many(timeout=0.01) == ["huge"] and queue.get_many(timeout=0.01) == []


def test_one_client_cannot_fill_the_queue():
    """Per-client cap: client a holds back-pressure at its cap while b still finds room."""
    queue = PayloadQueue(max_items=10, max_bytes=100, max_client_bytes=30)
    assert queue.put("a1", 20, timeout=0, client="a") and queue.put("a2", 10, timeout=0, client="a")
    assert not queue.put("a3", 1, timeout=0, client="a")  # a's cap
    assert queue.put("b1", 30, timeout=0, client="b")  # the others are not held back
    assert queue.queued_bytes("a") == 30 and queue.queued_bytes() == 60
    assert queue.get_many(max_items=1) == ["a1"]
    assert queue.put("a3", 20, timeout=0, client="a")  # room under the cap again
    queue.get_many()
    assert queue.queued_bytes("a") == 0 and not queue._client_bytes  # no table left behind


def test_a_client_with_nothing_queued_may_send_one_payload_above_its_cap():
    queue = PayloadQueue(max_items=10, max_bytes=100, max_client_bytes=10)
    assert queue.put("b1", 5, timeout=0, client="b")
    assert queue.put("a-big", 50, timeout=0, client="a")  # else it could never pass
    assert not queue.put("a2", 1, timeout=0, client="a")
    assert not queue.put("c-huge", 60, timeout=0, client="c")  # the queue's own bound still holds


def test_the_client_is_read_from_the_item_and_the_default_cap_is_a_quarter():
    from transport.interface import Received

    queue = PayloadQueue(max_items=10, max_bytes=400)
    assert queue.max_client_bytes == 100
    item = Received("actor-1", CODEC_HILJAX, b"x" * 60)
    assert queue.put(item, 60, timeout=0) and queue.queued_bytes("actor-1") == 60
    assert not queue.put(item, 60, timeout=0)  # as Received, the servers' items
    assert queue.put("anonymous", 60, timeout=0)  # no client id: only the queue's bounds


def test_a_held_back_client_resumes_when_its_payloads_are_taken():
    """The servers' put waits (the actor's acknowledgement is delayed) until the learner takes
    that client's payloads, while the other client is served at once."""
    queue = PayloadQueue(max_items=10, max_bytes=100, max_client_bytes=10)
    queue.put("a1", 10, client="a")
    done = threading.Event()
    threading.Thread(target=lambda: (queue.put("a2", 10, timeout=10, client="a"), done.set()),
                     daemon=True).start()
    assert queue.put("b1", 10, timeout=0, client="b")
    assert not done.wait(0.05)
    assert queue.get_many(max_items=1) == ["a1"]
    assert done.wait(10) and queue.get_many() == ["b1", "a2"]


def test_outgoing_queue_keeps_entries_until_acknowledged():
    queue = OutgoingQueue(max_items=2, max_bytes=100)
    first = queue.put("transitions", b"one")
    queue.put("interactions", b"two")
    with pytest.raises(TransportFull):
        queue.put("transitions", b"three", timeout=0.05)
    assert queue.first().seq == first and [e.seq for e in queue.after(first, 5)] == [first + 1]
    assert queue.ack(first) and not queue.ack(first)
    assert not queue.wait_empty(0.01)
    queue.ack(first + 1)
    assert queue.wait_empty(0.01)
    queue.close()
    with pytest.raises(TransportClosed):
        queue.put("transitions", b"late")


def test_a_blocked_sender_resumes_when_room_appears():
    queue = OutgoingQueue(max_items=1, max_bytes=100)
    seq = queue.put("transitions", b"one")
    done = threading.Event()
    threading.Thread(
        target=lambda: (queue.put("transitions", b"two", timeout=10), done.set())
    ).start()
    assert not done.wait(0.05)
    queue.ack(seq)
    assert done.wait(10)


def test_duplicate_filter_floor_and_state_round_trip():
    duplicates = DuplicateFilter(max_tracked_per_client=3)
    for seq in (0, 1, 3):
        duplicates.mark("a", seq)
    assert duplicates.seen("a", 1) and duplicates.seen("a", 3) and not duplicates.seen("a", 2)
    assert not duplicates.seen("b", 0)
    restored = DuplicateFilter(state=duplicates.state())
    assert restored.seen("a", 0) and restored.seen("a", 3) and not restored.seen("a", 2)
    for seq in (
        5,
        6,
        7,
        8,
    ):  # a gap that never fills: the oldest are forgotten, memory stays bounded
        duplicates.mark("a", seq)
    assert len(duplicates.state()["above"]["a"]) <= 3


@pytest.mark.parametrize(
    "state",
    [
        [],
        {"floor": {}, "extra": {}},
        {"floor": [["a", 1]]},
        {"floor": {"a": -1}},
        {"floor": {"a": "3"}},
        {"floor": {"a": True}},
        {"above": {"a": 5}},
        {"above": {"a": [1, 2.5]}},
    ],
)
def test_duplicate_filter_refuses_malformed_states(state):
    with pytest.raises(ValueError, match="duplicate filter"):
        DuplicateFilter(state=state)


def test_newest_slot_ignores_older_versions():
    slot = NewestSlot()
    assert slot.wait_newer(-1, 0.01) is None
    assert slot.offer(2, "two") and not slot.offer(1, "one") and not slot.offer(2, "again")
    assert slot.get() == (2, "two") and slot.wait_newer(2, 0.01) is None


def test_backoff_grows_to_its_cap():
    backoff = Backoff(initial=0.1, maximum=0.4)
    delays = [backoff.next_delay() for _ in range(5)]
    assert delays[0] <= 0.1 and max(delays) <= 0.4 and delays[-1] > 0.3
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_parameters_envelope_and_normalisation():
    codec_name, version, payload = unpack_parameters(pack_parameters(CODEC_LEROBOT, 2**40, b"data"))
    assert (codec_name, version, bytes(payload)) == (CODEC_LEROBOT, 2**40, b"data")
    assert normalise_parameters(b"x") == {CODEC_HILJAX: b"x"}
    with pytest.raises(ValueError):
        normalise_parameters({"pickle": b"x"})


def test_duplicate_filter_forgets_the_longest_silent_client_beyond_its_bound():
    duplicates = DuplicateFilter(max_clients=3)
    for client in ("a", "b", "c"):
        duplicates.mark(client, 0)
    duplicates.mark("a", 1)  # a is recent again: b is now the longest silent
    duplicates.mark("fresh-id", 0)  # one more id than the bound
    assert len(duplicates) == 3
    assert not duplicates.seen("b", 0)  # forgotten
    assert duplicates.seen("a", 1) and duplicates.seen("c", 0) and duplicates.seen("fresh-id", 0)
    assert set(duplicates.state()["floor"]) == {"a", "c", "fresh-id"}
    restored = DuplicateFilter(state=duplicates.state(), max_clients=3)
    assert len(restored) == 3 and restored.seen("a", 0)


def test_byte_budget_waits_for_room_gives_up_after_its_timeout_and_admits_one_big_item():
    from transport.queues import ByteBudget

    budget = ByteBudget(100)
    assert budget.reserve(100, timeout=0)  # fills it
    assert not budget.reserve(1, timeout=0.05)  # no room: gives up
    threading.Timer(0.05, budget.release, args=(60,)).start()
    assert budget.reserve(50, timeout=5)  # room came
    budget.release(90)
    assert budget.held == 0 and budget.reserve(500, timeout=0)  # an empty budget takes anything
