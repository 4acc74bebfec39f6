"""The pure gamepad mapping, driven by the recorded pygame frames."""

import pytest

from hiljax.control.mapping import (
    PYGAME_LAYOUTS,
    MappingConfig,
    PadState,
    apply_deadzone,
    gamepad_commands,
    layout_for_joystick_name,
    pad_commands,
    rising_edges,
)
from tests.control.fakes import assert_commands, load_fixture

FIXTURE = load_fixture("gamepad_pygame.json")
SEQUENCES = FIXTURE["sequences"]


def _held(frame, num_buttons):
    return [int(i in frame["buttons"]) for i in range(num_buttons)]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["layout"] for s in SEQUENCES])
def test_recorded_pygame_frames_map_to_the_expected_commands(sequence):
    config = MappingConfig(**FIXTURE["config"])
    layout = PYGAME_LAYOUTS[sequence["layout"]]
    previous = []
    for frame in sequence["frames"]:
        buttons = _held(frame, sequence["num_buttons"])
        newly = rising_edges(previous, buttons) | frozenset(frame.get("tapped", []))
        assert_commands(
            gamepad_commands(frame["axes"], buttons, layout, config, newly), frame["expect"]
        )
        previous = buttons


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["layout"] for s in SEQUENCES])
def test_layout_is_recognised_from_the_joystick_name(sequence):
    assert layout_for_joystick_name(sequence["joystick_name"]).name == sequence["layout"]


def test_unknown_pads_get_the_reference_layout():
    assert layout_for_joystick_name("Generic USB Joystick").name == "logitech_dinput"


def test_rising_edges():
    assert rising_edges([], [0, 1, 1]) == {1, 2}
    assert rising_edges([0, 1, 1], [1, 1, 0]) == {0}
    assert rising_edges([1], [True, False, True]) == {2}


def test_deadzone_boundary_and_step_sizes_scale_each_axis():
    assert apply_deadzone(-0.0999, 0.1) == 0.0
    assert apply_deadzone(0.1, 0.1) == 0.1
    config = MappingConfig(x_step_size=2.0, y_step_size=3.0, z_step_size=5.0, deadzone=0.0)
    commands = pad_commands(PadState(left_x=0.5, left_y=0.5, right_y=0.5), (), config)
    assert commands.deltas == pytest.approx((-1.0, -1.5, -2.5))


def test_missing_axes_read_as_centred():
    commands = gamepad_commands([0.9], [], PYGAME_LAYOUTS["xbox"], MappingConfig())
    assert commands.deltas == (0.0, -0.9, 0.0)
    assert commands.gripper == "stay"
