"""Dynamixel X-series servos behind a real pseudo-terminal, for tests (protocol 2.0).

    with VirtualDynamixelBus([VirtualServo(1, 1060), VirtualServo(3, 1200)]) as servos:
        bus = DynamixelMotorsBus(servos.port, motors)   # the client opens the pty like a port

A background thread reads instruction packets from the pty master and answers as servos would:
PING (also broadcast), READ, WRITE, SYNC_READ (one status per listed id, in list order),
SYNC_WRITE (no reply); silent for broadcasts and unknown ids. The packet code (CRC, stuffing,
framing) is written independently of hiljax's, so the tests cross-check the two.

Servo model: register memory per servo; Present_Position = s * Actual + Homing_Offset (the
Dynamixel convention, s = -1 with Drive_Mode bit 0 set); a Goal_Position written while torque is
on moves Actual there at once; EEPROM (address < 64) refuses writes while torque is on (access
error), as do the read-only registers. Position limits are not enforced (LeRobot's Koch runs in
extended position mode, where the servo ignores them). Hooks per servo: `silent`,
`drop_replies`, `corrupt_replies`, `noise` (garbage sent before the next reply), `error_bits`.
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import tty

BROADCAST = 0xFE
PING, READ, WRITE, STATUS, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x55, 0x82, 0x83
INSTRUCTION_ERROR, DATA_RANGE_ERROR, ACCESS_ERROR = 0x02, 0x04, 0x07
MEMORY_SIZE = 148
READ_ONLY = set(range(7)) | {69, 70} | set(range(120, MEMORY_SIZE))
TORQUE, DRIVE_MODE, HOMING, GOAL, PRESENT = 64, 10, 20, 116, 132


def crc16(data: bytes) -> int:
    """Bit by bit (hiljax uses a table): CRC-16/BUYPASS."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x8005 if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """The SDK's loop: an extra FD after every FF FF FD."""
    out = bytearray()
    for byte in body:
        out.append(byte)
        if out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Drop an FD that follows FF FF FD in the stuffed stream (the SDK's test)."""
    return bytes(byte for i, byte in enumerate(body)
                 if not (i >= 3 and body[i - 3:i + 1] == b"\xff\xff\xfd\xfd"))


def status_packet(motor_id: int, error: int, params: bytes = b"") -> bytes:
    body = stuff(bytes([STATUS, error]) + params)
    head = b"\xff\xff\xfd\x00" + bytes([motor_id]) + (len(body) + 2).to_bytes(2, "little")
    return head + body + crc16(head + body).to_bytes(2, "little")


@dataclasses.dataclass
class VirtualServo:
    id: int
    model_number: int
    actual: int = 2048  # where the horn is, in the servo's own ticks
    firmware: int = 52
    silent: bool = False  # never answers (a missing or unpowered motor that keeps its id)
    drop_replies: int = 0  # the next n replies are not sent
    corrupt_replies: int = 0  # the next n replies carry a wrong CRC
    noise: bytes = b""  # sent before the next reply
    error_bits: int = 0  # or-ed into every status error byte (0x80: hardware alert)
    memory: bytearray = dataclasses.field(default_factory=lambda: bytearray(MEMORY_SIZE))

    def __post_init__(self):
        self.set(0, 2, self.model_number)
        self.set(6, 1, self.firmware)
        self.set(7, 1, self.id)
        self.set(8, 1, 3)  # 1 Mbps
        self.set(9, 1, 250)  # factory return delay
        self.set(11, 1, 3)  # position mode
        self.set(48, 4, 4095)
        self.move_to(self.actual)

    def get(self, address: int, size: int, signed: bool = False) -> int:
        return int.from_bytes(self.memory[address:address + size], "little", signed=signed)

    def set(self, address: int, size: int, value: int) -> None:
        self.memory[address:address + size] = (value % (1 << 8 * size)).to_bytes(size, "little")

    @property
    def present(self) -> int:
        return self.get(PRESENT, 4, signed=True)

    def move_to(self, actual: int) -> None:
        """Put the horn at `actual` (a person moving a limp joint, or the motor reaching it)."""
        self.actual = int(actual)
        sign = -1 if self.memory[DRIVE_MODE] & 1 else 1
        self.set(PRESENT, 4, sign * self.actual + self.get(HOMING, 4, signed=True))

    def write(self, address: int, data: bytes) -> int:
        """The error number of a WRITE (0: done)."""
        end = address + len(data)
        if not data or end > MEMORY_SIZE:
            return DATA_RANGE_ERROR
        if READ_ONLY & set(range(address, end)) or (address < TORQUE and self.memory[TORQUE]):
            return ACCESS_ERROR
        was_on = self.memory[TORQUE]
        self.memory[address:end] = data
        if self.memory[TORQUE] and not was_on:
            self.set(GOAL, 4, self.present)  # torque on holds the pose
        if self.memory[TORQUE] and address < GOAL + 4 and end > GOAL:
            sign = -1 if self.memory[DRIVE_MODE] & 1 else 1
            self.actual = sign * (self.get(GOAL, 4, signed=True) - self.get(HOMING, 4, True))
        self.move_to(self.actual)
        return 0

    def read(self, address: int, size: int) -> tuple[int, bytes]:
        if size < 1 or address + size > MEMORY_SIZE:
            return DATA_RANGE_ERROR, b""
        return 0, bytes(self.memory[address:address + size])


class VirtualDynamixelBus:
    """The servos on a pty; `port` is the path a client opens. `received` logs every valid
    instruction as (id, instruction, params)."""

    def __init__(self, servos: list[VirtualServo]):
        self.servos = {s.id: s for s in servos}
        self.received: list[tuple[int, int, bytes]] = []
        self.lock = threading.Lock()  # held while a packet is handled
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF or XON/XOFF translation: binary packets
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def instructions(self, instruction: int) -> list[tuple[int, bytes]]:
        return [(i, p) for i, inst, p in self.received if inst == instruction]

    # ------------------------------------------------------------------ serving
    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if ready:
                buf.extend(os.read(self._master, 4096))
                while (packet := self._take_packet(buf)) is not None:
                    with self.lock:
                        self._handle(*packet)

    @staticmethod
    def _take_packet(buf: bytearray) -> tuple[int, int, bytes] | None:
        while True:
            start = buf.find(b"\xff\xff\xfd\x00")
            if start < 0 or len(buf) < start + 7:
                return None
            del buf[:start]
            total = 7 + int.from_bytes(buf[5:7], "little")
            if len(buf) < total:
                return None
            packet = bytes(buf[:total])
            del buf[:total]
            body = unstuff(packet[7:-2])
            if body and crc16(packet[:-2]) == int.from_bytes(packet[-2:], "little"):
                return packet[4], body[0], body[1:]
            # a corrupt instruction is ignored, as a servo does

    def _handle(self, motor_id: int, instruction: int, params: bytes) -> None:
        self.received.append((motor_id, instruction, params))
        targets = list(self.servos.values()) if motor_id == BROADCAST else (
            [self.servos[motor_id]] if motor_id in self.servos else [])
        address, size = (int.from_bytes(params[:2], "little"),
                         int.from_bytes(params[2:4], "little"))
        if instruction == PING:
            for servo in targets:  # a broadcast PING is answered by every servo
                model = servo.get(0, 2).to_bytes(2, "little")
                self._reply(servo, 0, model + bytes([servo.get(6, 1)]))
        elif instruction == READ and motor_id != BROADCAST:
            for servo in targets:
                self._reply(servo, *servo.read(address, size))
        elif instruction == WRITE:
            for servo in targets:
                error = servo.write(address, params[2:])
                if motor_id != BROADCAST:
                    self._reply(servo, error)
        elif instruction == SYNC_READ and motor_id == BROADCAST:
            for listed in params[4:]:
                if listed in self.servos:
                    self._reply(self.servos[listed], *self.servos[listed].read(address, size))
        elif instruction == SYNC_WRITE and motor_id == BROADCAST:
            for at in range(4, len(params) - size, size + 1):
                if params[at] in self.servos:
                    self.servos[params[at]].write(address, params[at + 1:at + 1 + size])
        elif motor_id != BROADCAST:
            for servo in targets:
                self._reply(servo, INSTRUCTION_ERROR)

    def _reply(self, servo: VirtualServo, error: int, params: bytes = b"") -> None:
        if servo.silent:
            return
        if servo.drop_replies:
            servo.drop_replies -= 1
            return
        packet = bytearray(status_packet(servo.id, error | servo.error_bits, params))
        if servo.corrupt_replies:
            servo.corrupt_replies -= 1
            packet[-1] ^= 0xFF
        os.write(self._master, servo.noise + bytes(packet))
        servo.noise = b""
