"""Dynamixel protocol 2.0 packets, byte for byte: CRC, stuffing, framing and status parsing
(against an in-memory link, so every byte a reply holds is chosen by the test)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiljax.hardware.motors import ChecksumError, MotorStatusError, MotorTimeoutError
from hiljax.hardware.motors import dynamixel_table as dt
from hiljax.hardware.motors.dynamixel import LATENCY_S, DynamixelProtocol
from tests.hardware import dynamixel_servos as emulator


class FakeLink:
    """A SerialLink stand-in: each write() queues the next scripted reply bytes."""

    port, baudrate = "/dev/fake0", 1_000_000

    def __init__(self, *replies: bytes):
        self.replies, self.written, self.timeouts = list(replies), [], []
        self.rx = bytearray()

    def byte_time_s(self) -> float:
        return 10.0 / self.baudrate

    def discard_input(self) -> None:
        self.rx.clear()

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))
        if self.replies:
            self.rx.extend(self.replies.pop(0))

    def read(self, count: int, timeout_s: float) -> bytes:
        self.timeouts.append(timeout_s)
        data = bytes(self.rx[:count])
        del self.rx[:count]
        return data  # never waits: an empty read is the deadline passing


status = emulator.status_packet  # the emulator's independent encoder


def test_crc_check_value_and_the_facts_ping_packet():
    assert dt.crc16(b"123456789") == 0xFEE8
    assert dt.instruction_packet(1, dt.PING) == bytes.fromhex("FF FF FD 00 01 03 00 01 19 4E")
    link = FakeLink()
    DynamixelProtocol(link).ping(1)
    assert link.written == [bytes.fromhex("FFFFFD0001030001194E")]


@given(st.binary(max_size=40) | st.lists(st.sampled_from([0xFF, 0xFD, 0x00]), max_size=40)
       .map(bytes))
def test_stuffing_round_trips_and_matches_the_sdk_loop(body):
    stuffed = dt.stuff(body)
    assert dt.unstuff(stuffed) == body
    assert stuffed == emulator.stuff(body)
    assert dt.crc16(body) == emulator.crc16(body)


def test_instruction_length_counts_stuffed_bytes():
    # WRITE id 1, Goal_Position = 0x00FDFFFF: the value bytes FF FF FD need an extra FD.
    packet = dt.instruction_packet(1, dt.WRITE, bytes([116, 0, 0xFF, 0xFF, 0xFD, 0x00]))
    body = bytes([dt.WRITE, 116, 0, 0xFF, 0xFF, 0xFD, 0xFD, 0x00])
    assert packet[:7] == dt.HEADER + bytes([1]) + (len(body) + 2).to_bytes(2, "little")
    assert packet[7:-2] == body
    assert int.from_bytes(packet[-2:], "little") == emulator.crc16(packet[:-2])


def test_read_decodes_a_stuffed_status_and_uses_the_sdk_deadline():
    link = FakeLink(status(1, 0, bytes([0xFF, 0xFF, 0xFD, 0x00])))
    assert DynamixelProtocol(link).read(1, 132, 4) == 0x00FDFFFF
    assert link.written[0] == dt.instruction_packet(1, dt.READ, bytes([132, 0, 4, 0]))
    # (11 + 4) bytes at 10 us each + 34 ms; the first read waits at most that.
    assert link.timeouts[0] == pytest.approx(15 * 10e-6 + LATENCY_S, abs=2e-3)


def test_garbage_and_other_ids_before_the_reply_are_skipped():
    noise = b"\x00\xff\xff\xfd\x13\xff" + status(2, 0, b"\x10\x00")  # a false header, id 2
    link = FakeLink(noise + status(1, 0, b"\x34\x12"))
    assert DynamixelProtocol(link).read(1, 126, 2) == 0x1234


def test_status_error_byte_is_named():
    link = FakeLink(status(1, 0x87))
    with pytest.raises(MotorStatusError, match=r"access error.*hardware alert.*0x87"):
        DynamixelProtocol(link).write(1, 20, 4, 0)


def test_crc_mismatch_is_a_checksum_error_and_silence_a_timeout():
    bad = bytearray(status(1, 0, b"\x00\x08\x00\x00"))
    bad[-1] ^= 0x01
    with pytest.raises(ChecksumError, match="/dev/fake0"):
        DynamixelProtocol(FakeLink(bytes(bad))).read(1, 132, 4)
    with pytest.raises(MotorTimeoutError, match="id 1 on /dev/fake0"):
        DynamixelProtocol(FakeLink()).read(1, 132, 4)
    assert DynamixelProtocol(FakeLink()).ping(1) is None


def test_ping_returns_the_model_number():
    link = FakeLink(status(3, 0, (1200).to_bytes(2, "little") + b"\x2e"))
    assert DynamixelProtocol(link).ping(3) == 1200


def test_sync_read_leaves_missing_and_corrupt_ids_out():
    corrupt = bytearray(status(3, 0, b"\x03\x00\x00\x00"))
    corrupt[-2] ^= 0x40
    replies = status(2, 0, b"\x02\x00\x00\x00") + bytes(corrupt) + status(1, 0, b"\xff\xff\xff\xff")
    protocol = DynamixelProtocol(FakeLink(replies))
    with pytest.raises(ChecksumError, match=r"id\(s\) \[3\]") as corrupt:
        protocol.sync_read(132, 4, [1, 2, 3, 4])
    assert corrupt.value.partial == {1: 0xFFFFFFFF, 2: 2}  # the intact replies; 4 is missing
    sent = protocol.link.written[0]
    assert sent == dt.instruction_packet(0xFE, dt.SYNC_READ, bytes([132, 0, 4, 0, 1, 2, 3, 4]))


def test_sync_read_keeps_values_under_a_hardware_alert_but_raises_on_error_numbers():
    alert = FakeLink(status(1, 0x80, b"\x05\x00"))
    assert DynamixelProtocol(alert).sync_read(126, 2, [1]) == {1: 5}
    with pytest.raises(MotorStatusError, match="id 1: data range error"):
        DynamixelProtocol(FakeLink(status(1, 0x04))).sync_read(126, 2, [1])


def test_sync_write_and_broadcast_ping_bytes():
    link = FakeLink(b"", status(1, 0, b"\x24\x04\x2e") + status(5, 0, b"\xb0\x04\x2e"))
    protocol = DynamixelProtocol(link)
    protocol.sync_write(116, 4, {1: 2048, 2: 0xFFFFFFFF})
    params = bytes([116, 0, 4, 0, 1, 0x00, 0x08, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF])
    assert link.written[0] == dt.instruction_packet(0xFE, dt.SYNC_WRITE, params)
    assert protocol.broadcast_ping(timeout_s=0.05) == {1: 1060, 5: 1200}
    assert link.written[1] == bytes.fromhex("FFFFFD00FE0300013142")  # Robotis e-manual


def test_values_that_do_not_fit_are_refused():
    with pytest.raises(ValueError):
        DynamixelProtocol(FakeLink()).write(1, 64, 1, 256)
    assert dt.encode_twos_complement(-1, 4) == 0xFFFFFFFF
    assert dt.decode_twos_complement(0xFFFFFC47, 4) == -953
    assert dt.decode_twos_complement(0x8000, 2) == -32768
    with pytest.raises(ValueError):
        dt.encode_twos_complement(32768, 2)
