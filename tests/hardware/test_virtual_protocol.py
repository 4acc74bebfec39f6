"""The virtual Feetech bus over a real pty, with pyserial as the client: the facts' worked bytes,
broadcast and sync instructions, silence where a real servo is silent, raw bytes."""

import time

import pytest
import serial

from hiljax.hardware.virtual import VirtualSO100
from hiljax.hardware.virtual import protocol as p

SILENCE_S = 0.1  # how long "no reply" is listened for (replies come within milliseconds)


class Client:
    """A bare protocol-0 client: raw bytes out, raw bytes back."""

    def __init__(self, port: str):
        self.serial = serial.Serial(port, 1_000_000, timeout=0)

    def close(self):
        self.serial.close()

    def send(self, packet: bytes) -> None:
        self.serial.reset_input_buffer()
        self.serial.write(packet)
        self.serial.flush()

    def receive(self, count: int, timeout: float = 1.0) -> bytes:
        deadline, data = time.monotonic() + timeout, bytearray()
        while len(data) < count and time.monotonic() < deadline:
            self.serial.timeout = max(0.0, deadline - time.monotonic())
            data += self.serial.read(count - len(data))
        return bytes(data)

    def request(self, packet: bytes, count: int) -> bytes:
        self.send(packet)
        return self.receive(count)

    def silent(self, packet: bytes) -> bool:
        """True when nothing at all comes back to `packet`."""
        self.send(packet)
        return self.receive(1, timeout=SILENCE_S) == b""

    def read(self, servo_id: int, address: int, size: int) -> tuple[int, int]:
        """(error byte, unsigned little-endian value) of a READ."""
        reply = self.request(p.instruction_packet(servo_id, p.READ, bytes([address, size])),
                             6 + size)
        assert len(reply) == 6 + size, reply.hex(" ")
        assert reply[-1] == p.checksum(reply[2:-1])
        return reply[4], int.from_bytes(reply[5:-1], "little")

    def write(self, servo_id: int, address: int, value: int, size: int) -> bytes:
        params = bytes([address]) + value.to_bytes(size, "little")
        return self.request(p.instruction_packet(servo_id, p.WRITE, params), 6)


def split_statuses(data: bytes) -> list[tuple[int, int, bytes]]:
    """[(id, error, params)] of consecutive status packets, checksums checked."""
    out = []
    while data:
        assert data[:2] == p.HEADER, data.hex(" ")
        total = data[3] + 4
        packet, data = data[:total], data[total:]
        assert packet[-1] == p.checksum(packet[2:-1])
        out.append((packet[2], packet[4], packet[5:-1]))
    return out


@pytest.fixture
def arm():
    arm = VirtualSO100(calibrated=True)
    arm.start()
    yield arm
    arm.stop()


@pytest.fixture
def client(arm):
    client = Client(arm.port)
    yield client
    client.close()


def test_worked_bytes_of_the_facts(client):
    assert client.request(bytes.fromhex("FF FF 01 02 01 FB"), 6) == bytes.fromhex(
        "FF FF 01 02 00 FC")
    # Present_Position of the calibrated shoulder_pan at 0 deg: the centre tick, 2047.
    assert client.request(bytes.fromhex("FF FF 01 04 02 38 02 BE"), 8) == bytes.fromhex(
        "FF FF 01 04 00 FF 07 F4")
    assert client.request(bytes.fromhex("FF FF 01 04 02 03 02 F3"), 8) == bytes.fromhex(
        "FF FF 01 04 00 09 03 EE")
    assert client.request(bytes.fromhex("FF FF 01 05 03 2A 00 08 C4"), 6) == bytes.fromhex(
        "FF FF 01 02 00 FC")


def test_sync_read_answers_every_listed_id_in_order(client):
    request = bytes.fromhex("FF FF FE 0A 82 38 02 01 02 03 04 05 06 26")
    statuses = split_statuses(client.request(request, 6 * 8))
    assert [s[0] for s in statuses] == [1, 2, 3, 4, 5, 6]
    assert all(error == 0 and len(data) == 2 for _, error, data in statuses)
    # Out of order and with an id nobody has: the order of the request, the stranger silent.
    request = p.instruction_packet(p.BROADCAST_ID, p.SYNC_READ, bytes([56, 2, 6, 42, 2]))
    assert [s[0] for s in split_statuses(client.request(request, 16))] == [6, 2]


