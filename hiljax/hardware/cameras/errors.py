"""What can go wrong with a camera. Every message names the camera and its device
("camera 'front' (/dev/video4)"), so a person knows which cable to look at.

The classes also derive from the builtin LeRobot raises for the same case (ConnectionError,
TimeoutError, RuntimeError), so code written against LeRobot's cameras catches them."""


class CameraError(Exception):
    """Base of every camera failure: catch this to handle any camera problem."""


class CameraConnectionError(CameraError, ConnectionError):
    """The device or file cannot be opened, or no frame arrived during warm-up."""


class CameraNotConnectedError(CameraError, ConnectionError):
    """A read before connect() or after disconnect() (or connect() twice)."""


class CameraSettingsError(CameraError, RuntimeError):
    """The device does not deliver the configured fps / width / height (LeRobot: RuntimeError)."""


class CameraStoppedError(CameraError, ConnectionError):
    """The reading thread gave up (too many consecutive failures: unplugged, USB bandwidth) or
    the source ended (a file with loop=False): no new frame will come."""


class NoFrameError(CameraError, RuntimeError):
    """read_latest() before any frame arrived (LeRobot: RuntimeError)."""


class FrameTimeoutError(CameraError, TimeoutError):
    """read() / async_read() waited longer than its timeout for a new frame."""


class StaleFrameError(CameraError, TimeoutError):
    """read_latest(): the newest frame is older than max_age_ms (the camera froze or stalls)."""

    def __init__(self, message: str, age_ms: float):
        super().__init__(message)
        self.age_ms = age_ms
