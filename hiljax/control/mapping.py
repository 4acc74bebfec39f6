"""Pure functions from raw gamepad state to commands. No device, no pygame, no clock.

The pipeline for a pad is: raw device state (pygame axes/buttons, or a HID report parsed by
`hid_reports.parse_hid_report`) -> `PadState` (named, device independent) -> `pad_commands`.

The button roles (reference_facts section 4, LeRobot's `GamepadController`):
    left stick up/down -> +x/-x     left stick left/right -> +y/-y     right stick up/down -> +z/-z
    right stick right/left -> +roll/-roll (hiljax: the wrist roll of an env with a roll action;
                              +roll turns a gripper pointing down clockwise, seen from above)
    RB held -> intervene    Y -> success    A -> failure    X -> rerecord
    LT held -> close gripper    RT held -> open gripper (both or neither: stay)
    B -> quit (the reference prints "B/Circle: Exit" but never wires it; we do)
Stick signs: a stick pushed up reads negative (SDL and HID alike), hence dx = -left_y etc.
Values inside the deadzone (|v| < 0.1) read as 0, not rescaled, as the reference does.

PlayStation names map onto the Xbox ones: cross = a, circle = b, square = x, triangle = y,
L1/R1 = lb/rb, L2/R2 = lt/rt. Logitech pads in DirectInput mode label their buttons like Xbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Episode-end statuses (re-exported by base.py).
SUCCESS = "success"
FAILURE = "failure"
RERECORD = "rerecord"

# Which pressed button ends the episode how; earlier entries win when several arrive together
# (the order of the reference's HID parser).
EPISODE_END_BUTTONS = (("y", SUCCESS), ("a", FAILURE), ("x", RERECORD))
PAD_BUTTONS = ("a", "b", "x", "y", "lb", "rb", "lt", "rt")


@dataclass(frozen=True)
class Commands:
    """What a person asks for during one control step."""

    deltas: tuple[float, float, float] = (0.0, 0.0, 0.0)  # scaled by the step sizes
    intervene: bool = False
    gripper: str = "stay"  # "close" | "stay" | "open"
    episode_end: str | None = None  # newly requested this step: success | failure | rerecord
    quit: bool = False
    # hiljax: the wrist roll, scaled by roll_step_size; read by envs with a roll action (last,
    # so positional uses of the fields above keep their meaning).
    roll: float = 0.0


@dataclass(frozen=True)
class MappingConfig:
    """Scales of the mapping; the step sizes keep the reference's names."""

    x_step_size: float = 1.0
    y_step_size: float = 1.0
    z_step_size: float = 1.0
    deadzone: float = 0.1  # |stick| below this reads 0 (stick drift)
    roll_step_size: float = 1.0  # hiljax: the wrist roll's scale (1.0: the normalised action)


@dataclass(frozen=True)
class PadState:
    """A gamepad at one instant: sticks in [-1, 1] (up/left negative) and held button names."""

    left_x: float = 0.0
    left_y: float = 0.0
    right_x: float = 0.0
    right_y: float = 0.0
    pressed: frozenset[str] = frozenset()


def apply_deadzone(value: float, deadzone: float) -> float:
    return 0.0 if abs(value) < deadzone else float(value)


def _scaled_negation(value: float, step: float) -> float:
    # 0.0 - x rather than -x so a centred stick gives 0.0, not -0.0, in logs and fixtures.
    return 0.0 - value * step


def gripper_from_buttons(close_held: bool, open_held: bool) -> str:
    if close_held == open_held:
        return "stay"
    return "close" if close_held else "open"


def episode_end_from_buttons(newly_pressed: Iterable[str]) -> str | None:
    newly_pressed = frozenset(newly_pressed)
    for button, status in EPISODE_END_BUTTONS:
        if button in newly_pressed:
            return status
    return None


def pad_commands(state: PadState, newly_pressed: Iterable[str], config: MappingConfig) -> Commands:
    """Commands for one step. `newly_pressed` holds the buttons pressed since the last step, so a
    held success button ends one episode, not every episode after it."""
    newly_pressed = frozenset(newly_pressed)
    left_x = apply_deadzone(state.left_x, config.deadzone)
    left_y = apply_deadzone(state.left_y, config.deadzone)
    right_x = apply_deadzone(state.right_x, config.deadzone)
    right_y = apply_deadzone(state.right_y, config.deadzone)
    deltas = (
        _scaled_negation(left_y, config.x_step_size),  # stick forward -> +x
        _scaled_negation(left_x, config.y_step_size),  # stick left -> +y
        _scaled_negation(right_y, config.z_step_size),  # right stick up -> +z
    )
    return Commands(
        deltas=deltas,
        roll=right_x * config.roll_step_size + 0.0,  # stick right -> +roll (clockwise from above)
        intervene="rb" in state.pressed,
        gripper=gripper_from_buttons("lt" in state.pressed, "rt" in state.pressed),
        episode_end=episode_end_from_buttons(newly_pressed),
        quit="b" in newly_pressed,
    )


