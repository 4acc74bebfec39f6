"""Human intervention: the person's action replaces the policy's, the info keys survive the
whole stack (LeRobot #3227), episode-end requests, and the keyboard through real pygame."""

import numpy as np
import pytest

from hiljax.control import KeyboardController
from hiljax.envs.factory import make_robot_env
from hiljax.envs.wrappers import (
    BatchCompatibleWrapper,
    InterventionWrapper,
    KeyboardControlWrapper,
    KeyboardInterfaceWrapper,
)
from hiljax.kinematics import RobotKinematics
from tests.envs.helpers import fake_config, fixed_command_controller, replace_wrapper

KINEMATICS = RobotKinematics("so100")
POLICY_ACTION = np.array([-1.0, 0.0, 0.0, 1.0], np.float32)


def _tip(env):
    return KINEMATICS.fk_gripper_tip(env.unwrapped.robot.joints.astype(float))[:3, 3]


def _stack(controller, **wrapper_fields):
    return make_robot_env(fake_config(**wrapper_fields), controller=controller)


def test_the_human_action_replaces_the_policy_action_before_the_robot():
    env = _stack(fixed_command_controller(deltas=(0.0, 1.0, 0.0), gripper="close"))
    env.reset(seed=0)
    before = _tip(env)
    *_, info = env.step(POLICY_ACTION)
    moved = _tip(env) - before
    assert moved[1] == pytest.approx(0.02, abs=1e-3) and abs(moved[0]) < 1e-3  # not the policy's
    assert env.unwrapped.robot.targets[-1] == 0.0  # the person's "close"
    assert info["is_intervention"] is True
    np.testing.assert_array_equal(info["action_intervention"], [0.0, 1.0, 0.0, 0.0])
    assert info["action_intervention"].dtype == np.float32


def test_without_intervention_the_policy_acts_and_the_flag_is_false():
    env = _stack(fixed_command_controller(intervene=False))
    env.reset()
    before = _tip(env)
    *_, info = env.step(POLICY_ACTION)
    assert (_tip(env) - before)[0] == pytest.approx(-0.02, abs=1e-3)
    assert info["is_intervention"] is False
    np.testing.assert_array_equal(info["action_intervention"], POLICY_ACTION)


def test_regression_lerobot_3227_outer_wrappers_never_reset_the_intervention_flag():
    """LeRobot #3227: an env outside the intervention wrapper wrote `is_intervention = False`
    and interventions were silently lost. Every wrapper make_robot_env puts outside (reset,
    joint masking, batch) plus an extra one here must leave the flag and the action alone."""
    env = _stack(fixed_command_controller(deltas=(0.5, 0.0, 0.0), gripper="open"),
                 joint_masking_action_space=(True, True, True, True), batch_compatible=True)
    env = BatchCompatibleWrapper(env)
    _, reset_info = env.reset()
    assert reset_info["is_intervention"] is False
    for _ in range(3):
        *_, info = env.step(POLICY_ACTION)
        assert info["is_intervention"] is True
        np.testing.assert_array_equal(info["action_intervention"], [0.5, 0.0, 0.0, 2.0])


def test_masking_outside_cuts_the_stored_human_action_to_the_policy_dims():
    env = _stack(fixed_command_controller(deltas=(0.5, 0.25, 1.0), gripper="open"),
                 joint_masking_action_space=(True, True, False, True))
    env.reset()
    *_, info = env.step(np.zeros(3, np.float32))
    assert info["is_intervention"] is True
    np.testing.assert_array_equal(info["action_intervention"], [0.5, 0.25, 2.0])


@pytest.mark.parametrize("status, reward, terminated, truncated", [
    ("success", 1.0, True, False),
    ("failure", 0.0, True, False),
    ("rerecord", 0.0, False, True),
])
def test_episode_end_requests(status, reward, terminated, truncated):
    env = _stack(fixed_command_controller(done_fn=lambda step, obs: status if step == 1 else None))
    env.reset()
    first = env.step(POLICY_ACTION)
    assert first[2:4] == (False, False) and first[4]["episode_end"] is None
    _, got_reward, got_terminated, got_truncated, info = env.step(POLICY_ACTION)
    assert (got_reward, got_terminated, got_truncated) == (reward, terminated, truncated)
    assert info["episode_end"] == status
    assert info["next.success"] == (status == "success")
    assert info["rerecord_episode"] == (status == "rerecord")


def test_the_controller_is_reset_and_sees_observations():
    controller = fixed_command_controller()
    env = _stack(controller)
    observation, _ = env.reset()
    assert controller.observation is observation and controller.step == 0
    env.step(POLICY_ACTION)
    env.step(POLICY_ACTION)
    env.reset()
    assert controller.step == 0


def test_intervention_needs_an_ee_action_space():
    from hiljax.envs.env import HILSerlRobotEnv
    from hiljax.envs.fake_robot import FakeRobot

    with pytest.raises(ValueError, match="EE action space"):
        InterventionWrapper(HILSerlRobotEnv(FakeRobot(cameras=())), fixed_command_controller())


# --- the keyboard, through real pygame events (SDL dummy video driver) ------------------------
pygame = pytest.importorskip("pygame")


def _key(kind, name):
    pygame.event.post(pygame.event.Event(kind, key=pygame.key.key_code(name)))


def test_keyboard_intervention_with_real_pygame_events():
    assert KeyboardControlWrapper is KeyboardInterfaceWrapper
    cfg = replace_wrapper(fake_config(), use_gripper=True)
    env = make_robot_env(cfg, controller=KeyboardController())  # opens a pygame window
    try:
        env.reset()
        *_, info = env.step(POLICY_ACTION)
        assert info["is_intervention"] is False  # nothing pressed yet: the policy acts
        _key(pygame.KEYDOWN, "i")  # toggle intervention on
        _key(pygame.KEYDOWN, "right")  # -y while held
        _key(pygame.KEYDOWN, "right ctrl")  # open the gripper while held
        before = _tip(env)
        *_, info = env.step(POLICY_ACTION)
        assert info["is_intervention"] is True
        np.testing.assert_array_equal(info["action_intervention"], [0.0, -1.0, 0.0, 2.0])
        assert (_tip(env) - before)[1] == pytest.approx(-0.02, abs=1e-3)
        _key(pygame.KEYUP, "right")
        _key(pygame.KEYDOWN, "s")  # success
        _, reward, terminated, _, info = env.step(POLICY_ACTION)
        assert (reward, terminated, info["episode_end"]) == (1.0, True, "success")
        assert info["is_intervention"] is True  # the toggle survives key releases
    finally:
        env.close()
    assert not pygame.display.get_init()
