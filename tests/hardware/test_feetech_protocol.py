"""Feetech protocol 0 on a real pseudo-terminal: the test plays the servos from a thread.

The worked bytes are the ones in the hardware facts (checked against LeRobot + the vendor SDK).
`PtyResponder` and `ServoBank` are kept tiny and test-local on purpose (the full virtual arm lives
in hiljax/hardware/virtual/); test_feetech_bus.py imports them from here.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty

import pytest

from hiljax.hardware.motors.errors import ChecksumError, MotorStatusError, PortError
from hiljax.hardware.motors.feetech import FeetechProtocol
from hiljax.hardware.motors.feetech_table import (
    MODEL_NUMBER_TABLE,
    STS_SMS_SERIES_BAUDRATE_TABLE,
    STS_SMS_SERIES_CONTROL_TABLE,
    checksum,
    decode_sign_magnitude,
    encode_sign_magnitude,
    encode_value,
    instruction_packet,
)
from hiljax.hardware.motors.serial_link import SerialLink

H = bytes.fromhex


def status(motor_id: int, params: bytes = b"", error: int = 0) -> bytes:
    body = bytes([motor_id, len(params) + 2, error]) + params
    return b"\xff\xff" + body + bytes([~sum(body) & 0xFF])


class PtyResponder:
    """A thread on the master end of a pty: cuts the request stream into packets and writes
    back whatever `handler(packet)` returns. The bus opens `self.port` (the slave)."""

    def __init__(self, handler):
        self.handler, self.error = handler, None
        self.master, self._slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.vanish()
        os.close(self._slave)
        if self.error is not None:
            raise self.error

    def vanish(self):
        """Stop answering and close the master end: the port is gone (an unplugged adapter)."""
        if self.master is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            os.close(self.master)
            self.master = None

    def _run(self):
        buffer = bytearray()
        try:
            while not self._stop.is_set():
                if select.select([self.master], [], [], 0.02)[0]:
                    buffer += os.read(self.master, 4096)
                while (packet := _cut_packet(buffer)) is not None:
                    reply = self.handler(packet)
                    if reply:
                        os.write(self.master, reply)
        except Exception as error:  # noqa: BLE001 - surfaced by __exit__, not lost here
            self.error = error


def _cut_packet(buffer: bytearray) -> bytes | None:
    start = buffer.find(b"\xff\xff")
    if start < 0 or len(buffer) < start + 4:
        return None
    total = buffer[start + 3] + 4
    if len(buffer) < start + total:
        return None
    packet = bytes(buffer[start:start + total])
    del buffer[:start + total]
    return packet


class ServoBank:
    """Servos as register memories: PING, READ, WRITE, SYNC_READ, SYNC_WRITE, broadcast PING.
    Knobs: `silent` ids never answer; `corrupt[id]` replies get a bad checksum; `error[id]`
    sets the error byte; `requests` and `writes` record what the host sent."""

    def __init__(self, ids=range(1, 7), model=777, position=2047, firmware=(3, 10)):
        self.memory = {i: bytearray(256) for i in ids}
        for i in ids:
            self.set(i, 3, 2, model)
            self.memory[i][0:2] = bytes(firmware)
            self.set(i, 56, 2, position)
        self.silent: set[int] = set()
        self.corrupt: dict[int, int] = {}
        self.error: dict[int, int] = {}
        self.requests: list[bytes] = []
        self.writes: list[tuple[int, int, int]] = []  # (id, address, value)

    def set(self, motor_id, address, size, value):
        self.memory[motor_id][address:address + size] = value.to_bytes(size, "little")

    def get(self, motor_id, address, size):
        return int.from_bytes(self.memory[motor_id][address:address + size], "little")

    def __call__(self, packet: bytes) -> bytes:
        self.requests.append(packet)
        motor_id, inst, params = packet[2], packet[4], packet[5:-1]
        if inst == 0x01:
            ids = list(self.memory) if motor_id == 0xFE else [motor_id]
            return b"".join(self._reply(i) for i in ids)
        if inst == 0x02:
            return self._reply(motor_id, params[0], params[1])
        if inst == 0x03:
            self._store(motor_id, params[0], params[1:])
            return self._reply(motor_id)
        if inst == 0x82:
            return b"".join(self._reply(i, params[0], params[1]) for i in params[2:])
        if inst == 0x83:
            address, size, rest = params[0], params[1], params[2:]
            for k in range(0, len(rest), size + 1):
                self._store(rest[k], address, rest[k + 1:k + 1 + size])
        return b""

    def _store(self, motor_id, address, data):
        if motor_id in self.memory:
            self.memory[motor_id][address:address + len(data)] = data
            self.writes.append((motor_id, address, int.from_bytes(data, "little")))

    def _reply(self, motor_id, address=0, size=0) -> bytes:
        if motor_id not in self.memory or motor_id in self.silent:
            return b""
        data = bytes(self.memory[motor_id][address:address + size])
        reply = status(motor_id, data, self.error.get(motor_id, 0))
        if self.corrupt.get(motor_id, 0) > 0:
            self.corrupt[motor_id] -= 1
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply


@pytest.fixture
def scripted():
    """A protocol whose servo answers exact requests with exact bytes: {request: reply}."""
    script: dict[bytes, bytes] = {}
    seen: list[bytes] = []

    def handler(packet):
        seen.append(packet)
        return script.get(packet, b"")

    with PtyResponder(handler) as responder:
        link = SerialLink(responder.port, 1_000_000)
        link.open()
        try:
            yield FeetechProtocol(link), script, seen
        finally:
            link.close()


@pytest.fixture
def bank_protocol():
    bank = ServoBank()
    with PtyResponder(bank) as responder:
        link = SerialLink(responder.port, 1_000_000)
        link.open()
        try:
            yield FeetechProtocol(link), bank, responder
        finally:
            link.close()


# --------------------------------------------------------------------------------- packet bytes
def test_table_spot_checks():
    table = STS_SMS_SERIES_CONTROL_TABLE
    assert len(table) == 56  # every register LeRobot lists, aliases included
    assert table["Homing_Offset"] == (31, 2) and table["Lock"] == (55, 1)
    assert table["Present_Position"] == (56, 2) and table["Present_Current"] == (69, 2)
    assert table["Moving_Velocity_Threshold"] == table["Moving_Velocity"] == (80, 1)
    assert table["Maximum_Acceleration"] == (85, 1)
    assert table["Acceleration_Multiplier "] == (86, 1)  # LeRobot's key, trailing space
    assert MODEL_NUMBER_TABLE == {"sts3215": 777, "sts3250": 2825, "sm8512bl": 11272}
    assert STS_SMS_SERIES_BAUDRATE_TABLE[1_000_000] == 0
    assert STS_SMS_SERIES_BAUDRATE_TABLE[19_200] == 7


def test_worked_instruction_bytes():
    assert instruction_packet(1, 0x01) == H("FF FF 01 02 01 FB")
    assert instruction_packet(1, 0x02, bytes([56, 2])) == H("FF FF 01 04 02 38 02 BE")
    assert instruction_packet(1, 0x02, bytes([3, 2])) == H("FF FF 01 04 02 03 02 F3")
    assert instruction_packet(1, 0x03, bytes([42]) + encode_value(2048, 2)) == \
        H("FF FF 01 05 03 2A 00 08 C4")
    assert instruction_packet(0xFE, 0x82, bytes([56, 2, 1, 2, 3, 4, 5, 6])) == \
        H("FF FF FE 0A 82 38 02 01 02 03 04 05 06 26")
    assert instruction_packet(0xFE, 0x01) == H("FF FF FE 02 01 FE")


def test_worked_status_bytes_checksum():
    for packet in ("FF FF 01 02 00 FC", "FF FF 01 04 00 FF 07 F4", "FF FF 01 04 00 09 03 EE"):
        raw = H(packet)
        assert checksum(raw[2:-1]) == raw[-1]
    assert status(1, encode_value(2047, 2)) == H("FF FF 01 04 00 FF 07 F4")


def test_values_are_little_endian_low_word_first():
    assert encode_value(0x12345678, 4) == H("78 56 34 12")
    assert encode_value(777, 2) == H("09 03")
    for bad_value, size in ((-1, 2), (256, 1), (1 << 32, 4), (1, 3)):
        with pytest.raises(ValueError):
            encode_value(bad_value, size)


@pytest.mark.parametrize("sign_bit", [10, 11, 15])
def test_sign_magnitude_round_trip(sign_bit):
    limit = (1 << sign_bit) - 1
    for value in (0, 1, -1, 100, -100, limit, -limit):
        raw = encode_sign_magnitude(value, sign_bit)
        assert 0 <= raw < 1 << (sign_bit + 1)
        assert decode_sign_magnitude(raw, sign_bit) == value
    with pytest.raises(ValueError, match="at most"):
        encode_sign_magnitude(limit + 1, sign_bit)


def test_sign_magnitude_examples():
    assert encode_sign_magnitude(-100, 11) == 0x0864
    assert encode_sign_magnitude(-2047, 11) == 0x0FFF
    assert decode_sign_magnitude(0x8001, 15) == -1
    with pytest.raises(ValueError):
        encode_sign_magnitude(2048, 11)  # the homing offset of raw 4095 (LeRobot #1296)


# --------------------------------------------------------------------------------- on the wire
def test_ping_read_write_with_the_worked_bytes(scripted):
    protocol, script, seen = scripted
    script[H("FF FF 01 02 01 FB")] = H("FF FF 01 02 00 FC")
    script[H("FF FF 01 04 02 03 02 F3")] = H("FF FF 01 04 00 09 03 EE")
    script[H("FF FF 01 04 02 38 02 BE")] = H("FF FF 01 04 00 FF 07 F4")
    script[H("FF FF 01 05 03 2A 00 08 C4")] = H("FF FF 01 02 00 FC")
    assert protocol.ping(1) == 777
    assert protocol.read(1, 56, 2) == 2047
    protocol.write(1, 42, 2, 2048)
    assert seen == [H("FF FF 01 02 01 FB"), H("FF FF 01 04 02 03 02 F3"),
                    H("FF FF 01 04 02 38 02 BE"), H("FF FF 01 05 03 2A 00 08 C4")]


def test_garbage_and_foreign_ids_are_skipped(scripted):
    protocol, script, _ = scripted
    noise = H("00 13 FF 42 FF FF FF")  # bytes and a false header before the real packets
    script[H("FF FF 01 04 02 38 02 BE")] = (noise + status(2, encode_value(5, 2))
                                            + H("FF FF 01 04 00 FF 07 F4"))
    assert protocol.read(1, 56, 2) == 2047


def test_silent_motor_ping_is_none(scripted):
    protocol, _, seen = scripted
    start = time.monotonic()
    assert protocol.ping(7) is None
    assert time.monotonic() - start < 1.0  # ~50 ms deadline; generous bound
    assert seen == [H("FF FF 07 02 01 F5")]


def test_corrupt_reply_is_a_checksum_error(scripted):
    protocol, script, _ = scripted
    script[H("FF FF 01 04 02 38 02 BE")] = H("FF FF 01 04 00 FF 07 F5")
    with pytest.raises(ChecksumError, match="checksum F5, expected F4"):
        protocol.read(1, 56, 2)


def test_error_byte_names_the_fault(scripted):
    protocol, script, _ = scripted
    script[H("FF FF 01 04 02 38 02 BE")] = status(1, encode_value(2047, 2), error=0x24)
    with pytest.raises(MotorStatusError, match="overheat, overload"):
        protocol.read(1, 56, 2)


def test_sync_read_and_write_bytes(bank_protocol):
    protocol, bank, _ = bank_protocol
    for i in range(1, 7):
        bank.set(i, 56, 2, 2000 + i)
    assert protocol.sync_read(56, 2, [1, 2, 3, 4, 5, 6]) == {i: 2000 + i for i in range(1, 7)}
    assert bank.requests[-1] == H("FF FF FE 0A 82 38 02 01 02 03 04 05 06 26")
    protocol.sync_write(42, 2, {1: 2048, 2: 1})
    time.sleep(0.05)  # no reply to wait for: give the responder a moment
    assert bank.requests[-1] == instruction_packet(0xFE, 0x83, H("2A 02 01 00 08 02 01 00"))
    assert bank.get(1, 42, 2) == 2048 and bank.get(2, 42, 2) == 1


def test_sync_read_leaves_out_a_silent_id_and_records_error_bits(bank_protocol, caplog):
    protocol, bank, _ = bank_protocol
    bank.silent.add(3)
    bank.error[5] = 0x20
    with caplog.at_level(logging.DEBUG, logger="hiljax.hardware.motors.feetech"):
        got = protocol.sync_read(56, 2, [1, 2, 3, 4, 5, 6])
    assert sorted(got) == [1, 2, 4, 5, 6]
    # Kept, not raised; the bus warns by motor name (test_servo_arm), here a debug line.
    assert protocol.status_errors == {1: 0, 2: 0, 4: 0, 5: 0x20, 6: 0}
    assert "id 5 reports overload" in caplog.text
    bank.error[5] = 0
    protocol.sync_read(56, 2, [5])
    assert protocol.status_errors[5] == 0


def test_sync_read_with_a_corrupt_reply_for_a_missing_id(bank_protocol):
    protocol, bank, _ = bank_protocol
    bank.corrupt[2] = 1
    with pytest.raises(ChecksumError, match=r"id\(s\) \[2\]") as caught:
        protocol.sync_read(56, 2, [1, 2, 3])
    assert caught.value.partial == {1: 2047, 3: 2047}  # the intact replies still count
    assert protocol.sync_read(56, 2, [1, 2, 3]) == {1: 2047, 2: 2047, 3: 2047}


def test_broadcast_ping(bank_protocol):
    protocol, bank, _ = bank_protocol
    for i in (2, 3, 4, 5, 6):
        del bank.memory[i]
    assert protocol.broadcast_ping(timeout_s=0.1) == {1: 777}
    assert bank.requests[0] == H("FF FF FE 02 01 FE")


def test_vanished_port_is_a_port_error(bank_protocol):
    protocol, _, responder = bank_protocol
    assert protocol.read(1, 56, 2) == 2047
    responder.vanish()
    with pytest.raises(PortError):
        protocol.read(1, 56, 2)
