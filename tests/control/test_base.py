"""The shared interface: gripper convention, read-and-reset episode status, factory, imports."""

import subprocess
import sys

import pytest

from hiljax.control import (
    GRIPPER_COMMAND_VALUES,
    Commands,
    GamepadController,
    GamepadControllerHID,
    InputController,
    KeyboardController,
    gripper_value,
    make_controller,
)


def test_gripper_convention_is_close_0_stay_1_open_2():
    assert GRIPPER_COMMAND_VALUES == {"close": 0, "stay": 1, "open": 2}
    with pytest.raises(ValueError, match="no-op"):
        gripper_value("no-op")  # the old reference's spelling of "stay"


def test_the_base_controller_is_idle_and_status_is_read_once():
    controller = InputController()
    assert controller.get_deltas() == (0.0, 0.0, 0.0)
    assert controller.gripper_command() == "stay" and controller.gripper_action() == 1
    assert not controller.should_intervene() and not controller.should_quit()
    controller._apply_commands(Commands((0.1, 0, 0), True, "close", "failure"))
    controller._apply_commands(Commands())  # a later step without a request keeps the first
    assert controller.get_episode_end_status() == "failure"
    assert controller.get_episode_end_status() is None
    controller._apply_commands(Commands(episode_end="success"))
    controller.reset()
    assert controller.get_episode_end_status() is None


def test_both_gripper_buttons_mean_stay():
    controller = InputController()
    controller.open_gripper_command = controller.close_gripper_command = True
    assert controller.gripper_command() == "stay"
    controller.close_gripper_command = False
    assert controller.gripper_command() == "open" and controller.gripper_action() == 2


def test_context_manager_starts_and_stops():
    calls = []

    class Recording(InputController):
        def start(self):
            calls.append("start")

        def stop(self):
            calls.append("stop")

    with Recording() as controller:
        assert isinstance(controller, Recording)
    assert calls == ["start", "stop"]


def test_make_controller(monkeypatch):
    assert isinstance(make_controller("keyboard", x_step_size=0.5), KeyboardController)
    assert isinstance(make_controller("gamepad_hid"), GamepadControllerHID)
    monkeypatch.setattr(sys, "platform", "linux")
    assert isinstance(make_controller("gamepad", deadzone=0.2), GamepadController)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert isinstance(make_controller("gamepad"), GamepadControllerHID)
    with pytest.raises(ValueError, match="control_mode"):
        make_controller("spacemouse")


def test_importing_control_pulls_in_no_device_library_and_no_jax():
    code = (
        "import sys, hiljax.control; "
        "print(sorted(m for m in ('pygame', 'hid', 'jax') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
