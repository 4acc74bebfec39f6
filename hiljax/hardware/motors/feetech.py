"""Feetech STS/SMS servo bus (protocol 0, e.g. the SO-100/101's STS3215) over pyserial.

    bus = FeetechMotorsBus("/dev/ttyACM0", {"shoulder_pan": Motor(1, "sts3215", DEGREES), ...},
                           calibration=load_calibration(path))
    bus.connect()          # ping every id, check models and firmware (HandshakeError if not)

Our own packet code instead of feetech-servo-sdk (unmaintained since 2022, a module-global
endianness flag, busy polling, bare return codes). The wire, as the SDK speaks it:

    instruction  FF FF id len inst params.. checksum   len = params + 2, id FE = broadcast
    status       FF FF id len error params.. checksum  checksum = ~(id + len + .. ) & 0xFF

Values are little-endian (a 4-byte value: low word first). A reply must arrive within
(expected bytes + 3) byte times + 50 ms (LeRobot's patched timeout), so a silent motor costs
about 50 ms. Signed registers are sign-magnitude (feetech_table.py), not two's complement.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from . import feetech_table as table
from .bus import MotorsBus, PacketProtocol
from .errors import ChecksumError, HandshakeError, MotorStatusError, MotorTimeoutError
from .serial_link import SerialLink

log = logging.getLogger(__name__)

REPLY_MARGIN_S = 0.050  # LeRobot's patched reply timeout: (bytes + 3) byte times + 50 ms


@dataclasses.dataclass(frozen=True)
class StatusPacket:
    motor_id: int
    error: int
    params: bytes


class _ReplyReader:
    """Status packets arriving before one deadline. Bytes before a header are skipped, as the
    SDK's parser does (line noise, the tail of an earlier reply)."""

    def __init__(self, link: SerialLink, expected_bytes: int, timeout_s: float | None = None):
        self._link, self._due, self._buffer = link, expected_bytes, bytearray()
        if timeout_s is None:
            timeout_s = (expected_bytes + 3) * link.byte_time_s() + REPLY_MARGIN_S
        self.timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s

    def _fill(self, count: int) -> bool:
        """At least `count` bytes buffered; False at the deadline."""
        while len(self._buffer) < count:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Wait for the whole expected reply in one read rather than one read per field.
            chunk = self._link.read(max(count - len(self._buffer), self._due), remaining)
            self._due -= len(chunk)
            self._buffer += chunk
        return True

    def next_status(self) -> StatusPacket | None:
        """The next status packet, None at the deadline. A corrupt one raises ChecksumError
        after dropping its header, so a caller may read on."""
        while self._fill(len(table.HEADER)):
            start = self._buffer.find(table.HEADER)
            if start < 0:
                del self._buffer[:-1]  # keep a last FF: it may start the next header
                continue
            del self._buffer[:start]
            if not self._fill(5):
                return None
            motor_id, length, error = self._buffer[2:5]
            if (motor_id > table.MAX_STATUS_ID or error > 0x7F
                    or not 2 <= length <= table.MAX_PACKET_LENGTH):
                del self._buffer[0]  # not a real header (e.g. FF FF FF): resync one byte on
                continue
            if not self._fill(length + 4):
                return None
            packet = bytes(self._buffer[:length + 4])
            if table.checksum(packet[2:-1]) != packet[-1]:
                del self._buffer[:len(table.HEADER)]
                raise ChecksumError(f"corrupt status packet {packet.hex(' ').upper()} "
                                    f"(checksum {packet[-1]:02X}, expected "
                                    f"{table.checksum(packet[2:-1]):02X})")
            del self._buffer[:length + 4]
            return StatusPacket(motor_id, error, packet[5:-1])
        return None


