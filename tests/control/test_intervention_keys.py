"""Take-over keys: "toggle" (a press starts, the next ends) or "hold" (KEYDOWN starts, KEYUP
ends: a USB foot pedal sending a key), through the pure key state, real pygame events, the
leader's settings and the env config's teleop block; and the Koch leader in that config."""

import dataclasses

import pytest

from hiljax.config import ConfigError, from_dict, to_dict
from hiljax.control import InputController
from hiljax.control.keyboard import KeyboardController, describe_keymap
from hiljax.control.keymap import KeyboardState, KeyEvent, KeyMap, apply_events, keyboard_commands
from hiljax.control.leader import (
    LEADER_KEYMAP,
    LeaderArmController,
    LeaderSettings,
    leader_keymap,
    make_leader_controller,
)
from hiljax.control.mapping import MappingConfig
from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig, TeleopConfig
from hiljax.envs.factory import make_leader
from hiljax.hardware.motors.calibration import NormMode
from hiljax.hardware.robots import ServoArmConfig
from hiljax.kinematics import RobotKinematics

pygame = pytest.importorskip("pygame")

PEDAL_MAP = leader_keymap(("page down",), "hold")
CONFIG = MappingConfig(1.0, 1.0, 1.0)


def intervening_after(events_per_step, keymap=PEDAL_MAP) -> list[bool]:
    state, seen = KeyboardState(), []
    for events in events_per_step:
        state = apply_events(state, [KeyEvent(*e) for e in events], keymap)
        seen.append(keyboard_commands(state, CONFIG, keymap).intervene)
        state = state.consumed()
    return seen


def test_a_held_key_intervenes_until_it_is_released():
    assert intervening_after([
        [("down", "page down")],
        [],  # held: no events, still intervening
        [("down", "page down")],  # auto-repeat changes nothing
        [("up", "page down")],
        [],
        [("down", "page down")],
        [("release_all",)],  # the window lost focus: its key-up will never come
        [("down", "page down"), ("up", "page down")],  # a tap inside one step is no take-over
    ]) == [True, True, True, False, False, True, False, False]


def test_toggle_keys_still_toggle_and_the_two_kinds_mix():
    both = dataclasses.replace(KeyMap(moves={}), hold_intervention=frozenset({"b"}))
    assert intervening_after([
        [("down", "i"), ("up", "i")],  # toggled on
        [("down", "b")], [("up", "b")],  # a hold inside a toggled take-over ends nothing
        [("down", "i"), ("up", "i")],  # toggled off
        [("down", "b")], [("up", "b")],
    ], both) == [True, True, True, False, True, False]
    assert intervening_after([[("down", "space"), ("up", "space")], []], LEADER_KEYMAP) == [
        True, True]


def _post(kind, key):
    pygame.event.post(pygame.event.Event(kind, key=pygame.key.key_code(key)))


def test_the_keyboard_controller_holds_through_real_pygame_events():
    with KeyboardController(keymap=PEDAL_MAP) as controller:
        pygame.event.clear()
        _post(pygame.KEYDOWN, "page down")
        controller.update()
        assert controller.should_intervene()
        controller.update()
        assert controller.should_intervene()  # no key-up yet
        _post(pygame.KEYUP, "page down")
        controller.update()
        assert not controller.should_intervene()
        _post(pygame.KEYDOWN, "space")  # not a take-over key here
        controller.update()
        assert not controller.should_intervene()
    assert "page down: intervene while held" in describe_keymap(PEDAL_MAP)


@pytest.mark.parametrize("key, message", [("pedal", "unknown key name 'pedal'"),
                                          ("pagedown", "spelt 'page down'")])
def test_a_misspelt_key_is_refused_at_start_and_leaves_no_window(key, message):
    controller = KeyboardController(keymap=leader_keymap((key,), "hold"))
    with pytest.raises(ValueError, match=message):
        controller.start()
    assert not pygame.display.get_init()


