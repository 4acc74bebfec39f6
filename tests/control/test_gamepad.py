"""GamepadController: the thin pygame layer, with a fake joystick injected (no pad here)."""

import pytest

from hiljax.control import DeviceNotFoundError, GamepadController
from tests.control.fakes import FakeJoystick, assert_controller, load_fixture

pygame = pytest.importorskip("pygame")

FIXTURE = load_fixture("gamepad_pygame.json")
SEQUENCES = FIXTURE["sequences"]


def _controller(sequence, **kwargs):
    joystick = FakeJoystick(
        sequence["joystick_name"], len(sequence["frames"][0]["axes"]), sequence["num_buttons"]
    )
    config = FIXTURE["config"]
    return joystick, GamepadController(**config, joystick=joystick, **kwargs)


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["layout"] for s in SEQUENCES])
def test_controller_reports_the_recorded_frames(sequence):
    joystick, controller = _controller(sequence)
    with controller:
        assert controller.layout.name == sequence["layout"]  # picked from the pad's name
        for frame in sequence["frames"]:
            if frame.get("tapped"):
                continue  # needs the event queue: see the next test
            joystick.set(frame["axes"], frame["buttons"])
            controller.update()
            assert_controller(controller, frame["expect"])


def test_a_tap_between_polls_arrives_through_joybuttondown_events():
    sequence = SEQUENCES[0]
    _, controller = _controller(sequence, read_events=True)
    try:
        with controller:
            pygame.event.clear()
            # X (button 0) pressed and released before the poll; another pad's Y is ignored.
            pygame.event.post(pygame.event.Event(pygame.JOYBUTTONDOWN, button=0, instance_id=0))
            pygame.event.post(pygame.event.Event(pygame.JOYBUTTONUP, button=0, instance_id=0))
            pygame.event.post(pygame.event.Event(pygame.JOYBUTTONDOWN, button=3, instance_id=9))
            controller.update()
            assert controller.get_episode_end_status() == "rerecord"
            controller.update()
            assert controller.get_episode_end_status() is None
    finally:
        pygame.display.quit()


def test_a_button_held_at_start_is_not_a_press():
    sequence = SEQUENCES[0]
    joystick, controller = _controller(sequence)
    joystick.set([0, 0, 0, 0], [3])  # Y already down
    with controller:
        controller.update()
        assert controller.get_episode_end_status() is None


def test_a_request_waits_until_it_is_read():
    sequence = SEQUENCES[0]
    joystick, controller = _controller(sequence)
    with controller:
        joystick.set([0, 0, 0, 0], [3])
        controller.update()
        joystick.set([0, 0, 0, 0], [])
        controller.update()  # released before anyone read it (the reference lost it here)
        assert controller.get_episode_end_status() == "success"
        assert controller.get_episode_end_status() is None


def test_an_explicit_layout_wins_over_the_name():
    joystick = FakeJoystick("Xbox 360 Controller", 6, 11)
    with GamepadController(joystick=joystick, layout="logitech_dinput") as controller:
        assert controller.layout.name == "logitech_dinput"


def test_a_lost_pad_stops_all_motion():
    sequence = SEQUENCES[0]
    joystick, controller = _controller(sequence)
    with controller:
        joystick.set([0, -1.0, 0, 0], [5])
        controller.update()
        assert controller.should_intervene()
        joystick.fail = True
        controller.update()
        assert controller.get_deltas() == (0.0, 0.0, 0.0)
        assert not controller.should_intervene()


def test_no_pad_connected_is_a_clear_error():
    try:
        with pytest.raises(DeviceNotFoundError, match="no gamepad"):
            GamepadController(joystick_index=0).start()
    finally:
        pygame.joystick.quit()
        pygame.display.quit()


def test_update_before_start_says_so():
    with pytest.raises(RuntimeError, match="start"):
        GamepadController(joystick=FakeJoystick("pad", 4, 12)).update()