class FeetechProtocol(PacketProtocol):
    """PING, READ, WRITE, SYNC_READ, SYNC_WRITE and broadcast PING of raw unsigned values."""

    def __init__(self, link: SerialLink):
        self.link = link
        self.status_errors: dict[int, int] = {}  # id -> error byte of its latest sync reply

    def ping(self, motor_id: int) -> int | None:
        try:
            self._transact(motor_id, table.PING, b"", 0)
        except MotorTimeoutError:
            return None
        return self.read(motor_id, *table.MODEL_NUMBER_REGISTER)  # the SDK's ping reads it too

    def read(self, motor_id: int, address: int, size: int) -> int:
        table.encode_value(0, size)  # refuse a bad size before anything goes on the wire
        status = self._transact(motor_id, table.READ, bytes([address, size]), size)
        return table.decode_value(status.params)

    def write(self, motor_id: int, address: int, size: int, value: int) -> None:
        params = bytes([address]) + table.encode_value(value, size)
        self._transact(motor_id, table.WRITE, params, 0)

    def sync_read(self, address: int, size: int, motor_ids: list[int]) -> dict[int, int]:
        """One status per id; a silent id is left out. ChecksumError only when a corrupt reply
        may have been a missing id's. Error bits are recorded (`status_errors`), not raised
        (as the SDK); the bus reports them by motor name."""
        if not motor_ids:
            return {}
        table.encode_value(0, size)
        self._send(table.BROADCAST_ID, table.SYNC_READ, bytes([address, size, *motor_ids]))
        reader = _ReplyReader(self.link, (size + table.STATUS_OVERHEAD) * len(motor_ids))
        values: dict[int, int] = {}
        corrupt: list[str] = []
        while len(values) < len(motor_ids):
            try:
                status = reader.next_status()
            except ChecksumError as error:
                corrupt.append(str(error))
                continue
            if status is None:
                break
            if status.motor_id in motor_ids and len(status.params) == size:
                self._note_sync_error(status)
                values.setdefault(status.motor_id, table.decode_value(status.params))
        missing = [i for i in motor_ids if i not in values]
        if missing and corrupt:
            raise ChecksumError(f"sync read of address {address}: no valid reply from id(s) "
                                f"{missing}; {'; '.join(corrupt)}", partial=values)
        return {i: values[i] for i in motor_ids if i in values}

    def sync_write(self, address: int, size: int, values: Mapping[int, int]) -> None:
        """Broadcast: no servo replies, so nothing confirms it arrived."""
        if not values:
            return
        params = bytearray([address, size])
        for motor_id, value in values.items():
            params += bytes([motor_id]) + table.encode_value(value, size)
        self._send(table.BROADCAST_ID, table.SYNC_WRITE, bytes(params))

    def broadcast_ping(self, timeout_s: float | None = None) -> dict[int, int]:
        """{id: model number} of every servo that answers a broadcast PING. Waits the whole
        timeout (LeRobot's: 6 x 252 byte times + 772 ms, about 0.79 s at 1 Mbps), since any
        number of servos may answer. For setup tools: connect one motor at a time."""
        self._send(table.BROADCAST_ID, table.PING, b"")
        expected = table.STATUS_OVERHEAD * table.MAX_SCAN_ID
        if timeout_s is None:
            timeout_s = (expected * self.link.byte_time_s()
                         + (3 * table.MAX_SCAN_ID + 16) / 1000)
        reader = _ReplyReader(self.link, expected, timeout_s)
        found: list[int] = []
        while True:
            try:
                status = reader.next_status()
            except ChecksumError as error:
                log.warning("broadcast ping on %s: %s", self.link.port, error)
                continue
            if status is None:
                break
            if status.motor_id not in found:
                found.append(status.motor_id)
        return {i: self.read(i, *table.MODEL_NUMBER_REGISTER) for i in found}

    def _send(self, motor_id: int, instruction: int, params: bytes) -> None:
        self.link.discard_input()  # a late reply to an earlier request must not pass for this
        self.link.write(table.instruction_packet(motor_id, instruction, params))

    def _transact(self, motor_id: int, instruction: int, params: bytes,
                  reply_size: int) -> StatusPacket:
        self._send(motor_id, instruction, params)
        reader = _ReplyReader(self.link, reply_size + table.STATUS_OVERHEAD)
        while (status := reader.next_status()) is not None:
            if status.motor_id != motor_id:
                log.debug("%s: dropped a status from id %d (waiting for id %d)",
                          self.link.port, status.motor_id, motor_id)
                continue
            if len(status.params) != reply_size:
                raise ChecksumError(f"id {motor_id} replied {len(status.params)} data bytes, "
                                    f"{reply_size} expected")
            if status.error:
                raise MotorStatusError(
                    f"id {motor_id} reports {table.describe_error(status.error)}")
            return status
        raise MotorTimeoutError(f"no status packet from id {motor_id} within "
                                f"{reader.timeout_s * 1000:.0f} ms")

    def _note_sync_error(self, status: StatusPacket) -> None:
        # The bus warns by motor name (once per change); here only a debug line on change.
        if self.status_errors.get(status.motor_id, 0) != status.error and status.error:
            log.debug("%s: id %d reports %s (in a sync read; value still used)",
                      self.link.port, status.motor_id, table.describe_error(status.error))
        self.status_errors[status.motor_id] = status.error


