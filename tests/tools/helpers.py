"""What the tool tests share: a thread-safe screen, a tool run in a thread with a pipe as its
keyboard (the person's side of the terminal), and a way to run a tool as its own process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0  # generous: a loaded CI machine; a passing step takes well under a second
POLL_S = 0.01


class Screen(io.StringIO):
    """A tool's stdout: written from its thread, read from the test's."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)

    def text(self) -> str:
        with self._lock:
            return self.getvalue()


class ToolSession:
    """`main(argv, stdin=pipe, stdout=screen)` in a thread; the test types and watches."""

    def __init__(self, main, argv: list[str]):
        self.screen = Screen()
        read_fd, write_fd = os.pipe()
        self.keyboard = os.fdopen(write_fd, "w")
        self._stdin = os.fdopen(read_fd, "r")
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(main, argv), daemon=True)
        self._thread.start()

    def _run(self, main, argv) -> None:
        try:
            self.exit_code = main(argv, stdin=self._stdin, stdout=self.screen)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test by finish()
            self.error = error

    def wait_for(self, found, what: str, since: int = 0):
        """Poll the screen until `found(text after since)` is truthy; fail if the tool ends."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            result = found(self.screen.text()[since:])
            if result:
                return result
            if not self._thread.is_alive():
                raise AssertionError(f"the tool ended (exit {self.exit_code}, {self.error!r}) "
                                     f"before {what}; screen:\n{self.screen.text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {TIMEOUT_S} s; screen:\n"
                                     f"{self.screen.text()[-2000:]}")
            time.sleep(POLL_S)

    def expect(self, text: str) -> None:
        self.wait_for(lambda screen: text in screen, repr(text))

    def press_enter(self, text: str = "") -> None:
        """Type `text` (nothing: a bare ENTER) and ENTER."""
        self.keyboard.write(text + "\n")
        self.keyboard.flush()

    def close_input(self) -> None:
        if not self.keyboard.closed:
            self.keyboard.close()

    def finish(self) -> int:
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive(), "the tool did not finish"
        self.close_input()
        self._stdin.close()
        if self.error is not None:
            raise self.error
        return self.exit_code

    def abandon(self) -> None:
        """After a failed test: unblock the tool (closed input) and wait for it."""
        self.close_input()
        self._thread.join(TIMEOUT_S)
        if not self._stdin.closed:
            self._stdin.close()


def tool_process(module: str, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """`python -m hiljax.<module> args` as its own process, text pipes for stdout / stderr."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", f"hiljax.{module}", *args], cwd=ROOT,
                            env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
