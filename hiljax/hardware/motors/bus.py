"""The servo bus: one small interface over Feetech and Dynamixel buses, with LeRobot's names.

    bus = FeetechMotorsBus("/dev/ttyACM0", {"shoulder_pan": Motor(1, "sts3215", DEGREES), ...},
                           calibration=load_calibration(path))
    bus.connect()                                   # open, ping every motor, check models
    positions = bus.sync_read("Present_Position")   # {"shoulder_pan": 12.3, ...} in degrees
    bus.sync_write("Goal_Position", {"shoulder_pan": 10.0, ...})
    bus.disconnect()                                # torque off (disable_torque=True)

A vendor bus supplies a `PacketProtocol` (the wire: ping, read, write, sync read, sync write of
raw integers by id and address) and its control table; this class does the rest the same way
for both: names -> ids and registers, calibration and normalisation (Goal/Present_Position),
signed registers, bounded retries, errors that name the motor and the port, torque handling,
and the calibration steps (`set_half_turn_homings`, `record_ranges_of_motion`).

Status error bits in a sync read (overload, overheat, voltage, a Dynamixel hardware alert) are
LeRobot's behaviour: the value is kept and used and nothing is raised (the servo's own protection
acts; torque is left as it is). The bus warns once when a motor's bits appear or change, naming
the motor, its id, the port and the bits in words, logs when they clear, and keeps the current
ones in `status_errors` ({motor name: error byte}).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Self

from .calibration import MotorCalibration, NormMode, normalize, unnormalize
from .errors import (
    ChecksumError,
    MotorBusError,
    MotorStatusError,
    MotorTimeoutError,
    NotConnectedError,
    PortError,
)
from .serial_link import SerialLink

log = logging.getLogger(__name__)

NORMALISED_REGISTERS = ("Goal_Position", "Present_Position")


@dataclasses.dataclass(frozen=True)
class Motor:
    """One servo on the bus (LeRobot's Motor: id, model, norm_mode)."""

    id: int
    model: str
    norm_mode: NormMode


class PacketProtocol(abc.ABC):
    """The wire of one vendor's protocol: raw unsigned integers by id and address.

    Failures raise MotorTimeoutError (no reply), ChecksumError (a corrupt reply),
    MotorStatusError (error bits set) or PortError; the bus adds the motor names and retries.
    A sync read does not raise on error bits it keeps the value of: it records the error byte
    of each id's latest sync-read reply (0 when clear) in `status_errors`, which the bus reports.
    """

    status_errors: dict[int, int]  # id -> error byte of its latest sync-read reply

    @abc.abstractmethod
    def ping(self, motor_id: int) -> int | None:
        """The model number of `motor_id`, or None when nothing answers."""

    @abc.abstractmethod
    def read(self, motor_id: int, address: int, size: int) -> int: ...

    @abc.abstractmethod
    def write(self, motor_id: int, address: int, size: int, value: int) -> None: ...

    @abc.abstractmethod
    def sync_read(self, address: int, size: int, motor_ids: list[int]) -> dict[int, int]:
        """{id: value} for every id that answered (missing ids are left out, not raised)."""

    @abc.abstractmethod
    def sync_write(self, address: int, size: int, values: Mapping[int, int]) -> None: ...


class MotorsBus(abc.ABC):
    """LeRobot's MotorsBus, torch-free. Subclasses set the class attributes and the hooks."""

    model_number_table: dict[str, int]  # model name -> model number
    model_ctrl_table: dict[str, dict[str, tuple[int, int]]]  # model -> {register: (addr, size)}
    model_resolution_table: dict[str, int]  # model -> ticks per turn
    apply_drive_mode: bool  # drive mode in software (Feetech) or by the servo (Dynamixel)
    default_baudrate = 1_000_000

    def __init__(self, port: str, motors: Mapping[str, Motor],
                 calibration: Mapping[str, MotorCalibration] | None = None, *,
                 baudrate: int | None = None, retries: int = 2):
        unknown = sorted({m.model for m in motors.values()} - set(self.model_number_table))
        if unknown:
            raise ValueError(f"{type(self).__name__} does not know the motor model(s) {unknown}")
        ids = [m.id for m in motors.values()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"motor ids must be unique, got {ids}")
        self.port, self.motors = port, dict(motors)
        self.calibration = dict(calibration or {})
        self.retries = int(retries)
        self.link = SerialLink(port, baudrate or self.default_baudrate)
        self._protocol: PacketProtocol | None = None
        self._status_errors: dict[str, int] = {}  # motor -> error bits now reported

    # ------------------------------------------------------------------ vendor hooks
    @abc.abstractmethod
    def _make_protocol(self, link: SerialLink) -> PacketProtocol: ...

    @abc.abstractmethod
    def _handshake(self) -> None:
        """Check that every configured motor answers with its model (HandshakeError if not)."""

    @abc.abstractmethod
    def _encode_sign(self, data_name: str, model: str, value: int) -> int:
        """A signed register value -> the unsigned integer on the wire."""

    @abc.abstractmethod
    def _decode_sign(self, data_name: str, model: str, value: int) -> int: ...

    @abc.abstractmethod
    def _homing_offset_for(self, raw_position: int, max_res: int) -> int:
        """The Homing_Offset that makes the current raw position read as half a turn."""

    @abc.abstractmethod
    def _disable_torque_writes(self, motor: str, num_retry: int) -> None: ...

    @abc.abstractmethod
    def _enable_torque_writes(self, motor: str, num_retry: int) -> None: ...

    @abc.abstractmethod
    def configure_motors(self) -> None:
        """LeRobot's per-bus defaults (return delay, acceleration) for every motor."""

    def describe_status_error(self, error: int) -> str:
        """A status error byte in words (the vendor buses name their bits)."""
        return f"error byte 0x{error:02X}"

    # ------------------------------------------------------------------ connection
    @property
    def is_connected(self) -> bool:
        return self._protocol is not None

    def connect(self, handshake: bool = True) -> None:
        if self.is_connected:
            raise MotorBusError(f"the servo bus on {self.port} is already connected")
        self.link.open()
        self._protocol = self._make_protocol(self.link)
        self._status_errors = {}
        if handshake:
            try:
                self._handshake()
            except BaseException:
                self._close_port()  # a failed connect leaves nothing open (LeRobot's does)
                raise
        log.info("servo bus %s: %d motors connected", self.port, len(self.motors))

    def disconnect(self, disable_torque: bool = True) -> None:
        """Close the port; first switch torque off when asked (best effort: a motor that does
        not answer is logged, the others still go limp and the port still closes)."""
        if not self.is_connected:
            return
        if disable_torque:
            for motor in self.motors:
                try:
                    self._disable_torque_writes(motor, num_retry=5)
                except MotorBusError as error:
                    log.error("could not switch torque off on %s: %s", motor, error)
        self._close_port()

    def _close_port(self) -> None:
        self._protocol = None
        self.link.close()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect(disable_torque=True)

    # ------------------------------------------------------------------ registers
    def ping(self, motor: str, num_retry: int | None = None) -> int | None:
        return self._retrying(motor, lambda: self._wire().ping(self.motors[motor].id), num_retry)

    def read(self, data_name: str, motor: str, *, normalize: bool = True,
             num_retry: int | None = None) -> float | int:
        model = self._motor(motor).model
        address, size = self._register(model, data_name)
        raw = self._retrying(motor, lambda: self._wire().read(self.motors[motor].id, address,
                                                              size), num_retry)
        value = self._decode_sign(data_name, model, raw)
        return self._normalised(data_name, {motor: value})[motor] if normalize else value

    def write(self, data_name: str, motor: str, value: float, *, normalize: bool = True,
              num_retry: int | None = None) -> None:
        model = self._motor(motor).model
        address, size = self._register(model, data_name)
        raw = self._raw(data_name, {motor: value}, normalize)[motor]
        self._retrying(motor, lambda: self._wire().write(self.motors[motor].id, address, size,
                                                         raw), num_retry)

    def sync_read(self, data_name: str, motors: Iterable[str] | None = None, *,
                  normalize: bool = True, num_retry: int | None = None) -> dict[str, float]:
        """One sync read of `data_name` for every motor (or `motors`); a motor that does not
        answer after the retries is a MotorTimeoutError naming it."""
        names = list(self.motors if motors is None else motors)
        address, size = self._shared_register(names, data_name)
        ids = {self._motor(n).id: n for n in names}
        values: dict[str, int] = {}
        attempts = 1 + (self.retries if num_retry is None else num_retry)
        corrupt: ChecksumError | None = None  # set when the latest attempt got a corrupt reply
        for _ in range(attempts):
            missing = [i for i in ids if ids[i] not in values]
            try:
                got, corrupt = self._wire().sync_read(address, size, missing), None
            except ChecksumError as error:
                log.warning("servo bus %s: %s; retrying", self.port, error)
                got, corrupt = error.partial, error
            values.update({ids[i]: v for i, v in got.items() if i in ids})
            if len(values) == len(names):
                break
        silent = [n for n in names if n not in values]
        if silent and corrupt is not None:  # noise on the cable, not a silent motor
            raise ChecksumError(f"{self._describe(silent)} on {self.port}: corrupt replies to a "
                                f"sync read of {data_name} ({attempts} attempts): {corrupt}")
        if silent:
            raise MotorTimeoutError(
                f"{self._describe(silent)} did not answer a sync read of {data_name} on "
                f"{self.port} ({attempts} attempts)")
        self._report_status_errors(names, data_name)
        decoded = {n: self._decode_sign(data_name, self.motors[n].model, values[n])
                   for n in names}
        return self._normalised(data_name, decoded) if normalize else decoded

    @property
    def status_errors(self) -> dict[str, int]:
        """{motor: error byte} of the motors whose latest sync-read reply had error bits set."""
        return dict(self._status_errors)

    def _report_status_errors(self, names: list[str], data_name: str) -> None:
        """Warn when a motor's error bits appear or change, note when they clear (once each:
        a lasting overload must not log at the control rate)."""
        seen = getattr(self._protocol, "status_errors", None) or {}
        for name in names:
            error = seen.get(self.motors[name].id, 0)
            if error == self._status_errors.get(name, 0):
                continue
            if error:
                self._status_errors[name] = error
                log.warning("%s on %s reports %s in a sync read of %s; the value is used",
                            self._describe([name]), self.port,
                            self.describe_status_error(error), data_name)
            else:
                del self._status_errors[name]
                log.info("%s on %s no longer reports an error", self._describe([name]),
                         self.port)

    def sync_write(self, data_name: str, values: Mapping[str, float], *,
                   normalize: bool = True) -> None:
        """One sync write (no reply exists, so nothing to retry)."""
        address, size = self._shared_register(list(values), data_name)
        raw = self._raw(data_name, values, normalize)
        self._wire().sync_write(address, size, {self.motors[n].id: v for n, v in raw.items()})

    # ------------------------------------------------------------------ torque
    def disable_torque(self, motors: Iterable[str] | None = None,
                       num_retry: int | None = None) -> None:
        for motor in self.motors if motors is None else motors:
            self._disable_torque_writes(motor, self.retries if num_retry is None else num_retry)

    def enable_torque(self, motors: Iterable[str] | None = None,
                      num_retry: int | None = None) -> None:
        for motor in self.motors if motors is None else motors:
            self._enable_torque_writes(motor, self.retries if num_retry is None else num_retry)

    @contextlib.contextmanager
    def torque_disabled(self, motors: Iterable[str] | None = None):
        """Torque off inside the block (EEPROM writes), back on after it."""
        names = list(self.motors if motors is None else motors)
        self.disable_torque(names)
        try:
            yield
        finally:
            self.enable_torque(names)

    # ------------------------------------------------------------------ calibration
    @property
    def is_calibrated(self) -> bool:
        """The motors hold the calibration's offsets and limits (what LeRobot compares)."""
        if set(self.calibration) != set(self.motors):
            return False
        on_motors = self.read_calibration()
        keys = ("homing_offset", "range_min", "range_max")
        return all(all(getattr(on_motors[n], k) == getattr(c, k) for k in keys)
                   for n, c in self.calibration.items())

    def read_calibration(self) -> dict[str, MotorCalibration]:
        offsets = self.sync_read("Homing_Offset", normalize=False)
        lows = self.sync_read("Min_Position_Limit", normalize=False)
        highs = self.sync_read("Max_Position_Limit", normalize=False)
        return {n: MotorCalibration(id=m.id, drive_mode=self._drive_mode_of(n),
                                    homing_offset=int(offsets[n]), range_min=int(lows[n]),
                                    range_max=int(highs[n]))
                for n, m in self.motors.items()}

    def _drive_mode_of(self, motor: str) -> int:
        known = self.calibration.get(motor)
        return known.drive_mode if known is not None else 0

    def write_calibration(self, calibration: Mapping[str, MotorCalibration],
                          cache: bool = True) -> None:
        """Offsets and limits into each motor's EEPROM (torque off around it)."""
        with self.torque_disabled(list(calibration)):
            for motor, record in calibration.items():
                self.write("Homing_Offset", motor, record.homing_offset, normalize=False)
                self.write("Min_Position_Limit", motor, record.range_min, normalize=False)
                self.write("Max_Position_Limit", motor, record.range_max, normalize=False)
        if cache:
            self.calibration.update(calibration)

    def reset_calibration(self, motors: Iterable[str] | None = None) -> None:
        """Homing offset 0 and the full range, so raw positions are the servo's own."""
        for motor in self.motors if motors is None else motors:
            max_res = self.model_resolution_table[self.motors[motor].model] - 1
            self.write("Homing_Offset", motor, 0, normalize=False)
            self.write("Min_Position_Limit", motor, 0, normalize=False)
            self.write("Max_Position_Limit", motor, max_res, normalize=False)

    def set_half_turn_homings(self, motors: Iterable[str] | None = None) -> dict[str, int]:
        """LeRobot's step "move to the middle of the range": the current pose reads half a turn
        (2047) from now on. Returns the offsets written."""
        names = list(self.motors if motors is None else motors)
        self.reset_calibration(names)
        raw = self.sync_read("Present_Position", names, normalize=False)
        offsets = {}
        for motor in names:
            max_res = self.model_resolution_table[self.motors[motor].model] - 1
            try:
                offsets[motor] = self._homing_offset_for(int(raw[motor]), max_res)
            except ValueError as error:  # say which joint to move
                raise ValueError(f"{self._describe([motor])} on {self.port}: {error}") from None
            self.write("Homing_Offset", motor, offsets[motor], normalize=False)
        return offsets

    def record_ranges_of_motion(self, motors: Iterable[str] | None = None, *,
                                should_stop: Callable[[], bool],
                                on_update: Callable[[dict, dict, dict], None] | None = None
                                ) -> tuple[dict[str, int], dict[str, int]]:
        """Raw min / max of each motor while a person moves the joints, until `should_stop()`.
        `on_update(mins, positions, maxes)` after each read (a live table)."""
        names = list(self.motors if motors is None else motors)
        positions = self.sync_read("Present_Position", names, normalize=False)
        mins, maxes = dict(positions), dict(positions)
        while True:
            positions = self.sync_read("Present_Position", names, normalize=False)
            for motor, value in positions.items():
                mins[motor], maxes[motor] = min(mins[motor], value), max(maxes[motor], value)
            if on_update is not None:
                on_update(mins, positions, maxes)
            if should_stop():
                break
        same = [m for m in names if mins[m] == maxes[m]]
        if same:
            raise ValueError(f"{self._describe(same)} did not move: a range needs min < max")
        return {m: int(v) for m, v in mins.items()}, {m: int(v) for m, v in maxes.items()}

    # ------------------------------------------------------------------ helpers
    def _wire(self) -> PacketProtocol:
        if self._protocol is None:
            raise NotConnectedError(f"the servo bus on {self.port} is not connected")
        return self._protocol

    def _motor(self, name: str) -> Motor:
        try:
            return self.motors[name]
        except KeyError:
            raise KeyError(f"no motor {name!r} on {self.port}; motors: {list(self.motors)}") \
                from None

    def _register(self, model: str, data_name: str) -> tuple[int, int]:
        table = self.model_ctrl_table[model]
        if data_name not in table:
            raise KeyError(f"motor model {model} has no register {data_name!r}")
        return table[data_name]

    def _shared_register(self, names: list[str], data_name: str) -> tuple[int, int]:
        registers = {self._register(self._motor(n).model, data_name) for n in names}
        if len(registers) != 1:
            raise ValueError(f"{data_name} sits at different addresses on {names}: a sync "
                             "operation needs one address")
        return registers.pop()

    def _describe(self, names: list[str]) -> str:
        listed = ", ".join(f"{n} (id {self.motors[n].id})" for n in names)
        return f"motor {listed}" if len(names) == 1 else f"motors {listed}"

    def _retrying(self, motor: str, operation: Callable, num_retry: int | None):
        attempts = 1 + (self.retries if num_retry is None else num_retry)
        for attempt in range(attempts):
            try:
                return operation()
            except (MotorTimeoutError, ChecksumError) as error:
                if attempt + 1 == attempts:
                    raise type(error)(f"{self._describe([motor])} on {self.port}: {error} "
                                      f"({attempts} attempts)") from None
            except MotorStatusError as error:  # a real answer: retrying would not change it
                raise MotorStatusError(f"{self._describe([motor])} on {self.port}: {error}") \
                    from None
            except PortError:
                raise
        raise AssertionError("unreachable")

    def _calibration_of(self, motor: str) -> MotorCalibration:
        try:
            return self.calibration[motor]
        except KeyError:
            raise MotorBusError(f"{self._describe([motor])} on {self.port} has no calibration: "
                                "calibrate the arm (python -m hiljax.calibrate)") from None

    def _normalised(self, data_name: str, values: Mapping[str, int]) -> dict[str, float]:
        if data_name not in NORMALISED_REGISTERS:
            return dict(values)
        return {n: normalize(v, self._calibration_of(n), self.motors[n].norm_mode,
                             apply_drive_mode=self.apply_drive_mode,
                             max_res=self.model_resolution_table[self.motors[n].model] - 1)
                for n, v in values.items()}

    def _raw(self, data_name: str, values: Mapping[str, float], normalize: bool) -> dict[str, int]:
        if normalize and data_name in NORMALISED_REGISTERS:
            ints = {n: unnormalize(v, self._calibration_of(n), self.motors[n].norm_mode,
                                   apply_drive_mode=self.apply_drive_mode,
                                   max_res=self.model_resolution_table[self.motors[n].model] - 1)
                    for n, v in values.items()}
        else:
            ints = {n: int(v) for n, v in values.items()}
        return {n: self._encode_sign(data_name, self.motors[n].model, v) for n, v in ints.items()}
