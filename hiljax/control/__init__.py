"""Human input for end-effector control: keyboard, gamepad (pygame or raw HID), a leader arm, a
scripted stand-in, and the teleoperation loop. numpy + pygame (+ optional hidapi); no JAX.

    from hiljax.control import KeyboardController, teleoperate_gym_env
    with KeyboardController() as controller:
        controller.update()
        dx, dy, dz = controller.get_deltas()

The mapping from raw device state to commands lives in pure functions (`mapping`, `keymap`,
`hid_reports`); the device classes only read the device.
"""

from __future__ import annotations

import sys

from hiljax.control.base import (
    EPISODE_END_STATUSES,
    FAILURE,
    GRIPPER_CLOSE,
    GRIPPER_COMMAND_VALUES,
    GRIPPER_OPEN,
    GRIPPER_STAY,
    RERECORD,
    SUCCESS,
    DeviceNotFoundError,
    InputController,
    gripper_value,
)
from hiljax.control.gamepad import GamepadController
from hiljax.control.gamepad_hid import GamepadControllerHID
from hiljax.control.hid_reports import HID_LAYOUTS, HidLayout, parse_hid_report
from hiljax.control.keyboard import KeyboardController
from hiljax.control.keymap import (
    DEFAULT_KEYMAP,
    KEYBOARD_EE_KEYMAP,
    KeyboardState,
    KeyEvent,
    KeyMap,
)
from hiljax.control.leader import (
    INTERVENTION_KEY_MODES,
    LEADER_CONTROL_MODES,
    LEADER_KEYMAP,
    LeaderArmController,
    LeaderSettings,
    leader_arm,
    leader_gripper_command,
    leader_keymap,
    make_leader_controller,
)
from hiljax.control.mapping import (
    PYGAME_LAYOUTS,
    Commands,
    GamepadLayout,
    MappingConfig,
    PadState,
    gamepad_commands,
    pad_commands,
)
from hiljax.control.scripted import ScriptedController
from hiljax.control.teleop import EpisodeInfo, StepRecord, teleoperate_gym_env

CONTROL_MODES = ("keyboard", "gamepad", "gamepad_hid")


def make_controller(control_mode: str, **kwargs) -> InputController:
    """The controller for a config's `control_mode`. "gamepad" reads raw HID on macOS, where
    pygame misses some pads, and pygame elsewhere - the reference's choice."""
    if control_mode == "keyboard":
        return KeyboardController(**kwargs)
    if control_mode == "gamepad_hid" or (control_mode == "gamepad" and sys.platform == "darwin"):
        return GamepadControllerHID(**kwargs)
    if control_mode == "gamepad":
        return GamepadController(**kwargs)
    raise ValueError(f"unknown control_mode {control_mode!r}; expected one of {CONTROL_MODES}")


__all__ = [
    "CONTROL_MODES",
    "DEFAULT_KEYMAP",
    "EPISODE_END_STATUSES",
    "FAILURE",
    "GRIPPER_CLOSE",
    "GRIPPER_COMMAND_VALUES",
    "GRIPPER_OPEN",
    "GRIPPER_STAY",
    "HID_LAYOUTS",
    "INTERVENTION_KEY_MODES",
    "KEYBOARD_EE_KEYMAP",
    "LEADER_CONTROL_MODES",
    "LEADER_KEYMAP",
    "PYGAME_LAYOUTS",
    "RERECORD",
    "SUCCESS",
    "Commands",
    "DeviceNotFoundError",
    "EpisodeInfo",
    "GamepadController",
    "GamepadControllerHID",
    "GamepadLayout",
    "HidLayout",
    "InputController",
    "KeyEvent",
    "KeyMap",
    "KeyboardController",
    "KeyboardState",
    "LeaderArmController",
    "LeaderSettings",
    "MappingConfig",
    "PadState",
    "ScriptedController",
    "StepRecord",
    "gamepad_commands",
    "gripper_value",
    "leader_arm",
    "leader_gripper_command",
    "leader_keymap",
    "make_controller",
    "make_leader_controller",
    "pad_commands",
    "parse_hid_report",
    "teleoperate_gym_env",
]
