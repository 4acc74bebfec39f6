"""A pseudo-terminal that looks like a servo bus adapter, served by a background thread.

The client opens the slave device (or a symlink to it) as a serial port; the thread reads the
master side and writes the replies back. Both ends are raw: packets contain 0x0D, 0x11 and 0x13,
which a cooked terminal would translate (CR/LF) or swallow (XON/XOFF), and echo would hand the
client its own request back. The server keeps the slave open itself, so a client closing and
reopening the port does not hang the master up.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

POLL_S = 0.02  # how often the thread looks at its stop flag (and expires partial packets)


def make_raw(fd: int) -> None:
    """cfmakeraw: no echo, no canonical mode, no CR/LF mapping, no flow control, 8 bits."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
               | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


class PtyServer:
    """`serve(chunk) -> [(delay_s, reply), ...]` answers the bytes that arrive; `link`, if
    given, becomes a symlink to the slave device (replacing an old symlink, never a file)."""

    def __init__(self, serve: Callable[[bytes], list[tuple[float, bytes]]],
                 link: str | os.PathLike | None = None):
        self._serve = serve
        self.link = Path(link) if link is not None else None
        self._master = self._slave = -1
        self.device: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> str:
        """What a client opens: the link if there is one, else the slave device."""
        if self.device is None:
            raise RuntimeError("the virtual port is not started")
        return str(self.link) if self.link is not None else self.device

    def start(self) -> str:
        if self._thread is not None:
            return self.port
        self._master, self._slave = os.openpty()
        make_raw(self._master)
        make_raw(self._slave)
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)
        if self.link is not None:
            self._make_link()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"virtual-bus {self.device}",
                                        daemon=True)
        self._thread.start()
        logger.info("virtual servo bus on %s", self.port)
        return self.port

    def _make_link(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        elif self.link.exists():
            raise FileExistsError(f"{self.link} exists and is not a symlink; not replacing it")
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self.link.symlink_to(self.device)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.link is not None and self.link.is_symlink() \
                and os.readlink(self.link) == self.device:
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def _run(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], POLL_S)
            chunk = b""
            if readable:
                try:
                    chunk = os.read(self._master, 4096)
                except OSError as error:  # EIO: no slave open at the moment
                    if error.errno not in (errno.EIO, errno.EAGAIN):
                        raise
                    time.sleep(POLL_S)
            try:
                replies = self._serve(chunk)  # an empty chunk lets partial packets expire
            except Exception:  # a bug in a servo model must not kill the port silently
                logger.exception("virtual servo bus failed on %r", chunk)
                continue
            for delay, data in replies:
                if delay > 0:
                    time.sleep(delay)
                self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except BlockingIOError:
            # Nobody reads the port and its buffer is full: the bytes are lost, as on a wire.
            logger.debug("virtual bus output full; dropped %d bytes", len(data))
