"""Exactly-once episodes across learner crashes: the journal (hiljax.run.durability) on its own,
then one real SIGKILL/restart cycle of a learner process fed by two actor processes."""

from __future__ import annotations

import threading

import pytest

from hiljax.run.durability import COUNTER, JournaledQueue, PayloadJournal, attach_journal
from transport.interface import KIND_TRANSITIONS, Received


def _item(n: int, client: str = "a") -> Received:
    return Received(client, "hiljax", f"episode {n}".encode() * 10, KIND_TRANSITIONS)


def test_journal_survives_a_torn_tail_and_reopens_behind_it(tmp_path):
    journal = PayloadJournal(tmp_path)
    for n in range(3):
        assert journal.append("a", "hiljax", _item(n).payload) == n
    journal.close()
    segment = next(tmp_path.glob("seg_*.log"))
    segment.write_bytes(segment.read_bytes()[:-5])  # killed while writing record 2
    reopened = PayloadJournal(tmp_path)
    assert [r.payload for r in reopened.records(0)] == [_item(0).payload, _item(1).payload]
    assert reopened.append("b", "lerobot", b"next") == 2  # the torn record was never acked
    assert [(r.index, r.client_id, r.codec) for r in reopened.records(2)] == [(2, "b", "lerobot")]


def test_old_segments_go_once_two_checkpoints_hold_them(tmp_path):
    journal = PayloadJournal(tmp_path)
    for checkpoint in range(3):
        for n in range(2):
            journal.append("a", "hiljax", _item(10 * checkpoint + n).payload)
        journal.checkpointed(journal.next_index)
    # Records [0, 4) are in the checkpoint before the newest: only the newest's margin stays.
    assert [r.index for r in journal.records(0)] == [4, 5]
    assert not journal.holds(b"x" * 16)


def test_queue_journals_before_admitting_and_acknowledges_a_resend_once(tmp_path):
    from transport.queues import PayloadQueue

    queue = JournaledQueue(PayloadQueue(max_items=2, max_bytes=1 << 20),
                           PayloadJournal(tmp_path), taken=0)
    assert queue.put(_item(0), 10) and queue.put(_item(1), 10)
    assert not queue.put(_item(2), 10, timeout=0.01)  # full: neither journalled nor acked
    assert queue.journal.next_index == 2
    assert queue.put(_item(0), 10, timeout=0)  # a resend: acknowledged, not queued again
    assert [i.payload for i in queue.get_many()] == [_item(0).payload, _item(1).payload]
    assert queue.taken == 2 and queue.resends_acknowledged == 1


def test_a_full_queue_admits_once_the_ingest_loop_takes(tmp_path):
    from transport.queues import PayloadQueue

    queue = JournaledQueue(PayloadQueue(max_items=1, max_bytes=1 << 20),
                           PayloadJournal(tmp_path), taken=0)
    assert queue.put(_item(0), 10)
    waiting = threading.Thread(target=queue.put, args=(_item(1), 10, 5.0))
    waiting.start()
    assert [i.payload for i in queue.get_many(timeout=1.0)] == [_item(0).payload]
    waiting.join(timeout=5)
    assert [i.payload for i in queue.get_many(timeout=1.0)] == [_item(1).payload]
    assert [r.index for r in queue.journal.records(0)] == [0, 1]


class _FakeLearner:
    """What attach_journal touches of hiljax.learner.Learner."""

    def __init__(self, run_dir, counters=None):
        self.run_dir, self.counters, self.inserted, self.saves = run_dir, dict(counters or {}), [], []
        self.transport = None

    def ingest(self, timeout: float = 0.0) -> int:
        return self.ingest_items(self.transport.poll_transitions(timeout))

    def ingest_items(self, items) -> int:
        self.inserted.extend(item.payload for item in items)
        return len(items)

    def save(self):
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        self.saves.append(dict(self.counters))
        return self.run_dir / "checkpoints"


def test_a_restart_replays_what_the_checkpoint_lacks(tmp_path):
    from transport.factory import make_learner_transport

    transport = make_learner_transport("inproc")
    learner = _FakeLearner(tmp_path)
    learner.transport = transport
    attach_journal(learner, transport)
    assert learner.saves == [{COUNTER: 0}]  # a fresh run saves at once: resumable from now on
    queue = transport._queues[KIND_TRANSITIONS]
    for n in range(3):
        queue.put(_item(n), 10)
    learner.ingest()
    learner.save()  # holds records [0, 3)
    for n in range(3, 5):
        queue.put(_item(n), 10)  # acknowledged, then the learner is killed

    restarted = _FakeLearner(tmp_path, counters=learner.saves[-1])
    transport = make_learner_transport("inproc")
    restarted.transport = transport
    attach_journal(restarted, transport)
    assert restarted.inserted == [_item(3).payload, _item(4).payload]
    assert transport._queues[KIND_TRANSITIONS].put(_item(4), 10)  # the resend: dropped
    assert transport.poll_transitions() == []


def test_saving_waits_for_an_ingest_in_flight(tmp_path):
    from transport.factory import make_learner_transport

    transport = make_learner_transport("inproc")
    learner = _FakeLearner(tmp_path)
    learner.transport = transport
    durable = attach_journal(learner, transport)
    transport._queues[KIND_TRANSITIONS].put(_item(0), 10)
    with durable.paused:  # an ingest between taking items and inserting them
        saver = threading.Thread(target=learner.save)
        saver.start()
        saver.join(timeout=0.2)
        assert saver.is_alive()
    saver.join(timeout=5)
    assert not saver.is_alive()


@pytest.mark.timeout(120)
def test_one_learner_sigkill_cycle_loses_and_duplicates_nothing(tmp_path):
    from benchmarks.kill_restart import run_kill_cycles

    # learn=False: no round to compile, so the cycle costs two learner start-ups and little more.
    result = run_kill_cycles("grpc", 1, learn=False, replace_actor_every=1,
                             stream_s=(1.0, 1.5), final_stream_s=1.0, workdir=tmp_path)
    assert result["episodes_acknowledged"] > 0 and result["actors_replaced"] == 1
    assert result["transitions_lost"] == 0 and result["transitions_duplicated"] == 0, result
    assert result["episodes_partial"] == 0 and result["episodes_unknown"] == 0
    assert result["actors_flushed"] and result["learner_exit"] == 0