class FeetechMotorsBus(MotorsBus):
    """LeRobot's FeetechMotorsBus for protocol-0 models (sts3215, sts3250, sm8512bl)."""

    model_number_table = table.MODEL_NUMBER_TABLE
    model_ctrl_table = table.MODEL_CONTROL_TABLE
    model_resolution_table = table.MODEL_RESOLUTION_TABLE
    model_baudrate_table = table.MODEL_BAUDRATE_TABLE
    model_encoding_table = table.MODEL_ENCODING_TABLE
    apply_drive_mode = True  # Feetech has no Drive_Mode register: inversion is in software

    def _make_protocol(self, link: SerialLink) -> FeetechProtocol:
        return FeetechProtocol(link)

    def describe_status_error(self, error: int) -> str:
        return table.describe_error(error)

    def broadcast_ping(self, timeout_s: float | None = None) -> dict[int, int]:
        """{id: model number} of every servo on the bus (see FeetechProtocol.broadcast_ping)."""
        return self._wire().broadcast_ping(timeout_s)

    # ------------------------------------------------------------------ handshake
    def _handshake(self) -> None:
        self._check_models()
        self._check_firmware()

    def _check_models(self) -> None:
        missing, wrong, failing = [], [], []
        for name, motor in self.motors.items():
            label = f"{name} (id {motor.id})"
            expected = self.model_number_table[motor.model]
            try:
                found = self._ping_id(motor.id)
            except (MotorStatusError, MotorTimeoutError, ChecksumError) as error:
                failing.append(f"{label}: {error}")
                continue
            if found is None:
                missing.append(label)
            elif found != expected:
                wrong.append(f"{label} should be {motor.model} (model number {expected}), "
                              f"found {self._model_name(found)}")
        problems = [f"{title} {'; '.join(items)}" for title, items in (
            ("no answer from", missing), ("wrong model:", wrong), ("failing:", failing)) if items]
        if problems:
            raise HandshakeError(
                f"servo bus {self.port}: {'; '.join(problems)}. Check the servos' power supply "
                "and cables, and that each motor was given its id (motor setup).")

    def _ping_id(self, motor_id: int) -> int | None:
        """The model number; a lost reply is retried before a motor counts as missing."""
        attempts = 1 + self.retries
        for attempt in range(attempts):
            try:
                model = self._wire().ping(motor_id)
            except (MotorTimeoutError, ChecksumError):
                if attempt + 1 == attempts:
                    raise
                continue
            if model is not None:
                return model
        return None

    def _model_name(self, number: int) -> str:
        names = [m for m, n in self.model_number_table.items() if n == number]
        return f"{names[0]} (model number {number})" if names else f"model number {number}"

    def _check_firmware(self) -> None:
        versions = {name: "{}.{}".format(
            self.read("Firmware_Major_Version", name, normalize=False),
            self.read("Firmware_Minor_Version", name, normalize=False))
            for name in self.motors}
        if len(set(versions.values())) > 1:
            listed = ", ".join(f"{n} (id {self.motors[n].id}) {v}" for n, v in versions.items())
            raise HandshakeError(f"servo bus {self.port}: the motors run different firmware "
                                 f"({listed}); update them with Feetech's software so that "
                                 "all match")
        log.info("servo bus %s: firmware %s", self.port, next(iter(versions.values()), "-"))

    # ------------------------------------------------------------------ register encodings
    def _encode_sign(self, data_name: str, model: str, value: int) -> int:
        sign_bit = self.model_encoding_table[model].get(data_name)
        if sign_bit is None:
            if value < 0:
                raise ValueError(f"{data_name} is unsigned: {value} cannot be written")
            return int(value)
        try:
            return table.encode_sign_magnitude(value, sign_bit)
        except ValueError as error:
            raise ValueError(f"{data_name}: {error}") from None

    def _decode_sign(self, data_name: str, model: str, value: int) -> int:
        sign_bit = self.model_encoding_table[model].get(data_name)
        return int(value) if sign_bit is None else table.decode_sign_magnitude(value, sign_bit)

    def _homing_offset_for(self, raw_position: int, max_res: int) -> int:
        # Present = Actual - Homing_Offset, so this offset makes the pose read max_res // 2.
        offset = raw_position - max_res // 2
        limit = (1 << table.STS_SMS_SERIES_ENCODINGS_TABLE["Homing_Offset"]) - 1
        if abs(offset) > limit:  # raw 4095 -> 2048 (LeRobot issue #1296)
            raise ValueError(
                f"raw position {raw_position} sits on the encoder's seam: homing offset "
                f"{offset} does not fit the Homing_Offset field (at most +-{limit}). Move the "
                "joint a few degrees away from this pose and set the middle again.")
        return offset

    # ------------------------------------------------------------------ torque, configuration
    def _disable_torque_writes(self, motor: str, num_retry: int) -> None:
        self.write("Torque_Enable", motor, 0, num_retry=num_retry)
        self.write("Lock", motor, 0, num_retry=num_retry)  # unlocked: EEPROM writes persist

    def _enable_torque_writes(self, motor: str, num_retry: int) -> None:
        self.write("Torque_Enable", motor, 1, num_retry=num_retry)
        self.write("Lock", motor, 1, num_retry=num_retry)

    def configure_motors(self) -> None:
        """LeRobot's defaults. EEPROM writes: call with torque off (`torque_disabled()`)."""
        for motor in self.motors:
            # Factory delay is 500 us per reply; 0 keeps a 6-motor sync read short.
            self.write("Return_Delay_Time", motor, 0)
            self.write("Maximum_Acceleration", motor, 254)
            self.write("Acceleration", motor, 254)
