"""Keyboard state as a pure state machine: key events in, commands out. No pygame here.

Keys are named as `pygame.key.name()` spells them ("up", "left shift", "i", "escape"), so a
recorded session is readable JSON. The default map (DEFAULT_KEYMAP), and where each key comes from:

    up / down             +x / -x     LeRobot InputController KeyboardController and gym-hil
    left / right          +y / -y     (the same signs as the gamepad's left stick)
    left shift            -z          both references: shift = z down,
    right shift           +z                           shift_r = z up
    q / e                 -roll / +roll   hiljax (envs with a roll action): turn the wrist
                          counter-clockwise / clockwise, seen from above a gripper pointing down
    left ctrl / right ctrl  close / open gripper while held   LeRobot `keyboard_ee` teleop
    i                     toggle intervention     LeRobot gym_manipulator KeyboardControlWrapper
                          (a map may instead name `hold_intervention` keys: intervene while
                          held, e.g. a USB foot pedal that sends a key)
    s / f / r             success / failure / rerecord (ends the episode)   same wrapper
    escape (or closing the window)   quit         LeRobot KeyboardController

LeRobot's later `keyboard_ee` teleop turns the arrows a quarter turn (up = -y, down = +y,
left = +x, right = -x); KEYBOARD_EE_KEYMAP reproduces it for setups calibrated that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hiljax.control.mapping import FAILURE, RERECORD, SUCCESS, Commands, MappingConfig

DOWN = "down"  # key pressed
UP = "up"  # key released
RELEASE_ALL = "release_all"  # the window lost focus: no more key-up events will come
QUIT = "quit"  # the window was closed
EVENT_KINDS = (DOWN, UP, RELEASE_ALL, QUIT)


@dataclass(frozen=True)
class KeyEvent:
    kind: str  # one of EVENT_KINDS
    key: str = ""  # pygame.key.name() spelling; empty for RELEASE_ALL / QUIT


@dataclass(frozen=True)
class KeyMap:
    # key -> (axis, sign +1/-1) while held; axis 0/1/2 is x/y/z, ROLL_AXIS the wrist roll.
    moves: Mapping[str, tuple[int, int]]
    gripper: Mapping[str, str] = field(
        default_factory=lambda: {"left ctrl": "close", "right ctrl": "open"}
    )
    toggle_intervention: frozenset[str] = frozenset({"i"})
    # Keys that intervene while held: KEYDOWN starts the intervention, KEYUP (or the window
    # losing focus) ends it - a foot pedal, or LeRobot's hold-to-intervene gamepad button.
    hold_intervention: frozenset[str] = frozenset()
    episode_end: Mapping[str, str] = field(
        default_factory=lambda: {"s": SUCCESS, "f": FAILURE, "r": RERECORD}
    )
    quit: frozenset[str] = frozenset({"escape"})


ROLL_AXIS = 3
AXIS_NAMES = ("x", "y", "z", "roll")
# q / e sit beside the keys a person's left hand rests on, and read as "turn left / right".
_SHIFT_Z_AND_ROLL = {"left shift": (2, -1), "right shift": (2, +1),
                     "q": (ROLL_AXIS, -1), "e": (ROLL_AXIS, +1)}
DEFAULT_KEYMAP = KeyMap(
    moves={"up": (0, +1), "down": (0, -1), "left": (1, +1), "right": (1, -1),
           **_SHIFT_Z_AND_ROLL}
)
KEYBOARD_EE_KEYMAP = KeyMap(
    moves={"up": (1, -1), "down": (1, +1), "left": (0, +1), "right": (0, -1),
           **_SHIFT_Z_AND_ROLL}
)


@dataclass(frozen=True)
class KeyboardState:
    held: frozenset[str] = frozenset()
    intervention: bool = False  # toggled, so it survives key releases and episodes
    episode_end: str | None = None  # requested since the commands were last taken
    quit: bool = False

    def apply(self, event: KeyEvent, keymap: KeyMap = DEFAULT_KEYMAP) -> KeyboardState:
        """The state after one event."""
        if event.kind == UP:
            return replace(self, held=self.held - {event.key})
        if event.kind == RELEASE_ALL:
            return replace(self, held=frozenset())
        if event.kind == QUIT:
            return replace(self, quit=True)
        if event.kind != DOWN:
            raise ValueError(f"unknown key event kind {event.kind!r}")
        if event.key in self.held:
            return self  # auto-repeat: a held key must not toggle again
        return replace(
            self,
            held=self.held | {event.key},
            intervention=self.intervention ^ (event.key in keymap.toggle_intervention),
            episode_end=keymap.episode_end.get(event.key, self.episode_end),
            quit=self.quit or event.key in keymap.quit,
        )

    def consumed(self) -> KeyboardState:
        """The state once its episode-end request has been handed on."""
        return replace(self, episode_end=None)


def apply_events(state: KeyboardState, events, keymap: KeyMap = DEFAULT_KEYMAP) -> KeyboardState:
    for event in events:
        state = state.apply(event, keymap)
    return state


def keyboard_commands(
    state: KeyboardState, config: MappingConfig, keymap: KeyMap = DEFAULT_KEYMAP
) -> Commands:
    """Commands for one step: opposite keys cancel; a held key moves one full step per control
    step, scaled by the step size (the reference's behaviour)."""
    direction = [0, 0, 0, 0]  # x, y, z, roll
    for key in state.held:
        if key in keymap.moves:
            axis, sign = keymap.moves[key]
            direction[axis] += sign
    steps = (config.x_step_size, config.y_step_size, config.z_step_size, config.roll_step_size)
    *deltas, roll = (float(max(-1, min(1, d))) * s + 0.0 for d, s in zip(direction, steps))
    gripper_held = {keymap.gripper[key] for key in state.held if key in keymap.gripper}
    gripper = "stay" if len(gripper_held) != 1 else next(iter(gripper_held))
    return Commands(
        deltas=tuple(deltas),
        roll=roll,
        intervene=state.intervention or bool(state.held & keymap.hold_intervention),
        gripper=gripper,
        episode_end=state.episode_end,
        quit=state.quit,
    )
