"""Injected faults: lost replies, corrupted checksums, a hung motor, error bits."""

import pytest

from hiljax.hardware.virtual import Faults, VirtualSO100
from hiljax.hardware.virtual import protocol as p
from hiljax.hardware.virtual.faults import FaultInjector
from tests.hardware.test_virtual_protocol import Client, split_statuses

SYNC_READ_ALL = p.instruction_packet(p.BROADCAST_ID, p.SYNC_READ, bytes([56, 2, 1, 2, 3, 4, 5, 6]))


@pytest.fixture
def arm():
    arm = VirtualSO100(calibrated=True, faults="drop=3,corrupt=2,hang=4,error=5:0x20")
    arm.start()
    yield arm
    arm.stop()


@pytest.fixture
def client(arm):
    client = Client(arm.port)
    yield client
    client.close()


def test_each_fault_on_the_wire(arm, client):
    assert client.request(p.instruction_packet(1, p.PING), 6) == p.status_packet(1, 0)
    # drop=3: executes, but the reply is lost.
    assert client.silent(p.instruction_packet(3, p.WRITE, bytes([41, 55])))
    assert arm.register(3, "Acceleration") == 55
    # corrupt=2: a reply arrives with a wrong checksum.
    reply = client.request(p.instruction_packet(2, p.PING), 6)
    assert reply[:5] == bytes.fromhex("FF FF 02 02 00") and reply[5] != p.checksum(reply[2:5])
    # hang=4: no answer, and nothing executed.
    assert client.silent(p.instruction_packet(4, p.WRITE, bytes([41, 55])))
    assert arm.register(4, "Acceleration") == 0
    # error=5:0x20: the status error byte says overload.
    assert client.request(p.instruction_packet(5, p.PING), 6) == p.status_packet(5, 0x20)
    # SYNC_READ: the dropped and the hung motor are missing, the corrupted one is there.
    data = client.request(SYNC_READ_ALL, 4 * 8)
    corrupted = data[8:16]
    assert corrupted[2] == 2 and corrupted[-1] != p.checksum(corrupted[2:-1])
    statuses = split_statuses(data[:8] + data[16:])
    assert [(i, error) for i, error, _ in statuses] == [(1, 0), (5, 0x20), (6, 0)]


def test_faults_can_change_while_serving(arm, client):
    arm.set_faults(None)
    statuses = split_statuses(client.request(SYNC_READ_ALL, 6 * 8))
    assert [i for i, _, _ in statuses] == [1, 2, 3, 4, 5, 6]
    arm.set_faults(Faults(drop_prob=1.0))
    assert client.silent(p.instruction_packet(1, p.PING))


def test_probabilities_are_seeded_and_roughly_right():
    packet = p.status_packet(1, 0)

    def outcomes(faults):
        injector = FaultInjector(Faults.parse(faults))
        return [injector.filter_reply(1, packet) for _ in range(2000)]

    dropped = outcomes("drop_prob=0.25,seed=7")
    assert dropped == outcomes("drop_prob=0.25,seed=7")  # repeatable
    assert 0.2 < dropped.count(b"") / 2000 < 0.3
    corrupted = outcomes("corrupt_prob=0.5")
    bad = [reply for reply in corrupted if reply != packet]
    assert 0.45 < len(bad) / 2000 < 0.55 and all(len(reply) == 6 for reply in bad)


def test_fault_syntax():
    faults = Faults.parse("drop=3, drop=4,hang=0x02,error=6:32,drop_prob=0.1,seed=3")
    assert faults.drop == {3, 4} and faults.hang == {2} and faults.error_bits(6) == 32
    assert faults.drop_prob == 0.1 and faults.seed == 3 and Faults.parse("") == Faults()
    for bad in ("explode=1", "drop=x", "drop_prob=2", "error=5"):
        with pytest.raises(ValueError):
            Faults.parse(bad)
