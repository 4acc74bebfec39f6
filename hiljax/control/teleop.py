"""teleoperate_gym_env: drive a gymnasium env from a controller, as a person collecting
demonstrations does.

Each control step: `controller.update()`, then the action [dx, dy, dz] (+ the wrist roll when
the env has a roll dimension, + the gripper value 0/1/2 when it has a gripper dimension) goes to
`env.step`. An episode ends after the step on which
the person asked for success / failure / rerecord, or when the env terminates or truncates. A
rerecorded episode does not count towards `num_episodes` (LeRobot's recorder does it again).
Differences from the reference's loop: every step is sent, also idle ones (a demonstration's
timing is part of it; the reference skipped steps without movement), and the env is not closed
(the caller owns it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hiljax.control.base import RERECORD, InputController

logger = logging.getLogger(__name__)

QUIT = "quit"
TERMINATED = "terminated"
TRUNCATED = "truncated"


@dataclass
class EpisodeInfo:
    index: int
    # success | failure | rerecord (asked by the person) | terminated | truncated | quit
    status: str
    steps: int = 0
    total_reward: float = 0.0
    intervention_steps: int = 0  # steps on which the controller said it was intervening
    final_info: dict = field(default_factory=dict)  # the env's info from the last step


@dataclass(frozen=True)
class StepRecord:
    """One transition, handed to `on_step` so a caller can record the demonstration."""

    episode: int
    observation: object
    action: np.ndarray
    reward: float
    next_observation: object
    terminated: bool
    truncated: bool
    info: dict
    is_intervention: bool


def uses_gripper(env) -> bool:
    """True when the env's action ends with a gripper command: a dimension after the three
    deltas whose range is the command's [0, 2] (a roll delta's is [-1, 1])."""
    space = env.action_space
    return space.shape[-1] > 3 and float(np.asarray(space.high).reshape(-1)[-1]) > 1.5


def controller_action(controller: InputController, use_gripper: bool,
                      use_roll: bool = False) -> np.ndarray:
    """The env action for the controller's current commands: [dx, dy, dz] (+ droll when the
    env has a roll dimension) (+ the gripper value 0 close / 1 stay / 2 open), float32."""
    action = list(controller.get_deltas())
    if use_roll:
        action.append(float(controller.get_roll_delta()))
    if use_gripper:
        action.append(float(controller.gripper_action()))
    return np.asarray(action, dtype=np.float32)


def _wait_for_next_tick(tick_start: float, fps: float | None) -> None:
    if fps:
        remaining = 1.0 / fps - (time.perf_counter() - tick_start)
        if remaining > 0:
            time.sleep(remaining)


def run_episode(
    env, controller, index, use_gripper, fps=None, on_step=None, seed=None, use_roll=False
) -> EpisodeInfo:
    """One episode, from reset to the first ending; see the module docstring."""
    observation, _ = env.reset(seed=seed)
    controller.reset()
    controller.observe(observation)
    episode = EpisodeInfo(index=index, status=QUIT)
    while True:
        tick_start = time.perf_counter()
        controller.update()
        if controller.should_quit():
            return episode
        action = controller_action(controller, use_gripper, use_roll)
        requested_end = controller.get_episode_end_status()
        intervening = controller.should_intervene()
        next_observation, reward, terminated, truncated, info = env.step(action)
        controller.observe(next_observation)
        episode.steps += 1
        episode.total_reward += float(reward)
        episode.intervention_steps += int(intervening)
        episode.final_info = info
        if on_step is not None:
            on_step(
                StepRecord(
                    index,
                    observation,
                    action,
                    float(reward),
                    next_observation,
                    bool(terminated),
                    bool(truncated),
                    info,
                    intervening,
                )
            )
        observation = next_observation
        ending = requested_end or (TERMINATED if terminated else TRUNCATED if truncated else None)
        if ending is not None:
            episode.status = ending
            return episode
        _wait_for_next_tick(tick_start, fps)


def teleoperate_gym_env(
    env,
    controller: InputController,
    fps: float | None = 10,
    num_episodes: int = 1,
    use_gripper: bool | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    seed: int | None = None,
) -> list[EpisodeInfo]:
    """Run episodes until `num_episodes` are kept or the person quits; returns every episode,
    rerecorded ones included. `fps=None` runs as fast as the env allows (scripts, tests)."""
    use_gripper = uses_gripper(env) if use_gripper is None else use_gripper
    use_roll = env.action_space.shape[-1] == 4 + int(use_gripper)  # [dx, dy, dz, droll, ...]
    episodes: list[EpisodeInfo] = []
    kept = 0
    with controller:
        while kept < num_episodes and not controller.should_quit():
            episode = run_episode(
                env,
                controller,
                len(episodes),
                use_gripper,
                fps,
                on_step,
                seed=seed if not episodes else None,
                use_roll=use_roll,
            )
            logger.info(
                "episode %d: %s after %d steps, return %.3f",
                episode.index,
                episode.status,
                episode.steps,
                episode.total_reward,
            )
            episodes.append(episode)
            kept += episode.status not in (RERECORD, QUIT)
    return episodes
