"""The Camera base: LeRobot's reading model (hardware_facts §5), shared by every camera kind.

connect() opens the device and starts a daemon thread that reads continuously and keeps ONLY
the newest frame and its time under a lock: a robot loop asks for a frame when it needs one
and never sees a queue of old frames, however slow its step was.

    camera.read_latest()   never waits: the newest frame (a robot's observation)
    camera.async_read()    the next frame not yet taken by read / async_read (waits)
    camera.read()          a frame captured after this call began (waits)

Frames are (H, W, 3) uint8 in the configured colour order, rotated, of the configured output
size, and read-only (one frame object may be handed to several readers). A subclass opens and
closes its device and returns one raw frame per `_grab()`; the rest is here.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from typing import Self

import cv2
import numpy as np

from hiljax.hardware.cameras.config import CameraConfig
from hiljax.hardware.cameras.errors import (
    CameraConnectionError,
    CameraError,
    CameraNotConnectedError,
    CameraStoppedError,
    FrameTimeoutError,
    NoFrameError,
    StaleFrameError,
)

log = logging.getLogger(__name__)

# A device that opened must deliver its first frame this long after the warm-up began.
FIRST_FRAME_TIMEOUT_S = 5.0
# disconnect() waits this long for the thread to leave a blocking read.
JOIN_TIMEOUT_S = 2.0
DEFAULT_FPS = 30  # pacing / retry period when neither the config nor the device says
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, -90: cv2.ROTATE_90_COUNTERCLOCKWISE}


class SourceEnded(Exception):
    """Raised by `_grab()` when a finite source has no more frames (a file with loop=false):
    the thread stops without an error, and the last frame goes stale."""


def output_size(capture: tuple[int, int], rotation: int) -> tuple[int, int]:
    """(width, height) of the frames after rotating a capture of (width, height)."""
    return (capture[1], capture[0]) if rotation in (90, -90) else capture


class Camera(abc.ABC):
    # More consecutive failures than this stop the thread (LeRobot's count).
    max_consecutive_failures = 10
    source_color_order = "bgr"  # channel order `_grab()` delivers
    paced = False  # True: the base holds `_grab()` to fps (a file or a render is not a clock)

    def __init__(self, name: str, config: CameraConfig):
        self.name, self.config = name, config
        self.label = f"camera {name!r} ({self._source()})"
        # The output size and fps; a subclass sets what its device actually delivers.
        self.width, self.height, self.fps = config.width, config.height, config.fps
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._reset()

    @abc.abstractmethod
    def _source(self) -> str:
        """The device as a person would name it: '/dev/video4', 'front.mp4', 'sim'."""

    @abc.abstractmethod
    def _open(self) -> None:
        """Open and configure; set width / height / fps to what the device delivers.
        Raise CameraError (naming self.label) when it cannot."""

    @abc.abstractmethod
    def _grab(self) -> np.ndarray:
        """Block for the next raw frame: (capture H, capture W, 3) uint8 in
        source_color_order. Raise on failure, SourceEnded at the end of a finite source."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device (called once, after the thread has left `_grab()`)."""

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise CameraNotConnectedError(f"{self.label} is already connected")
        if self._thread is not None and self._thread.is_alive():  # it would read the new state
            raise CameraConnectionError(f"{self.label}: the last connection's reading thread "
                                        "is still blocked in a read; try again later")
        self._reset()
        try:
            self._open()
        except Exception as exc:  # a driver's own error: say which camera it came from
            if isinstance(exc, CameraError):
                raise
            raise CameraConnectionError(f"{self.label} could not be opened: {exc}") from exc
        self._thread = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"camera-{self.name}")
        self._connected = True
        self._thread.start()
        try:
            self._warm_up()
        except BaseException:
            self.disconnect()
            raise
        log.info("%s connected: %dx%d at %s fps, %s", self.label, self.width, self.height,
                 self.fps, self.config.color_mode)

    def disconnect(self) -> None:
        self._require_connected()
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        with self._cond:
            # A thread stuck in a blocking read releases the device itself when it returns:
            # releasing it under the reader's feet could crash the driver.
            self._release_on_exit = self._running
        if self._release_on_exit:
            log.warning("%s: the reading thread is still blocked in a read; the device is "
                        "released when that read returns", self.label)
        else:
            self._close()
        self._connected = False

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._connected:
            self.disconnect()

    def read(self, timeout_ms: float = 10_000) -> np.ndarray:
        """A frame captured after this call began (LeRobot's read); FrameTimeoutError after
        timeout_ms, CameraStoppedError when the thread has stopped."""
        self._require_connected()
        with self._cond:
            after = self._seq
        return self._wait_newer(after, timeout_ms)

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        """The newest frame not yet taken by read / async_read, waiting up to timeout_ms."""
        self._require_connected()
        with self._cond:
            after = self._taken
        return self._wait_newer(after, timeout_ms)

    def read_latest(self, max_age_ms: float | None = None) -> np.ndarray:
        """The newest frame, never waiting (the same frame may come twice). NoFrameError when
        none arrived yet, StaleFrameError when it is older than max_age_ms (None: the
        config's), CameraStoppedError when the thread gave up."""
        self._require_connected()
        with self._cond:
            frame, stamp = self._frame, self._stamp
        if self._failure is not None:
            raise self._stopped_error()
        if frame is None:
            raise NoFrameError(f"{self.label} has delivered no frame yet")
        limit = self.config.max_age_ms if max_age_ms is None else max_age_ms
        age_ms = (time.perf_counter() - stamp) * 1000.0
        if age_ms > limit:
            why = (f"the source ended ({self._ended})" if self._ended else
                   "it stopped delivering frames (a loose cable, USB bandwidth shared with "
                   "another camera, or a frozen driver)")
            raise StaleFrameError(f"{self.label}: the newest frame is {age_ms:.0f} ms old "
                                  f"(max_age_ms={limit:g}): {why}", age_ms)
        return frame

    def _reset(self) -> None:
        self._stop.clear()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._seq = 0  # frames published since connect
        self._taken = 0  # the last seq handed out by read / async_read
        self._running = True
        self._release_on_exit = False
        self._failure: str | None = None  # why the thread gave up
        self._ended: str | None = None  # why a finite source stopped

    def _require_connected(self) -> None:
        if not self._connected:
            raise CameraNotConnectedError(f"{self.label} is not connected: call connect()")

    def _stopped_error(self) -> CameraStoppedError:
        return CameraStoppedError(
            f"{self.label} stopped delivering frames: {self._failure or self._ended}")

    def _wait_newer(self, after: int, timeout_ms: float) -> np.ndarray:
        deadline = time.perf_counter() + timeout_ms / 1000.0
        with self._cond:
            while self._seq <= after:
                if not self._running:
                    raise self._stopped_error()
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise FrameTimeoutError(f"{self.label}: no new frame within "
                                            f"{timeout_ms:g} ms")
                self._cond.wait(remaining)
            self._taken = self._seq
            return self._frame

    def _warm_up(self) -> None:
        """Wait for a first frame, then keep reading for the rest of warmup_s (exposure)."""
        start = time.perf_counter()
        deadline = start + self.config.warmup_s + FIRST_FRAME_TIMEOUT_S
        with self._cond:
            while self._seq == 0:
                remaining = deadline - time.perf_counter()
                if not self._running or remaining <= 0:
                    why = self._failure or self._ended or (
                        f"nothing within {deadline - start:.1f} s")
                    raise CameraConnectionError(f"{self.label} opened but delivered no frame "
                                                f"during warm-up: {why}")
                self._cond.wait(remaining)
        self._stop.wait(max(0.0, start + self.config.warmup_s - time.perf_counter()))
        if self._failure is not None:
            raise CameraConnectionError(f"{self.label} failed during warm-up: {self._failure}")

    @property
    def _period_s(self) -> float:
        return 1.0 / (self.fps or DEFAULT_FPS)

    def _read_loop(self) -> None:
        failures, next_tick = 0, time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.paced:  # one frame per period, no burst to catch up after a slow one
                    self._stop.wait(max(0.0, next_tick - time.perf_counter()))
                    next_tick = max(next_tick + self._period_s, time.perf_counter())
                    if self._stop.is_set():
                        break
                try:
                    frame = self._process(self._grab())
                except SourceEnded as end:
                    self._ended = str(end)
                    log.info("%s: %s", self.label, end)
                    break
                except Exception as exc:  # noqa: BLE001 - any driver error counts as a failure
                    failures += 1
                    if self._gave_up(failures, exc):
                        break
                    if not self.paced:  # a device that fails at once is retried a frame later
                        self._stop.wait(self._period_s)
                    continue
                failures = 0
                self._publish(frame)
        finally:
            with self._cond:
                self._running = False
                release = self._release_on_exit
                self._cond.notify_all()
            if release:
                self._close()

    def _gave_up(self, failures: int, exc: Exception) -> bool:
        if self._stop.is_set():  # a read interrupted by disconnect() is no failure
            return True
        what = f"{type(exc).__name__}: {exc}"
        if failures == 1:
            log.warning("%s: a frame read failed (%s); retrying", self.label, what)
        if failures <= self.max_consecutive_failures:
            return False
        self._failure = f"{failures} consecutive failed reads, the last: {what}"
        log.error("%s stopped delivering frames: %s", self.label, self._failure)
        return True

    def _process(self, raw: np.ndarray) -> np.ndarray:
        """Colour order, rotation and the size check; returns an owned, read-only frame."""
        if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 3
                and raw.shape[2] == 3):
            got = (raw.shape, raw.dtype) if isinstance(raw, np.ndarray) else type(raw).__name__
            raise ValueError(f"a frame must be a (H, W, 3) uint8 array, got {got}")
        frame = raw
        if self.source_color_order != self.config.color_mode:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # the same swap both ways
        if self.config.rotation:
            frame = cv2.rotate(frame, _ROTATE[self.config.rotation])
        height, width = frame.shape[:2]
        if self.width is None:  # a source of unknown size: its first frame fixes the size
            self.width, self.height = width, height
        elif (width, height) != (self.width, self.height):
            raise ValueError(f"a frame is {width}x{height} (width x height, after rotation "
                             f"{self.config.rotation}), expected {self.width}x{self.height}")
        if frame is raw:  # drivers and renderers may reuse their buffer for the next frame
            frame = raw.copy()
        frame.flags.writeable = False
        return frame

    def _publish(self, frame: np.ndarray) -> None:
        with self._cond:
            self._frame, self._stamp = frame, time.perf_counter()
            self._seq += 1
            self._cond.notify_all()

    def __repr__(self) -> str:
        state = "connected" if self._connected else "not connected"
        return f"<{type(self).__name__} {self.label}, {state}>"