def rising_edges(previous: Sequence, current: Sequence) -> frozenset[int]:
    """Indices held in `current` but not in `previous` (a shorter `previous` reads as released)."""
    return frozenset(
        i for i, held in enumerate(current) if held and not (i < len(previous) and previous[i])
    )


# --- pygame joysticks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GamepadLayout:
    """Where a pad's sticks and buttons appear in pygame's joystick API (SDL joystick indices)."""

    name: str
    axes: Mapping[str, int]  # left_x / left_y / right_x / right_y -> axis index
    buttons: Mapping[str, int]  # pad button name -> button index
    trigger_axes: Mapping[str, int] = field(default_factory=dict)  # lt/rt read from an axis
    trigger_threshold: float = 0.5  # analog trigger axes rest at -1 (or 0) and reach +1


# The reference's indices (LeRobot GamepadController): axes 0/1 left stick, 3 right stick Y;
# buttons X=0 A=1 B=2 Y=3 LB=4 RB=5 LT=6 RT=7 - a Logitech F310/F710 in DirectInput (D) mode.
LOGITECH_DINPUT = GamepadLayout(
    name="logitech_dinput",
    axes={"left_x": 0, "left_y": 1, "right_x": 2, "right_y": 3},
    buttons={"x": 0, "a": 1, "b": 2, "y": 3, "lb": 4, "rb": 5, "lt": 6, "rt": 7},
)
# The others are from pygame 2's documentation ("Common Controller Axis Mappings").
XBOX = GamepadLayout(  # "Xbox 360 Controller" (also a Logitech pad in XInput (X) mode)
    name="xbox",
    axes={"left_x": 0, "left_y": 1, "right_x": 3, "right_y": 4},
    buttons={"a": 0, "b": 1, "x": 2, "y": 3, "lb": 4, "rb": 5},
    trigger_axes={"lt": 2, "rt": 5},
)
PS4 = GamepadLayout(  # "PS4 Controller"
    name="ps4",
    axes={"left_x": 0, "left_y": 1, "right_x": 2, "right_y": 3},
    buttons={"a": 0, "b": 1, "x": 2, "y": 3, "lb": 9, "rb": 10},
    trigger_axes={"lt": 4, "rt": 5},
)
PS5 = GamepadLayout(  # "Sony Interactive Entertainment Wireless Controller" (DualSense)
    name="ps5",
    axes={"left_x": 0, "left_y": 1, "right_x": 3, "right_y": 4},
    buttons={"a": 0, "b": 1, "x": 2, "y": 3, "lb": 4, "rb": 5, "lt": 6, "rt": 7},
)
PYGAME_LAYOUTS = {layout.name: layout for layout in (LOGITECH_DINPUT, XBOX, PS4, PS5)}


def layout_for_joystick_name(joystick_name: str) -> GamepadLayout:
    """Guess the layout from pygame's joystick name; anything unknown gets the reference's."""
    name = joystick_name.lower()
    if "xbox" in name or "x-box" in name:
        return XBOX
    if "ps4" in name:
        return PS4
    if "sony interactive entertainment wireless controller" in name or "dualsense" in name:
        return PS5
    return LOGITECH_DINPUT


def _axis(axes: Sequence[float], index: int) -> float:
    return float(axes[index]) if index < len(axes) else 0.0


def pygame_pad_state(axes: Sequence[float], buttons: Sequence, layout: GamepadLayout) -> PadState:
    """Name the raw pygame readings (`joystick.get_axis(i)` / `get_button(i)` lists)."""
    pressed = {name for name, i in layout.buttons.items() if i < len(buttons) and buttons[i]}
    pressed |= {
        name for name, i in layout.trigger_axes.items() if _axis(axes, i) > layout.trigger_threshold
    }
    return PadState(
        left_x=_axis(axes, layout.axes["left_x"]),
        left_y=_axis(axes, layout.axes["left_y"]),
        right_x=_axis(axes, layout.axes["right_x"]),
        right_y=_axis(axes, layout.axes["right_y"]),
        pressed=frozenset(pressed),
    )


def button_names(indices: Iterable[int], layout: GamepadLayout) -> frozenset[str]:
    by_index = {i: name for name, i in layout.buttons.items()}
    return frozenset(by_index[i] for i in indices if i in by_index)


def gamepad_commands(
    axes: Sequence[float],
    buttons: Sequence,
    layout: GamepadLayout,
    config: MappingConfig,
    newly_pressed: Iterable[int] = (),
) -> Commands:
    """Commands from pygame joystick readings; `newly_pressed` are button indices pressed since
    the previous step (from `rising_edges` and/or JOYBUTTONDOWN events)."""
    state = pygame_pad_state(axes, buttons, layout)
    return pad_commands(state, button_names(newly_pressed, layout), config)
