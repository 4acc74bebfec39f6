"""What can go wrong on a servo bus. Every message names the port and, where there is one, the
motor (by name and id), so a person knows which cable or servo to look at."""


class MotorBusError(ConnectionError):
    """Base of every bus failure (a ConnectionError, as LeRobot's bus raises)."""


class PortError(MotorBusError):
    """The serial port cannot be opened, or vanished (unplugged USB adapter)."""


class MotorTimeoutError(MotorBusError):
    """A motor did not answer (after the bus' bounded retries)."""


class ChecksumError(MotorBusError):
    """A reply arrived with a wrong checksum / CRC (after the bus' bounded retries).

    From a sync read, `partial` holds the {id: raw value} that did arrive intact, so a retry
    asks only the others (and the final error names only the motors at fault)."""

    def __init__(self, *args, partial: dict[int, int] | None = None):
        super().__init__(*args)
        self.partial = dict(partial or {})


class MotorStatusError(MotorBusError):
    """A motor answered with error bits set (overload, overheat, voltage, ...)."""


class HandshakeError(MotorBusError):
    """Connect found missing motors, wrong model numbers or mixed firmware."""


class NotConnectedError(MotorBusError):
    """An operation that needs an open port was called before connect() or after disconnect()."""
