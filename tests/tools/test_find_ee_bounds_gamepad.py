"""`python -m hiljax.find_ee_bounds --teleop gamepad`: the person drives a virtual SO-100's
gripper tip with a gamepad (the tests' fake joystick in GamepadController, as the gamepad tests
do) through the env's EE action path while the tool records; B stops. Every wait is on the
arm's state, never on time."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from hiljax.control import GamepadController
from hiljax.control.scripted import ScriptedController
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.find_ee_bounds import SAMPLE_HZ, main
from hiljax.hardware.robots import MOTOR_NAMES
from tests.control.fakes import FakeJoystick
from tests.tools.helpers import TIMEOUT_S, ToolSession
from tests.tools.test_find_ee_bounds import START, arm, assert_limp, config, tip  # noqa: F401

pytest.importorskip("pygame")

# The reference's pad (LOGITECH_DINPUT): axes 0/1 left stick x/y, 3 right stick y; a stick
# pushed up / left reads -1. Buttons B = 2, LT = 6, RT = 7.
NEUTRAL = [0.0, 0.0, 0.0, 0.0]
B, LT, RT = 2, 6, 7
MOVE = 0.03  # metres the person drives the tip along each axis


@pytest.fixture
def pad(monkeypatch):
    joystick = FakeJoystick("Logitech Gamepad F310", 4, 12)
    speeds = []

    def make_gamepad(speed):
        speeds.append(speed)
        return GamepadController(x_step_size=speed, y_step_size=speed, z_step_size=speed,
                                 roll_step_size=speed, joystick=joystick)

    monkeypatch.setattr("hiljax.find_ee_bounds.make_gamepad", make_gamepad)
    monkeypatch.setattr("hiljax.find_ee_bounds.REDRAW_EVERY_S", 0.02)
    monkeypatch.setattr("hiljax.find_ee_bounds.PLAIN_REDRAW_EVERY_S", 0.02)
    joystick.speeds = speeds
    return joystick


def hold_until(session: ToolSession, pad: FakeJoystick, follower, axes, buttons, reached,
               what: str) -> np.ndarray:
    """Hold the sticks / buttons until `reached(joints)` is true of the follower, let go, and
    wait until it stands still; returns its joints there."""
    pad.set(axes, buttons)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not reached(follower.joint_positions()):
            assert session._thread.is_alive(), f"the tool ended before {what}"
            assert time.monotonic() < deadline, f"the follower never got to {what}"
            time.sleep(0.01)
    finally:
        pad.set(NEUTRAL, [])
    before = follower.joint_positions()
    while True:  # settled: two reads a few control ticks apart agree
        time.sleep(0.1)
        now = follower.joint_positions()
        if np.abs(now - before).max() < 0.05:
            break
        before = now
    since = len(session.screen.text())  # two tables on: a tick has recorded it there
    session.wait_for(lambda screen: screen.count("shoulder_pan (deg)") >= 2, "two tables", since)
    return now


def test_the_gamepad_drives_the_tip_and_the_workspace_is_written(arm, config, pad):  # noqa: F811
    original = json.loads(config.read_text())
    session = ToolSession(main, ["--config", str(config), "--teleop", "gamepad",
                                 "--duration", "120", "--margin", "0.01", "--write"])
    try:
        session.expect("Drive the gripper tip with the gamepad")
        session.expect("current")  # the live table: recording
        start = tip(arm.joint_positions())
        # Left stick forward: +x, and only x (the EE path, not one joint).
        forward = hold_until(session, pad, arm, [0.0, -1.0, 0.0, 0.0], [],
                             lambda j: tip(j)[0] > start[0] + MOVE, "+x")
        assert np.abs(tip(forward)[1:] - start[1:]).max() < 0.005
        # Left stick right: -y; right stick up: +z.
        right = hold_until(session, pad, arm, [1.0, 0.0, 0.0, 0.0], [],
                           lambda j: tip(j)[1] < tip(forward)[1] - MOVE, "-y")
        up = hold_until(session, pad, arm, [0.0, 0.0, 0.0, -1.0], [],
                        lambda j: tip(j)[2] > tip(right)[2] + MOVE, "+z")
        # RT opens the gripper, LT closes it.
        hold_until(session, pad, arm, NEUTRAL, [RT], lambda j: j[5] > 95.0, "open gripper")
        closed = hold_until(session, pad, arm, NEUTRAL, [LT], lambda j: j[5] < 5.0,
                            "closed gripper")
        pad.set(NEUTRAL, [B])  # B stops, as ENTER
        assert session.finish() == 0
    finally:
        pad.set(NEUTRAL, [])
        session.abandon()
    assert pad.speeds == [pytest.approx(original["fps"] / SAMPLE_HZ)]  # the env's tip speed
    assert_limp(arm)

    cfg = load_env_config(config)
    bounds = {k: np.asarray(v) for k, v in cfg.wrapper.ee_action_space_params.bounds.items()}
    visited = np.stack([start, tip(forward), tip(right), tip(up), tip(closed)])
    assert np.all(bounds["min"] <= visited.min(0) - 0.01 + 1e-3)
    assert np.all(bounds["max"] >= visited.max(0) + 0.01 - 1e-3)
    limits = cfg.robot.joint_limits
    assert limits["gripper"][0] < 5.0 and limits["gripper"][1] > 95.0
    assert set(limits) <= set(MOTOR_NAMES) and "wrist_roll" not in limits  # never turned
    assert "Wrote wrapper.ee_action_space_params.bounds and robot.joint_limits" in \
        session.screen.text()
    env = make_robot_env(cfg, controller=ScriptedController(lambda *_: (0, 0, 0),
                                                            lambda *_: (0, 0, 0)))
    env.close()
    assert_limp(arm)


def test_no_gamepad_is_a_hardware_failure_and_the_arm_is_never_moved(arm, config,  # noqa: F811
                                                                      monkeypatch, caplog):
    from hiljax.control import DeviceNotFoundError

    def no_pad(speed):
        raise DeviceNotFoundError("no gamepad at index 0 (pygame sees 0)")

    monkeypatch.setattr("hiljax.find_ee_bounds.make_gamepad", no_pad)
    before = config.read_text()
    assert main(["--config", str(config), "--teleop", "gamepad", "--duration", "1",
                 "--write"]) == 1
    assert "no gamepad" in caplog.text
    assert config.read_text() == before
    np.testing.assert_allclose(arm.joint_positions(), START, atol=0.1)
    assert_limp(arm)
