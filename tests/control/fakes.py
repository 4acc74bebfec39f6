"""Recorded-input loading and fakes for the hardware only (a joystick, hidapi)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "control"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def report_bytes(hex_string: str) -> list[int]:
    return list(bytes.fromhex(hex_string))


def assert_commands(commands, expect: dict) -> None:
    """A `Commands` value against a fixture's expected dict."""
    assert commands.deltas == pytest.approx(expect["deltas"], abs=1e-12)
    assert commands.intervene is expect["intervene"]
    assert commands.gripper == expect["gripper"]
    assert commands.episode_end == expect["episode_end"]
    assert commands.quit is expect["quit"]


def assert_controller(controller, expect: dict) -> None:
    """What a controller's public getters say, against the same expected dict. Reads (and so
    resets) the episode-end status."""
    assert controller.get_deltas() == pytest.approx(expect["deltas"], abs=1e-12)
    assert controller.should_intervene() is expect["intervene"]
    assert controller.gripper_command() == expect["gripper"]
    assert controller.get_episode_end_status() == expect["episode_end"]
    assert controller.should_quit() is expect["quit"]


class FakeJoystick:
    """The part of pygame.joystick.JoystickType a controller reads, with settable state."""

    def __init__(self, name: str, num_axes: int, num_buttons: int, instance_id: int = 0):
        self.name = name
        self.axes = [0.0] * num_axes
        self.buttons = [0] * num_buttons
        self.instance_id = instance_id
        self.fail = False

    def set(self, axes, held_buttons) -> None:
        self.axes = [float(a) for a in axes]
        self.buttons = [int(i in held_buttons) for i in range(len(self.buttons))]

    def _check(self):
        if self.fail:
            import pygame

            raise pygame.error("Joystick not initialized")

    def get_name(self):
        return self.name

    def get_instance_id(self):
        return self.instance_id

    def get_numaxes(self):
        return len(self.axes)

    def get_axis(self, i):
        self._check()
        return self.axes[i]

    def get_numbuttons(self):
        return len(self.buttons)

    def get_button(self, i):
        self._check()
        return self.buttons[i]


class FakeHidDevice:
    def __init__(self, module):
        self.module = module
        self.queue: list[list[int]] = []
        self.closed = False
        self.nonblocking = False

    def open_path(self, path):
        if self.module.open_error:
            raise OSError("open failed")
        self.module.opened_path = path

    def set_nonblocking(self, flag):
        self.nonblocking = bool(flag)

    def read(self, size):
        if self.module.read_error:
            raise OSError("read error")
        return self.queue.pop(0)[:size] if self.queue else []

    def close(self):
        self.closed = True


class FakeHidModule:
    """Stands in for hidapi's `hid` module: enumerate() and device()."""

    def __init__(self, devices: list[dict]):
        self.devices = devices
        self.opened_path = None
        self.open_error = False
        self.read_error = False
        self.last_device: FakeHidDevice | None = None

    def enumerate(self, vendor_id=0, product_id=0):
        return list(self.devices)

    def device(self):
        self.last_device = FakeHidDevice(self)
        return self.last_device
