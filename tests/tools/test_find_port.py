"""`python -m hiljax.find_port`: LeRobot's unplug-and-diff procedure, on a directory of
symlinks standing in for /dev/ttyACM*; the person's ENTER comes from the test."""

from __future__ import annotations

import io
import logging
import os
import subprocess

import pytest

from hiljax.find_port import disappeared_port, main
from tests.tools.helpers import TIMEOUT_S, tool_process


class Keyboard(io.StringIO):
    """stdin whose ENTER first does what the person does (unplug a cable)."""

    def __init__(self, on_enter=lambda: None, closed: bool = False):
        super().__init__("" if closed else "\n")
        self.on_enter = on_enter

    def readline(self, *args) -> str:
        self.on_enter()
        return super().readline(*args)


@pytest.fixture
def ports(tmp_path):
    """Two 'serial ports': symlinks to /dev/null, as udev's links point at devices."""
    folder = tmp_path / "dev"
    folder.mkdir()
    for name in ("ttyACM0", "ttyACM1"):
        os.symlink(os.devnull, folder / name)
    return folder


def run(ports, keyboard) -> tuple[int, str]:
    screen = io.StringIO()
    code = main(["--ports-glob", str(ports / "ttyACM*")], stdin=keyboard, stdout=screen)
    return code, screen.getvalue()


def test_the_unplugged_port_is_named(ports):
    code, screen = run(ports, Keyboard(on_enter=(ports / "ttyACM1").unlink))
    assert code == 0
    assert f"The port of this servo bus is '{ports / 'ttyACM1'}'" in screen
    assert f"Ports before unplugging: {ports / 'ttyACM0'}, {ports / 'ttyACM1'}" in screen
    assert "Reconnect the USB cable." in screen


def test_nothing_unplugged_is_an_error(ports, caplog):
    with caplog.at_level(logging.ERROR):
        code, screen = run(ports, Keyboard())
    assert code == 1
    assert "no port disappeared" in caplog.text and "The port of" not in screen


def test_several_unplugged_is_an_error(ports, caplog):
    def unplug_both():
        for name in ("ttyACM0", "ttyACM1"):
            (ports / name).unlink()

    with caplog.at_level(logging.ERROR):
        code, _ = run(ports, Keyboard(on_enter=unplug_both))
    assert code == 1
    assert "several ports disappeared" in caplog.text and "ttyACM0" in caplog.text


def test_no_port_at_all_is_an_error(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code, _ = run(tmp_path, Keyboard())
    assert code == 1 and "no serial port found" in caplog.text


def test_input_closed_before_enter_is_an_error(ports, caplog):
    with caplog.at_level(logging.ERROR):
        code, _ = run(ports, Keyboard(closed=True))
    assert code == 1 and "input closed" in caplog.text


def test_disappeared_port_is_a_set_difference():
    assert disappeared_port(["/dev/a", "/dev/b"], ["/dev/b", "/dev/c"]) == "/dev/a"


def test_as_a_process_with_enter_on_its_stdin(ports):
    """The real thing: its own process, waiting on a pipe; the cable goes between listings."""
    process = tool_process("find_port", "--ports-glob", str(ports / "ttyACM*"),
                           stdin=subprocess.PIPE)
    try:
        prompt = ""
        while "press ENTER" not in prompt:  # the prompt has no newline: read what is there
            chunk = os.read(process.stdout.fileno(), 4096).decode()
            assert chunk, f"the tool ended before its prompt: {prompt!r}"
            prompt += chunk
        (ports / "ttyACM0").unlink()
        out, err = process.communicate("\n", timeout=TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert f"The port of this servo bus is '{ports / 'ttyACM0'}'" in out
