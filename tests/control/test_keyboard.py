"""The keyboard: the pure state machine on recorded key events, then the same recording through
real pygame (SDL dummy video driver, posted events)."""

import pytest

from hiljax.control.keyboard import WINDOW_CAPTION, KeyboardController, describe_keymap
from hiljax.control.keymap import (
    DEFAULT_KEYMAP,
    KEYBOARD_EE_KEYMAP,
    KeyboardState,
    KeyEvent,
    apply_events,
    keyboard_commands,
)
from hiljax.control.mapping import MappingConfig
from tests.control.fakes import assert_commands, assert_controller, load_fixture

pygame = pytest.importorskip("pygame")

FIXTURE = load_fixture("keyboard_events.json")
SEQUENCES = FIXTURE["sequences"]
KEYMAPS = {"default": DEFAULT_KEYMAP, "keyboard_ee": KEYBOARD_EE_KEYMAP}


def _events(step):
    return [KeyEvent(*event) for event in step["events"]]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["name"] for s in SEQUENCES])
def test_recorded_key_events_map_to_the_expected_commands(sequence):
    keymap = KEYMAPS[sequence["keymap"]]
    config = MappingConfig(**FIXTURE["config"])
    state = KeyboardState()
    for step in sequence["steps"]:
        state = apply_events(state, _events(step), keymap)
        assert_commands(keyboard_commands(state, config, keymap), step["expect"])
        state = state.consumed()


def _post(event: KeyEvent) -> None:
    if event.kind == "down":
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(event.key)))
    elif event.kind == "up":
        pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.key.key_code(event.key)))
    elif event.kind == "release_all":
        pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    else:
        pygame.event.post(pygame.event.Event(pygame.QUIT))


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["name"] for s in SEQUENCES])
def test_keyboard_controller_reads_real_pygame_events(sequence):
    steps = FIXTURE["config"]
    with KeyboardController(**steps, keymap=KEYMAPS[sequence["keymap"]]) as controller:
        for step in sequence["steps"]:
            for event in _events(step):
                _post(event)
            controller.update()
            assert_controller(controller, step["expect"])


def test_start_opens_a_window_and_stop_closes_it():
    controller = KeyboardController()
    controller.start()
    controller.start()  # idempotent
    assert pygame.display.get_surface() is not None
    assert pygame.display.get_caption()[0] == WINDOW_CAPTION
    controller.stop()
    assert not pygame.display.get_init()


def test_an_existing_display_is_reused_and_left_open():
    pygame.display.init()
    surface = pygame.display.set_mode((64, 48))
    try:
        with KeyboardController() as controller:
            assert pygame.display.get_surface() is surface
            _post(KeyEvent("down", "i"))
            controller.update()
            assert controller.should_intervene()
        assert pygame.display.get_init()
    finally:
        pygame.display.quit()


def test_update_before_start_says_so():
    with pytest.raises(RuntimeError, match="start"):
        KeyboardController().update()


def test_help_lists_every_key():
    lines = describe_keymap(DEFAULT_KEYMAP)
    for expected in (
        "up: +x",
        "left shift: -z",
        "right shift: +z",
        "i: toggle intervention",
        "s: end episode (success)",
        "right ctrl: open gripper (hold)",
        "escape: quit",
    ):
        assert expected in lines
