"""ScriptedController: the stand-in for a person."""

import numpy as np
import pytest

from hiljax.control import ScriptedController
from hiljax.control.scripted import proportional_deltas, scripted_gripper


def test_proportional_deltas_are_clipped_then_scaled():
    deltas = proportional_deltas(
        [1.0, -0.01, 0.0], [0.0, 0.0, 0.0], gain=10.0, step_sizes=[0.5, 1.0, 1.0]
    )
    assert deltas == pytest.approx((0.5, -0.1, 0.0))
    assert deltas[2] == 0.0 and str(deltas[2]) == "0.0"


def test_gripper_scripts():
    assert scripted_gripper(None, 3, None) == "stay"
    assert scripted_gripper("close", 3, None) == "close"
    assert scripted_gripper({3: "open"}, 3, None) == "open"
    assert scripted_gripper({3: "open"}, 4, None) == "stay"
    assert (
        scripted_gripper(lambda step, obs: "close" if obs["grasp"] else "stay", 0, {"grasp": True})
        == "close"
    )
    with pytest.raises(ValueError):
        scripted_gripper("shut", 0, None)


def test_follows_a_moving_target_and_ends_on_reach():
    position = np.zeros(3)
    controller = ScriptedController(
        target_fn=lambda step, obs: (0.05 * min(step, 2), 0.0, 0.0),
        position_fn=lambda obs: position,
        gain=20.0,
        tolerance=1e-9,
    )
    controller.update()  # step 0: target is the start: reached
    assert controller.get_episode_end_status() == "success"
    controller.update()  # step 1: target 0.05 ahead -> full speed
    assert controller.get_deltas() == pytest.approx((1.0, 0.0, 0.0))
    assert controller.should_intervene() and controller.get_episode_end_status() is None
    controller.reset()
    assert controller.step == 0


def test_done_predicate_sees_the_observation_and_wins_over_reaching():
    controller = ScriptedController(
        target_fn=lambda step, obs: obs["goal"],
        position_fn=lambda obs: obs["pos"],
        done_fn=lambda step, obs: "failure" if obs["dropped"] else None,
        intervene=False,
    )
    controller.observe({"goal": (0, 0, 0), "pos": (0, 0, 0), "dropped": True})
    controller.update()
    assert controller.get_episode_end_status() == "failure"
    assert not controller.should_intervene()
    controller.observe({"goal": (0, 0, 0), "pos": (0, 0, 0), "dropped": False})
    controller.update()
    assert controller.get_episode_end_status() == "success"


def test_reaching_can_be_ignored():
    controller = ScriptedController(lambda s, o: (0, 0, 0), lambda o: (0, 0, 0), end_on_reach=False)
    controller.update()
    assert controller.get_episode_end_status() is None
