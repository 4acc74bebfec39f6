"""GamepadController: a pad read through pygame's joystick API (the reference's Linux path).

The device layer only reads: axes and buttons are polled every `update()`, button presses also
come from JOYBUTTONDOWN events so a tap shorter than a control step is not missed. Everything
else is `mapping.gamepad_commands`. A joystick-like object (get_name / get_numaxes / get_axis /
get_numbuttons / get_button) can be injected, which is how the tests drive it without a pad.
"""

from __future__ import annotations

import logging

from hiljax.control._pygame import import_pygame
from hiljax.control.base import DeviceNotFoundError, InputController
from hiljax.control.mapping import (
    PYGAME_LAYOUTS,
    Commands,
    GamepadLayout,
    MappingConfig,
    gamepad_commands,
    layout_for_joystick_name,
    rising_edges,
)

logger = logging.getLogger(__name__)

GAMEPAD_HELP = (
    "left stick: move x/y; right stick up/down: move z; right stick left/right: wrist roll "
    "(when the env has a roll action); RB (hold): intervene; "
    "LT/RT (hold): close/open gripper; Y: success; A: failure; X: rerecord; B: quit"
)


def _ensure_event_queue():
    pygame = import_pygame()
    if not pygame.display.get_init():
        pygame.display.init()  # pygame's event queue lives in the video subsystem
    return pygame


def _open_pygame_joystick(index: int):
    pygame = _ensure_event_queue()
    pygame.joystick.init()
    count = pygame.joystick.get_count()
    if count <= index:
        raise DeviceNotFoundError(
            f"no gamepad at index {index} (pygame sees {count}). Connect a pad; on macOS, where "
            "pygame misses some pads, use GamepadControllerHID (pip install 'hiljax[hid]')."
        )
    joystick = pygame.joystick.Joystick(index)
    joystick.init()
    return joystick


def _resolve_layout(layout: GamepadLayout | str | None, joystick_name: str) -> GamepadLayout:
    if isinstance(layout, GamepadLayout):
        return layout
    if isinstance(layout, str):
        return PYGAME_LAYOUTS[layout]
    return layout_for_joystick_name(joystick_name)


class GamepadController(InputController):
    """End-effector control from a pad via pygame; `layout` defaults to a guess from its name."""

    def __init__(
        self,
        x_step_size: float = 1.0,
        y_step_size: float = 1.0,
        z_step_size: float = 1.0,
        deadzone: float = 0.1,
        layout: GamepadLayout | str | None = None,
        joystick=None,
        joystick_index: int = 0,
        read_events: bool | None = None,
        roll_step_size: float = 1.0,
    ):
        super().__init__(x_step_size, y_step_size, z_step_size, roll_step_size)
        self.deadzone = deadzone
        self.joystick = joystick
        self.joystick_index = joystick_index
        self._requested_layout = layout
        self.layout: GamepadLayout | None = None
        self._opened_by_us = False
        # JOYBUTTONDOWN events catch taps between two polls; on by default for a pygame pad,
        # optional for an injected one (tests post events to pygame's queue).
        self.read_events = joystick is None if read_events is None else read_events
        self._previous_buttons: list[int] = []

    def start(self) -> None:
        if self.layout is not None:
            return
        # pygame's event queue needs the video subsystem: whoever starts it closes it again.
        self._owns_display = not import_pygame().display.get_init()
        try:
            if self.joystick is None:
                self.joystick = _open_pygame_joystick(self.joystick_index)
                self._opened_by_us = True
            if self.read_events:
                _ensure_event_queue()
        except BaseException:
            self._quit_display()
            raise
        name = self.joystick.get_name()
        self.layout = _resolve_layout(self._requested_layout, name)
        # Buttons already held when we start are not presses (no episode ends on start-up).
        self._previous_buttons = self._read_buttons()
        logger.info("gamepad %r, layout %s. Controls: %s", name, self.layout.name, GAMEPAD_HELP)

    def stop(self) -> None:
        if self._opened_by_us and self.joystick is not None:
            self.joystick.quit()
            self.joystick = None
            self._opened_by_us = False
        self.layout = None
        self._quit_display()

    def _quit_display(self) -> None:
        if getattr(self, "_owns_display", False):
            import_pygame().display.quit()
            self._owns_display = False

    def update(self) -> None:
        if self.layout is None:
            raise RuntimeError("GamepadController.update() before start() (or use `with`)")
        try:
            tapped = self._buttons_pressed_by_events()
            axes = [self.joystick.get_axis(i) for i in range(self.joystick.get_numaxes())]
            buttons = self._read_buttons()
        except import_pygame().error as error:  # the pad went away mid-session
            logger.error("error reading the gamepad (%s); is it still connected?", error)
            self._apply_commands(Commands())  # no motion, no intervention
            return
        newly_pressed = rising_edges(self._previous_buttons, buttons) | tapped
        self._previous_buttons = buttons
        config = MappingConfig(self.x_step_size, self.y_step_size, self.z_step_size, self.deadzone,
                               self.roll_step_size)
        self._apply_commands(gamepad_commands(axes, buttons, self.layout, config, newly_pressed))

    def _read_buttons(self) -> list[int]:
        return [self.joystick.get_button(i) for i in range(self.joystick.get_numbuttons())]

    def _buttons_pressed_by_events(self) -> frozenset[int]:
        if not self.read_events:
            return frozenset()
        pygame = import_pygame()
        own_id = self.joystick.get_instance_id()
        events = pygame.event.get(
            (pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP, pygame.JOYAXISMOTION, pygame.JOYHATMOTION)
        )
        return frozenset(
            e.button
            for e in events
            if e.type == pygame.JOYBUTTONDOWN and getattr(e, "instance_id", own_id) == own_id
        )
