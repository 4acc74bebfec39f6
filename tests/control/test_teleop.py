"""teleoperate_gym_env on a tiny point-mass env, driven by the scripted stand-in and by the
keyboard through real (headless) pygame."""

import time

import gymnasium as gym
import numpy as np
import pytest

from hiljax.control import KeyboardController, ScriptedController, teleoperate_gym_env
from hiljax.control.teleop import controller_action, uses_gripper

STEP_SIZE = 0.05  # metres per unit of action


class PointMass3D(gym.Env):
    """A point in the box [-1, 1]^3 moved by action[:3] * STEP_SIZE. With a gripper, action[3]
    is 0 close / 1 stay / 2 open. Touching a wall terminates; `max_steps` truncates."""

    def __init__(self, use_gripper=True, max_steps=50):
        low, high = [-1.0] * 3, [1.0] * 3
        if use_gripper:
            low, high = low + [0.0], high + [2.0]
        low, high = np.array(low, np.float32), np.array(high, np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float64)
        self.max_steps = max_steps
        self.seeds = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        self.position = np.zeros(3)
        self.gripper_closed = False
        self.steps = 0
        return self.position.copy(), {}

    def step(self, action):
        assert action.shape == self.action_space.shape and action.dtype == np.float32
        self.steps += 1
        self.position = np.clip(self.position + np.clip(action[:3], -1, 1) * STEP_SIZE, -1, 1)
        if action.shape[0] == 4 and action[3] != 1:
            self.gripper_closed = action[3] == 0
        terminated = bool(np.any(np.abs(self.position) >= 1.0))
        truncated = self.steps >= self.max_steps
        reward = -float(np.linalg.norm(self.position))
        return self.position.copy(), reward, terminated, truncated, {"closed": self.gripper_closed}


def _scripted(target, **kwargs):
    return ScriptedController(
        lambda step, obs: target, lambda obs: obs, gain=1 / STEP_SIZE, tolerance=1e-6, **kwargs
    )


def test_scripted_person_reaches_the_target_and_says_success():
    env = PointMass3D()
    steps = []
    episodes = teleoperate_gym_env(
        env, _scripted((0.2, -0.1, 0.15)), fps=None, on_step=steps.append
    )
    (episode,) = episodes
    assert episode.status == "success"
    assert episode.steps == 5  # 4 steps to cover 0.2 m at 0.05 m, then one to say "success"
    np.testing.assert_allclose(env.position, (0.2, -0.1, 0.15), atol=1e-9)
    np.testing.assert_allclose(steps[0].action, (1.0, -1.0, 1.0, 1.0))
    assert episode.intervention_steps == 5 and all(s.is_intervention for s in steps)
    np.testing.assert_allclose(steps[1].observation, steps[0].next_observation)
    assert episode.total_reward == pytest.approx(sum(s.reward for s in steps))


def test_gripper_schedule_reaches_the_env_as_0_1_2():
    env = PointMass3D()
    steps = []
    controller = _scripted((0.2, 0, 0), gripper={1: "close", 3: "open"})
    teleoperate_gym_env(env, controller, fps=None, on_step=steps.append)
    assert [s.action[3] for s in steps] == [1, 0, 1, 2, 1]
    assert [s.info["closed"] for s in steps] == [False, True, True, False, False]


def test_env_endings_end_the_episode():
    truncated = teleoperate_gym_env(PointMass3D(max_steps=5), _scripted((0.9, 0, 0)), fps=None)
    assert [(e.status, e.steps) for e in truncated] == [("truncated", 5)]
    terminated = teleoperate_gym_env(PointMass3D(), _scripted((2.0, 0, 0)), fps=None)
    assert [(e.status, e.steps) for e in terminated] == [("terminated", 20)]


def test_a_rerecorded_episode_is_done_again_and_the_seed_goes_to_the_first_reset():
    env = PointMass3D()
    episode_count = []

    def done(step, obs):
        if step == 0:
            episode_count.append(1)
        return "rerecord" if len(episode_count) == 1 and step == 2 else None

    controller = _scripted((0.1, 0, 0), done_fn=done)
    episodes = teleoperate_gym_env(env, controller, fps=None, num_episodes=2, seed=7)
    assert [e.status for e in episodes] == ["rerecord", "success", "success"]
    assert [e.index for e in episodes] == [0, 1, 2]
    assert env.seeds == [7, None, None]


def test_without_a_gripper_dimension_the_action_is_xyz():
    env = PointMass3D(use_gripper=False)
    assert not uses_gripper(env)
    (episode,) = teleoperate_gym_env(env, _scripted((0.1, 0, 0)), fps=None)
    assert episode.status == "success"
    controller = _scripted((0, 0, 0))
    controller.update()
    assert controller_action(controller, use_gripper=False).shape == (3,)


def test_fps_paces_the_loop():
    start = time.perf_counter()
    (episode,) = teleoperate_gym_env(PointMass3D(max_steps=5), _scripted((0.9, 0, 0)), fps=50)
    assert episode.steps == 5
    assert time.perf_counter() - start >= 4 / 50  # four full waits between five steps


def _post_key(pygame, kind, name):
    event_type = pygame.KEYDOWN if kind == "down" else pygame.KEYUP
    pygame.event.post(pygame.event.Event(event_type, key=pygame.key.key_code(name)))


def test_keyboard_person_drives_the_env_through_pygame():
    pygame = pytest.importorskip("pygame")
    env = PointMass3D()
    controller = KeyboardController()
    controller.start()  # the loop's own start() is then a no-op; events need the display up
    # Step 1: take over and hold "up" (+x). Step 3: release it, press "right shift" (+z) and
    # close the gripper. Step 5: success. Then, in the next episode, escape quits.
    script = {
        0: [("down", "i"), ("up", "i"), ("down", "up")],
        2: [("up", "up"), ("down", "right shift"), ("down", "left ctrl")],
        4: [("up", "right shift"), ("up", "left ctrl"), ("down", "s"), ("up", "s")],
        6: [("down", "escape")],
    }
    steps = []

    def on_step(record):
        steps.append(record)
        for kind, name in script.get(len(steps), []):
            _post_key(pygame, kind, name)

    for kind, name in script[0]:
        _post_key(pygame, kind, name)
    episodes = teleoperate_gym_env(env, controller, fps=None, num_episodes=3, on_step=on_step)
    assert [(e.status, e.steps) for e in episodes] == [("success", 5), ("quit", 1)]
    actions = [tuple(s.action) for s in steps]
    assert actions[:5] == [(1, 0, 0, 1), (1, 0, 0, 1), (0, 0, 1, 0), (0, 0, 1, 0), (0, 0, 0, 1)]
    assert all(s.is_intervention for s in steps)
    assert not pygame.display.get_init()  # the loop's `with` stopped the controller
