"""Dynamixel X-series servos over protocol 2.0: our own packet code on pyserial, no SDK.

    bus = DynamixelMotorsBus("/dev/ttyUSB0", {"gripper": Motor(6, "xl330-m288", RANGE_0_100)},
                             calibration=load_calibration(path))
    bus.connect()                                   # ping every id, check model numbers
    bus.sync_read("Present_Position")               # {"gripper": 37.5}

Why not `dynamixel_sdk`: the vendor SDKs keep module-global state (the Feetech one a global byte
order that two buses of different protocols share) and each reports failures its own way (result
codes, strings, RuntimeError). Here each `DynamixelProtocol` owns its port and nothing else, and
every failure is one of the bus errors shared with the Feetech bus: MotorTimeoutError (no reply
by the SDK's deadline: expected bytes x byte time + 34 ms), ChecksumError (CRC mismatch),
MotorStatusError (error byte set, decoded by name) or PortError; `MotorsBus` retries and adds
the motor's name.

Differences from LeRobot's Dynamixel bus, on purpose:
- Drive_Mode is part of the calibration both ways: `read_calibration` reads bit 0 of Drive_Mode
  back from each servo (so `is_calibrated` compares the whole record, as LeRobot does), and
  `write_calibration` writes it too (LeRobot's never does, so a Koch-leader file loaded onto
  fresh motors left elbow_flex un-inverted and uncalibrated on every connect). Only bit 0 is
  ours: the other Drive_Mode bits (profile type, ...) are kept as the servo has them.
- EEPROM writes (`write_calibration`, `configure_motors`) switch torque off only on the motors
  that had it on, and back on after; a limp arm stays limp.
- Errors inside a SYNC_READ status are not silently dropped (the SDK's are): an error number is
  raised, a hardware alert alone is reported (a warning naming the motor, once per change) and
  the value kept (the servo still reports it).
  Single PING / READ / WRITE raise on any error byte, the alert included, as LeRobot does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping

from . import dynamixel_table as dt
from .bus import Motor, MotorsBus, PacketProtocol
from .calibration import MotorCalibration
from .errors import ChecksumError, HandshakeError, MotorStatusError, MotorTimeoutError
from .serial_link import SerialLink

log = logging.getLogger(__name__)

LATENCY_S = 0.034  # the SDK's reply margin: USB latency timer 16 ms x 2 + 2 ms


@dataclasses.dataclass(frozen=True)
class _Status:
    motor_id: int
    error: int
    params: bytes
    crc_ok: bool


class DynamixelProtocol(PacketProtocol):
    """Protocol 2.0 transactions on one serial link: raw unsigned values by id and address."""

    def __init__(self, link: SerialLink, latency_s: float = LATENCY_S):
        self.link, self.latency_s = link, float(latency_s)
        self._rx = bytearray()
        self.status_errors: dict[int, int] = {}  # id -> error byte of its latest sync reply

    # ------------------------------------------------------------------ transactions
    def ping(self, motor_id: int) -> int | None:
        self._send(motor_id, dt.PING)
        try:
            params = self._reply(motor_id, dt.PING_PARAMS)
        except MotorTimeoutError:
            return None
        return int.from_bytes(params[:2], "little")

    def read(self, motor_id: int, address: int, size: int) -> int:
        self._send(motor_id, dt.READ, _u16(address) + _u16(size))
        return int.from_bytes(self._reply(motor_id, size), "little")

    def write(self, motor_id: int, address: int, size: int, value: int) -> None:
        self._send(motor_id, dt.WRITE, _u16(address) + _value_bytes(value, size))
        if motor_id != dt.BROADCAST_ID:  # a broadcast is never answered
            self._reply(motor_id, 0)

    def sync_read(self, address: int, size: int, motor_ids: list[int]) -> dict[int, int]:
        """One status per id; a silent id is left out. Corrupt replies are a ChecksumError
        carrying the intact values (`partial`), so the bus re-asks only the others."""
        if not motor_ids:
            return {}
        self._send(dt.BROADCAST_ID, dt.SYNC_READ, _u16(address) + _u16(size) + bytes(motor_ids))
        deadline = self._deadline((dt.STATUS_OVERHEAD + size) * len(motor_ids))
        values, failed, corrupt, wanted = {}, [], [], set(motor_ids)
        while wanted:
            status = self._next_status(wanted, deadline)
            if status is None:
                break  # the rest are missing; the bus asks again for them
            if not status.crc_ok:
                corrupt.append(status.motor_id)
            elif status.error & 0x7F:
                failed.append(f"id {status.motor_id}: {dt.describe_error(status.error)}")
            elif len(status.params) == size:
                # A hardware alert alone: kept; the bus warns by motor name once per change.
                self.status_errors[status.motor_id] = status.error
                values[status.motor_id] = int.from_bytes(status.params, "little")
            else:
                continue  # a stale reply to another request: the real one may still come
            wanted.discard(status.motor_id)
        if failed:
            raise MotorStatusError(f"sync read of address {address} on {self.link.port}: "
                                   + "; ".join(failed))
        if corrupt:
            raise ChecksumError(f"sync read of address {address}: CRC mismatch in the replies "
                                f"of id(s) {corrupt}", partial=values)
        return values

    def sync_write(self, address: int, size: int, values: Mapping[int, int]) -> None:
        data = b"".join(bytes([i]) + _value_bytes(v, size) for i, v in values.items())
        self._send(dt.BROADCAST_ID, dt.SYNC_WRITE, _u16(address) + _u16(size) + data)

    def broadcast_ping(self, timeout_s: float | None = None) -> dict[int, int]:
        """{id: model number} of every servo that answers a broadcast PING. The default wait
        is the SDK's: room for 252 replies + 3 ms per id + 16 ms (~0.8 s at 1 Mbps)."""
        self._send(dt.BROADCAST_ID, dt.PING)
        if timeout_s is None:
            timeout_s = (14 * dt.MAX_ID * self.link.byte_time_s()
                         + (3 * dt.MAX_ID + 16) / 1000)
        deadline, found = time.monotonic() + timeout_s, {}
        while (status := self._next_status(set(range(dt.MAX_ID + 1)), deadline)) is not None:
            if status.crc_ok and len(status.params) == dt.PING_PARAMS:
                found[status.motor_id] = int.from_bytes(status.params[:2], "little")
        return dict(sorted(found.items()))

    # ------------------------------------------------------------------ wire
    def _send(self, motor_id: int, instruction: int, params: bytes = b"") -> None:
        # Stale bytes (a reply that came after its deadline) must not answer this request.
        self.link.discard_input()
        self._rx.clear()
        self.link.write(dt.instruction_packet(motor_id, instruction, params))

    def _deadline(self, expected_bytes: int) -> float:
        return time.monotonic() + expected_bytes * self.link.byte_time_s() + self.latency_s

    def _reply(self, motor_id: int, n_params: int) -> bytes:
        """The params of `motor_id`'s status to the request just sent."""
        deadline = self._deadline(dt.STATUS_OVERHEAD + n_params)
        while True:
            status = self._next_status({motor_id}, deadline)
            if status is None:
                raise MotorTimeoutError(f"no status packet from id {motor_id} on "
                                        f"{self.link.port}")
            if not status.crc_ok:
                raise ChecksumError(f"the reply of id {motor_id} on {self.link.port} failed "
                                    "its CRC")
            if status.error:
                raise MotorStatusError(f"servo id {motor_id} on {self.link.port} answered "
                                       f"{dt.describe_error(status.error)}")
            if len(status.params) == n_params:
                return status.params
            # A stale reply to another request of this id: not ours, keep listening.

    def _next_status(self, wanted: set[int], deadline: float) -> _Status | None:
        """The next status packet from one of `wanted` (others are dropped), or None."""
        while (packet := self._next_packet(deadline)) is not None:
            motor_id = packet[4]
            crc_ok = dt.crc16(packet[:-2]) == int.from_bytes(packet[-2:], "little")
            body = dt.unstuff(packet[7:-2])
            if motor_id not in wanted or (crc_ok and (len(body) < 2 or body[0] != dt.STATUS)):
                continue  # another servo's reply, or an echo of an instruction
            return _Status(motor_id, body[1] if crc_ok else 0, body[2:], crc_ok)
        return None

    def _next_packet(self, deadline: float) -> bytes | None:
        """One framed packet from the link (bytes before a header are skipped), or None."""
        buf = self._rx
        while True:
            start = buf.find(dt.HEADER[:3])
            del buf[:start if start >= 0 else max(0, len(buf) - 2)]  # keep a partial header
            need = 7 - len(buf)
            if start >= 0 and need <= 0:
                length = int.from_bytes(buf[5:7], "little")
                if buf[3] != 0 or buf[4] > dt.MAX_ID or not 3 <= length <= dt.MAX_PACKET_LENGTH:
                    del buf[0]  # a false header inside garbage
                    continue
                need = 7 + length - len(buf)
                if need <= 0:
                    packet = bytes(buf[:7 + length])
                    del buf[:7 + length]
                    return packet
            remaining = deadline - time.monotonic()
            chunk = self.link.read(need, remaining) if remaining > 0 else b""
            if not chunk:
                return None
            buf.extend(chunk)


