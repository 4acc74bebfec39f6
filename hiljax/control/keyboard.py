"""KeyboardController: the keys of `keymap.py`, read from pygame key events.

pygame only delivers key events to a focused pygame window, so `start()` opens a small one unless
the program already has a display surface (e.g. a camera viewer); keep it focused while
teleoperating. LeRobot reads the keyboard with pynput instead; pygame is already a dependency
here, works the same on Linux, macOS and Windows, and can be driven headless (SDL's dummy video
driver plus posted events) in tests.
"""

from __future__ import annotations

import logging

from hiljax.control._pygame import import_pygame
from hiljax.control.base import InputController
from hiljax.control.keymap import (
    AXIS_NAMES,
    DEFAULT_KEYMAP,
    DOWN,
    QUIT,
    RELEASE_ALL,
    UP,
    KeyboardState,
    KeyEvent,
    KeyMap,
    apply_events,
    keyboard_commands,
)
from hiljax.control.mapping import MappingConfig

logger = logging.getLogger(__name__)

WINDOW_CAPTION = "hiljax teleop - keep this window focused"


def key_event_from_pygame(event, pygame) -> KeyEvent | None:
    """The `KeyEvent` for one pygame event, or None for events the keyboard ignores."""
    if event.type == pygame.KEYDOWN:
        return KeyEvent(DOWN, pygame.key.name(event.key))
    if event.type == pygame.KEYUP:
        return KeyEvent(UP, pygame.key.name(event.key))
    if event.type == pygame.WINDOWFOCUSLOST:
        return KeyEvent(RELEASE_ALL)  # key-up events of held keys go to the new focus
    if event.type == pygame.QUIT:
        return KeyEvent(QUIT)
    return None


def keymap_keys(keymap: KeyMap) -> set[str]:
    """Every key name the map uses."""
    return {*keymap.moves, *keymap.gripper, *keymap.toggle_intervention,
            *keymap.hold_intervention, *keymap.episode_end, *keymap.quit}


def check_key_names(keymap: KeyMap, pygame) -> None:
    """Every key of the map as pygame spells it (events are matched by that spelling), so a
    misspelt key - a foot pedal's configured in a config file - fails here, not silently."""
    for key in sorted(keymap_keys(keymap)):
        try:
            spelling = pygame.key.name(pygame.key.key_code(key))
        except ValueError:
            raise ValueError(f"unknown key name {key!r}: use pygame's key names (e.g. "
                             "'space', 'page down', 'f13', 'b')") from None
        if spelling != key:
            raise ValueError(f"key {key!r} is spelt {spelling!r} by pygame: use that")


def describe_keymap(keymap: KeyMap) -> list[str]:
    """Human-readable help lines, built from the map so the help never drifts from the keys."""
    lines = [
        f"{key}: {'+' if sign > 0 else '-'}{AXIS_NAMES[axis]}"
        for key, (axis, sign) in keymap.moves.items()
    ]
    lines += [f"{key}: {action} gripper (hold)" for key, action in keymap.gripper.items()]
    lines += [f"{key}: toggle intervention" for key in sorted(keymap.toggle_intervention)]
    lines += [f"{key}: intervene while held" for key in sorted(keymap.hold_intervention)]
    lines += [f"{key}: end episode ({status})" for key, status in keymap.episode_end.items()]
    lines += [f"{key}: quit" for key in sorted(keymap.quit)]
    return lines


class KeyboardController(InputController):
    """End-effector control from the keyboard (keys: `keymap.DEFAULT_KEYMAP`)."""

    def __init__(
        self,
        x_step_size: float = 1.0,
        y_step_size: float = 1.0,
        z_step_size: float = 1.0,
        keymap: KeyMap = DEFAULT_KEYMAP,
        window_size: tuple[int, int] = (480, 120),
        roll_step_size: float = 1.0,
    ):
        super().__init__(x_step_size, y_step_size, z_step_size, roll_step_size)
        self.keymap = keymap
        self.window_size = window_size
        self.key_state = KeyboardState()
        self._pygame = None
        self._owns_display = False

    def start(self) -> None:
        if self._pygame is not None:
            return
        pygame = import_pygame()
        if not pygame.display.get_init():
            pygame.display.init()
            self._owns_display = True
        self._pygame = pygame
        try:
            check_key_names(self.keymap, pygame)  # needs the display up (pygame warns else)
        except ValueError:
            self.stop()
            raise
        if pygame.display.get_surface() is None:
            pygame.display.set_mode(self.window_size)
            pygame.display.set_caption(WINDOW_CAPTION)
        logger.info("keyboard controls: %s", "; ".join(describe_keymap(self.keymap)))

    def stop(self) -> None:
        if self._pygame is not None and self._owns_display:
            self._pygame.display.quit()
        self._pygame = None
        self._owns_display = False

    def update(self) -> None:
        if self._pygame is None:
            raise RuntimeError("KeyboardController.update() before start() (or use `with`)")
        events = (key_event_from_pygame(e, self._pygame) for e in self._pygame.event.get())
        self.apply_key_events(e for e in events if e is not None)

    def apply_key_events(self, events) -> None:
        """Advance the key state by `events` and publish this step's commands."""
        self.key_state = apply_events(self.key_state, events, self.keymap)
        config = MappingConfig(self.x_step_size, self.y_step_size, self.z_step_size,
                               roll_step_size=self.roll_step_size)
        self._apply_commands(keyboard_commands(self.key_state, config, self.keymap))
        self.key_state = self.key_state.consumed()
