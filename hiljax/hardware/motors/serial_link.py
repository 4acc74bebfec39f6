"""The byte pipe under a servo bus: a pyserial port with deadlines instead of busy polling.

Both protocols are request / reply: `write` a packet, then `read` the bytes of the reply with a
deadline. A vanished port (USB adapter unplugged) turns into PortError naming it.
"""

from __future__ import annotations

import time

import serial

from .errors import PortError

try:
    import termios
except ImportError:  # Windows: pyserial wraps its own errors
    termios = None

# pyserial lets termios.error (not an OSError) escape from reset_input_buffer() and flush() when
# the device is gone (EIO on an unplugged adapter / a closed pty master), so catch it too.
_PORT_FAILURES = (OSError, serial.SerialException) + ((termios.error,) if termios else ())


class SerialLink:
    def __init__(self, port: str, baudrate: int):
        self.port, self.baudrate = port, int(baudrate)
        self._serial: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        try:
            # A pseudo-terminal accepts any rate; a real adapter is set to the bus' rate.
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=1.0)
        except (OSError, serial.SerialException, ValueError) as error:
            raise PortError(f"cannot open the servo bus port {self.port} at {self.baudrate} "
                            f"baud: {error}") from None

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except _PORT_FAILURES:
                pass  # already gone; closing must never raise on the way out
            self._serial = None

    def byte_time_s(self) -> float:
        return 10.0 / self.baudrate  # 8N1: ten bits a byte

    def discard_input(self) -> None:
        """Drop stale bytes (a late reply to an earlier request would otherwise be parsed)."""
        try:
            self._port().reset_input_buffer()
        except _PORT_FAILURES as error:
            raise PortError(f"servo bus port {self.port} failed: {error}") from None

    def write(self, data: bytes) -> None:
        try:
            self._port().write(data)
            self._port().flush()
        except _PORT_FAILURES as error:
            raise PortError(f"servo bus port {self.port} failed while writing: {error}") from None

    def read(self, count: int, timeout_s: float) -> bytes:
        """Up to `count` bytes, waiting at most `timeout_s` (fewer on timeout)."""
        port = self._port()
        deadline = time.monotonic() + timeout_s
        data = bytearray()
        try:
            while len(data) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                port.timeout = remaining
                chunk = port.read(count - len(data))
                data.extend(chunk)
        except _PORT_FAILURES as error:
            raise PortError(f"servo bus port {self.port} failed while reading: {error}") from None
        return bytes(data)

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise PortError(f"servo bus port {self.port} is not open")
        return self._serial
