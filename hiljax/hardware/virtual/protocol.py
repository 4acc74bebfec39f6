"""Feetech protocol 0 on the servo side: cutting instruction packets out of a byte stream, and
building status packets.

    instruction  FF FF | ID | LEN | INST  | params | CHK     LEN = len(params) + 2
    status       FF FF | ID | LEN | ERROR | params | CHK     CHK = ~(ID + LEN + byte5 + params)

The parser behaves like a servo's receiver: bytes before a header are skipped, a packet with a
bad checksum is dropped without a reply, and a packet that stops arriving half way is abandoned
after an inter-byte timeout (so a corrupted LEN cannot swallow the requests that follow).
"""

from __future__ import annotations

import dataclasses

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_SERVO_ID = 0xFD

PING = 0x01
READ = 0x02
WRITE = 0x03
REG_WRITE = 0x04
ACTION = 0x05
SYNC_READ = 0x82
SYNC_WRITE = 0x83

# A servo abandons a half-received packet after this long without a byte (seconds).
INTER_BYTE_TIMEOUT_S = 0.1


def checksum(body: bytes) -> int:
    """Checksum of the bytes after the header (ID, LEN, INST/ERROR, params)."""
    return ~sum(body) & 0xFF


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    body = bytes([servo_id, len(params) + 2, error]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """The host's side (tests and tools build requests with it)."""
    body = bytes([servo_id, len(params) + 2, instruction]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


@dataclasses.dataclass(frozen=True)
class Instruction:
    servo_id: int
    instruction: int
    params: bytes


class PacketParser:
    """Feed bytes as they arrive; get back the complete, valid instruction packets."""

    def __init__(self):
        self._buffer = bytearray()
        self._last_byte_at: float | None = None
        self.bad_checksums = 0  # for logs and tests

    def feed(self, data: bytes, now: float) -> list[Instruction]:
        if (self._buffer and self._last_byte_at is not None
                and now - self._last_byte_at > INTER_BYTE_TIMEOUT_S):
            self._buffer.clear()  # abandon the stale partial packet, as a servo's receiver does
        if data:
            self._buffer.extend(data)
            self._last_byte_at = now
        packets = []
        while (packet := self._next()) is not None:
            if isinstance(packet, Instruction):
                packets.append(packet)
        return packets

    def _next(self) -> Instruction | bool | None:
        """One packet off the buffer: an Instruction, False for a dropped one, None to wait."""
        buffer = self._buffer
        start = buffer.find(HEADER)
        if start < 0:
            # Keep a trailing FF: it may be the first half of the next header.
            del buffer[: len(buffer) - 1 if buffer.endswith(b"\xff") else len(buffer)]
            return None
        del buffer[:start]
        if len(buffer) < 4:
            return None
        if buffer[2] == 0xFF:  # FF FF FF: the header starts one byte later
            del buffer[:1]
            return False
        length = buffer[3]
        if length < 2:
            del buffer[:2]
            return False
        total = length + 4
        if len(buffer) < total:
            return None
        body = bytes(buffer[2:total - 1])
        valid = checksum(body) == buffer[total - 1]
        del buffer[:total]
        if not valid:
            self.bad_checksums += 1
            return False
        return Instruction(servo_id=body[0], instruction=body[2], params=body[3:])