def test_broadcast_ping_gets_every_servo(client):
    statuses = split_statuses(client.request(bytes.fromhex("FF FF FE 02 01 FE"), 36))
    assert statuses == [(i, 0, b"") for i in range(1, 7)]


def test_firmware_and_model_identical_across_servos(client):
    for servo_id in range(1, 7):
        assert client.read(servo_id, 3, 2) == (0, 777)
    firmware = {(client.read(i, 0, 1)[1], client.read(i, 1, 1)[1]) for i in range(1, 7)}
    assert len(firmware) == 1


def test_silence_where_a_servo_is_silent(arm, client):
    ping = bytearray(p.instruction_packet(1, p.PING))
    ping[-1] ^= 0x5A
    assert client.silent(bytes(ping)), "a bad checksum must get no reply"
    assert client.silent(p.instruction_packet(42, p.PING)), "unknown id"
    assert client.silent(p.instruction_packet(1, 0x47)), "unknown instruction"
    # Broadcast WRITE and SYNC_WRITE execute without a word.
    assert client.silent(p.instruction_packet(p.BROADCAST_ID, p.WRITE, bytes([41, 200])))
    assert [arm.register(i, "Acceleration") for i in range(1, 7)] == [200] * 6
    sync = bytes([21, 1]) + b"".join(bytes([i, 10 + i]) for i in range(1, 7))
    assert client.silent(p.instruction_packet(p.BROADCAST_ID, p.SYNC_WRITE, sync))
    assert [arm.register(i, "P_Coefficient") for i in range(1, 7)] == [11, 12, 13, 14, 15, 16]
    # After all that, a good request is still answered (the stream resynchronised).
    assert client.request(p.instruction_packet(1, p.PING), 6) == p.status_packet(1, 0)


def test_garbage_before_the_header_is_skipped(client):
    garbage = bytes.fromhex("00 13 11 0D FF 7E")
    assert client.request(garbage + p.instruction_packet(2, p.PING), 6) == p.status_packet(2, 0)
    # Two requests in one write, the second after a torn one: both good ones answered.
    both = p.instruction_packet(3, p.PING) + p.instruction_packet(4, p.PING)
    assert split_statuses(client.request(both, 12)) == [(3, 0, b""), (4, 0, b"")]


def test_control_bytes_travel_raw(arm, client):
    """0x0D, 0x11 and 0x13 are CR, XON and XOFF to a cooked terminal."""
    params = bytes([21, 0x11, 0x13, 0x0D])  # P, D, I coefficients
    assert client.request(p.instruction_packet(2, p.WRITE, params), 6) == p.status_packet(2, 0)
    assert [arm.register(2, n) for n in ("P_Coefficient", "D_Coefficient", "I_Coefficient")] \
        == [0x11, 0x13, 0x0D]
    assert client.read(2, 21, 3) == (0, 0x0D1311)


def test_reg_write_waits_for_action(arm, client):
    params = bytes([41, 77])
    assert client.request(p.instruction_packet(5, p.REG_WRITE, params), 6) == p.status_packet(5, 0)
    assert arm.register(5, "Acceleration") == 0
    assert client.silent(p.instruction_packet(p.BROADCAST_ID, p.ACTION))
    assert arm.register(5, "Acceleration") == 77


def test_response_status_level_zero_answers_reads_only(arm, client):
    # The level applies from the WRITE that sets it (the firmware replies after executing).
    assert client.silent(p.instruction_packet(3, p.WRITE, bytes([8, 0])))
    assert client.silent(p.instruction_packet(3, p.WRITE, bytes([41, 9])))
    assert arm.register(3, "Acceleration") == 9
    assert client.read(3, 41, 1) == (0, 9)


def test_parser_cuts_a_stream_like_a_servo():
    parser = p.PacketParser()
    stream = b"\xff" + p.instruction_packet(1, p.PING) + p.instruction_packet(2, p.READ, b"\x38\x02")
    got = []
    for byte in stream:  # one byte at a time
        got += parser.feed(bytes([byte]), now=0.0)
    assert [(i.servo_id, i.instruction, i.params) for i in got] == [(1, 1, b""), (2, 2, b"8\x02")]
    # A packet that stops half way is abandoned after the inter-byte timeout.
    assert parser.feed(p.instruction_packet(3, p.PING)[:4], now=1.0) == []
    late = parser.feed(p.instruction_packet(4, p.PING), now=1.0 + 2 * p.INTER_BYTE_TIMEOUT_S)
    assert [i.servo_id for i in late] == [4]