def _u16(value: int) -> bytes:
    return int(value).to_bytes(2, "little")


def _value_bytes(value: int, size: int) -> bytes:
    if not 0 <= int(value) < 1 << (8 * size):
        raise ValueError(f"{value} does not fit an unsigned {size}-byte register")
    return int(value).to_bytes(size, "little")


class DynamixelMotorsBus(MotorsBus):
    """LeRobot's DynamixelMotorsBus, torch-free and SDK-free (see the module docstring)."""

    model_number_table = dt.MODEL_NUMBER_TABLE
    model_ctrl_table = dt.MODEL_CONTROL_TABLE
    model_resolution_table = dt.MODEL_RESOLUTION_TABLE
    model_baudrate_table = dt.MODEL_BAUDRATE_TABLE
    apply_drive_mode = False  # the servo's Drive_Mode bit inverts, in hardware

    def __init__(self, port: str, motors: Mapping[str, Motor],
                 calibration: Mapping[str, MotorCalibration] | None = None, *,
                 baudrate: int | None = None, retries: int = 2, latency_s: float = LATENCY_S):
        super().__init__(port, motors, calibration, baudrate=baudrate, retries=retries)
        self.latency_s = latency_s

    # ------------------------------------------------------------------ hooks
    def _make_protocol(self, link: SerialLink) -> DynamixelProtocol:
        return DynamixelProtocol(link, self.latency_s)

    def describe_status_error(self, error: int) -> str:
        return dt.describe_error(error)

    def _handshake(self) -> None:
        """Every configured id answers a PING with its model number (LeRobot's check)."""
        problems = []
        for name, motor in self.motors.items():
            expected = self.model_number_table[motor.model]
            who = self._describe([name])
            try:
                found = self._ping_id(motor.id)
            except MotorStatusError as error:
                problems.append(f"{who} answered with an error: {error}")
                continue
            if found is None:
                problems.append(f"{who} did not answer")
            elif found != expected:
                problems.append(f"{who} is {dt.model_name(found)}, expected {motor.model} "
                                f"(model number {expected})")
        if problems:
            raise HandshakeError(
                f"servo bus on {self.port}: " + "; ".join(problems) + ". Check the power "
                "supply, the cables, and each motor's id and baud rate (LeRobot's "
                "setup_motors assigns them).")

    def _ping_id(self, motor_id: int) -> int | None:
        for _ in range(1 + self.retries):
            with contextlib.suppress(ChecksumError):
                model = self._wire().ping(motor_id)
                if model is not None:
                    return model
        return None

    def _encode_sign(self, data_name: str, model: str, value: int) -> int:
        size = self._register(model, data_name)[1]
        if data_name in dt.MODEL_SIGNED_REGISTERS[model]:
            return dt.encode_twos_complement(value, size)
        if not 0 <= int(value) < 1 << (8 * size):
            raise ValueError(f"{data_name} is an unsigned {size}-byte register; got {value}")
        return int(value)

    def _decode_sign(self, data_name: str, model: str, value: int) -> int:
        if data_name in dt.MODEL_SIGNED_REGISTERS[model]:
            return dt.decode_twos_complement(value, self._register(model, data_name)[1])
        return value

    def _homing_offset_for(self, raw_position: int, max_res: int) -> int:
        return max_res // 2 - raw_position  # Present = Actual + offset reads 2047 here

    def _disable_torque_writes(self, motor: str, num_retry: int) -> None:
        self.write("Torque_Enable", motor, 0, normalize=False, num_retry=num_retry)

    def _enable_torque_writes(self, motor: str, num_retry: int) -> None:
        self.write("Torque_Enable", motor, 1, normalize=False, num_retry=num_retry)

    def configure_motors(self, return_delay_time: int = 0) -> None:
        """Return_Delay_Time 0 (factory 250 = 500 us of idle bus per reply)."""
        with self._eeprom_writable(list(self.motors)):
            for motor in self.motors:
                self.write("Return_Delay_Time", motor, return_delay_time, normalize=False)

    # ------------------------------------------------------------------ calibration
    @property
    def is_calibrated(self) -> bool:
        """The motors hold the whole record, Drive_Mode included (LeRobot's Dynamixel test)."""
        if set(self.calibration) != set(self.motors):
            return False
        return self.read_calibration() == self.calibration

    def read_calibration(self) -> dict[str, MotorCalibration]:
        records = super().read_calibration()
        modes = self.sync_read("Drive_Mode", list(records), normalize=False)
        return {n: dataclasses.replace(r, drive_mode=int(modes[n]) & 1)
                for n, r in records.items()}

    def write_calibration(self, calibration: Mapping[str, MotorCalibration],
                          cache: bool = True) -> None:
        """Drive_Mode bit 0, offsets and limits into EEPROM (torque off around it, then back
        as each motor had it)."""
        with self._eeprom_writable(list(calibration)):
            for motor, record in calibration.items():
                self._write_drive_mode(motor, record.drive_mode)
                self.write("Homing_Offset", motor, record.homing_offset, normalize=False)
                self.write("Min_Position_Limit", motor, record.range_min, normalize=False)
                self.write("Max_Position_Limit", motor, record.range_max, normalize=False)
        if cache:
            self.calibration.update(calibration)

    def _write_drive_mode(self, motor: str, drive_mode: int) -> None:
        current = int(self.read("Drive_Mode", motor, normalize=False))
        wanted = (current & ~1) | (drive_mode & 1)
        if wanted != current:  # EEPROM: write only what changes
            self.write("Drive_Mode", motor, wanted, normalize=False)

    @contextlib.contextmanager
    def _eeprom_writable(self, motors: list[str]):
        """Torque off on the motors that have it on (EEPROM refuses writes otherwise), and
        back on for those after the block."""
        if not motors:
            yield
            return
        torque = self.sync_read("Torque_Enable", motors, normalize=False)
        enabled = [m for m in motors if torque[m]]
        self.disable_torque(enabled)
        try:
            yield
        finally:
            self.enable_torque(enabled)

    # ------------------------------------------------------------------ scans
    def broadcast_ping(self, timeout_s: float | None = None) -> dict[int, int]:
        """{id: model number} of every servo on the bus (connect(handshake=False) first)."""
        return self._wire().broadcast_ping(timeout_s)