def test_leader_keymaps_and_what_they_refuse():
    assert LEADER_KEYMAP == leader_keymap()  # toggle, space and i: unchanged for existing users
    assert LEADER_KEYMAP.toggle_intervention == {"space", "i"}
    assert not LEADER_KEYMAP.hold_intervention and not LEADER_KEYMAP.moves
    assert PEDAL_MAP.hold_intervention == {"page down"} and not PEDAL_MAP.toggle_intervention
    for keys, mode, message in [((), "hold", "at least one"), (("s",), "hold", "end an episode"),
                                (("escape",), "toggle", "quit"), (("b",), "press", "one of")]:
        with pytest.raises(ValueError, match=message):
            leader_keymap(keys, mode)
    with pytest.raises(ValueError, match="intervention_key_mode"):
        LeaderSettings(intervention_key_mode="momentary")


def test_the_leader_controller_builds_its_keyboard_from_the_settings():
    settings = LeaderSettings(intervention_key_mode="hold", intervention_keys=("b",))
    controller = LeaderArmController(None, RobotKinematics("so100"), (0.02,) * 3,
                                     settings=settings)
    assert controller.events.keymap == leader_keymap(("b",), "hold")
    own = InputController()
    assert LeaderArmController(None, RobotKinematics("so100"), (0.02,) * 3, events=own,
                               settings=settings).events is own


# --------------------------------------------------------------------------- the env config
def real(robot_type: str, **fields) -> RobotConfig:
    return RobotConfig(type=robot_type, port="/dev/ttyACM0", cameras=(), **fields)


def leader_env(robot_type: str, teleop_type: str, **teleop) -> HILSerlRobotEnvConfig:
    return from_dict(HILSerlRobotEnvConfig, {
        "robot": to_dict(real(robot_type)),
        "teleop": {"type": teleop_type, "port": "/dev/ttyACM1", "id": "lead", **teleop},
        "wrapper": {"ee_action_space_params": {"control_mode": "leader"}}})


def test_the_teleop_block_takes_the_koch_leader_and_pedal_keys_and_round_trips():
    cfg = leader_env("koch", "koch_leader", intervention_key_mode="hold",
                     intervention_keys=["page down"])
    assert cfg.teleop.intervention_keys == ("page down",)
    assert from_dict(HILSerlRobotEnvConfig, to_dict(cfg)) == cfg
    defaults = TeleopConfig(port="/dev/ttyACM1")
    assert (defaults.intervention_key_mode, defaults.intervention_keys) == ("toggle",
                                                                            ("space", "i"))
    # The factory hands the teleop block's settings to the leader's controller.
    controller = make_leader(cfg)
    assert controller.events.keymap == leader_keymap(("page down",), "hold")
    assert controller.kinematics.robot_type == "koch"
    modes = [m.norm_mode for m in controller.leader.bus.motors.values()]
    assert modes == [NormMode.DEGREES] * 5 + [NormMode.RANGE_0_100]


@pytest.mark.parametrize("robot_type, teleop_type", [("koch", "so101_leader"),
                                                     ("so101", "koch_leader"),
                                                     ("moss", "koch_leader")])
def test_a_leader_of_another_arm_is_refused(robot_type, teleop_type):
    with pytest.raises(ConfigError, match="teleop.type must be one of .* for robot.type"):
        leader_env(robot_type, teleop_type)
    with pytest.raises(ValueError, match="drives"):
        make_leader_controller(ServoArmConfig(type=teleop_type, port="/dev/null"),
                               step_sizes=(0.02,) * 3, kinematics=real(robot_type).kinematics_table,
                               events=InputController())


@pytest.mark.parametrize("fields, message", [
    ({"intervention_key_mode": "momentary"}, "intervention_key_mode"),
    ({"intervention_keys": []}, "at least one key"),
    ({"intervention_keys": ["b", "s"]}, "already end an episode"),
    ({"type": "koch_follower"}, "teleop.type"),
])
def test_bad_teleop_fields_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        TeleopConfig(port="/dev/ttyACM1", **fields)
