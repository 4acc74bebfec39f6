"""The actor's spool (transport.spool): unacknowledged episodes survive the actor process."""

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.transport.conftest import NETWORK_KINDS
from tests.transport.helpers import drain, encoded_episode, wait_for
from transport import codec
from transport.queues import OutgoingQueue
from transport.spool import Spool, SpoolBusy

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_a_payload_is_on_disk_until_acknowledged_and_statistics_are_not_spooled(tmp_path):
    queue = OutgoingQueue(8, 1 << 20, spool=Spool(tmp_path, 1 << 20))
    first = queue.put("transitions", b"episode 0")
    queue.put("interactions", b"statistics")  # metrics only: never on disk
    queue.put("transitions", b"episode 1")
    assert len(list(tmp_path.glob("*.payload"))) == 2
    queue.ack(first)
    assert len(list(tmp_path.glob("*.payload"))) == 1
    queue.close()  # the unacknowledged episode stays for the next process

    again = OutgoingQueue(8, 1 << 20, spool=Spool(tmp_path, 1 << 20))
    assert again.recovered == 1
    assert [(e.kind, bytes(e.payload)) for e in again.snapshot()] == [("transitions", b"episode 1")]
    again.ack(again.snapshot()[0].seq)
    assert not list(tmp_path.glob("*.payload"))
    again.close()


def test_recovered_payloads_come_first_and_in_the_order_they_were_recorded(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    for n in range(12):  # more than 10: numeric order, not the order of the names' first digit
        spool.write(f"episode {n}".encode())
    spool.close()
    queue = OutgoingQueue(64, 1 << 20, spool=Spool(tmp_path, 1 << 20))
    queue.put("transitions", b"new")
    assert [bytes(e.payload) for e in queue.snapshot()] == (
        [f"episode {n}".encode() for n in range(12)] + [b"new"])
    queue.close()


def test_a_damaged_file_is_set_aside_and_an_unfinished_write_forgotten(tmp_path, caplog):
    spool = Spool(tmp_path, 64)
    good, cut, flipped = (spool.write(f"episode {n}".encode()) for n in range(3))
    spool.close()
    cut.write_bytes(cut.read_bytes()[:-3])  # the disk lost the end
    data = bytearray(flipped.read_bytes())
    data[-1] ^= 0xFF
    flipped.write_bytes(bytes(data))
    (tmp_path / "000000000009.tmp").write_bytes(b"half a payload")  # killed while writing
    (tmp_path / "000000000010.payload").write_bytes(b"x" * 200)  # over the size limit

    reopened = Spool(tmp_path, 64)
    assert [payload for _, payload in reopened.pending()] == [b"episode 0"]
    assert sorted(p.name for p in tmp_path.glob("*.corrupt")) == [
        cut.with_suffix(".corrupt").name, flipped.with_suffix(".corrupt").name,
        "000000000010.corrupt"]
    assert not list(tmp_path.glob("*.tmp"))
    assert "damaged" in caplog.text and good.exists()
    assert reopened.write(b"next").name == "000000000011.payload"  # numbering goes on
    reopened.close()


def test_one_process_per_spool_and_the_lock_dies_with_its_process(tmp_path):
    script = ("import time; from transport.spool import Spool; "
              f"Spool({str(tmp_path)!r}, 1024); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SpoolBusy, match=f"pid {holder.pid}"):
            Spool(tmp_path, 1024)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
        holder.wait()
    Spool(tmp_path, 1024).close()


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_a_dead_actors_episodes_reach_the_learner_through_its_successor(transports, kind,
                                                                        tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Not serving yet: nothing is acknowledged.
    learner = transports.learner(kind, start=False, port=port)
    address = f"127.0.0.1:{port}"
    first = transports.actor(kind, address, spool_dir=str(tmp_path))
    sent = [encoded_episode(first.client_id, seq) for seq in range(5)]
    for payload in sent:
        first.send_transitions(payload)
    first.close()  # the process dies with five episodes unacknowledged

    learner.start()
    second = transports.actor(kind, address, spool_dir=str(tmp_path))
    assert second.recovered() == 5
    second.send_transitions(encoded_episode(second.client_id, 0))
    assert second.flush(timeout=30)
    received = drain(learner, timeout=0.2)
    wait_for(lambda: received.extend(drain(learner, timeout=0.05)) or len(received) >= 6)
    assert [bytes(r.payload) for r in received[:5]] == sent  # byte for byte, in order
    assert codec.read_header(received[5].payload).sender == second.client_id
    assert not list(tmp_path.glob("*.payload"))


def test_a_full_disk_keeps_the_episode_in_memory_and_says_so(tmp_path, monkeypatch, caplog):
    spool = Spool(tmp_path, 1 << 20)

    def disk_full(payload):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "write", disk_full)
    queue = OutgoingQueue(8, 1 << 20, spool=spool)
    seq = queue.put("transitions", b"episode 0")  # the actor goes on
    assert [bytes(e.payload) for e in queue.snapshot()] == [b"episode 0"]
    assert "kept in memory only" in caplog.text and "No space left" in caplog.text
    assert queue.ack(seq) and not queue.park("transitions", b"episode 1")
    queue.close()
