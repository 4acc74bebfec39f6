"""ScriptedController: a stand-in for the person, with the same interface as the devices.

It steers the end effector towards a target: `target_fn(step, observation) -> xyz` gives the
target, `position_fn(observation) -> xyz` the current position (read it from the observation, or
ignore the argument and ask the robot). The command is proportional, `clip(gain * error, -1, 1)`
per axis, times the step sizes - so with step sizes of 1.0 it is the env's normalised action.
`step` counts `update()` calls since the episode began; `observation` is the latest one passed to
`observe()` (None before the first). The gripper follows a constant, a {step: command} schedule
or a function; the episode ends when the target is reached (within `tolerance`) or when
`done_fn(step, observation)` returns a status. `roll_fn(step, observation)`, if given, is the
wrist-roll command in [-1, 1] (times `roll_step_size`) for an env with a roll action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from hiljax.control.base import SUCCESS, InputController, gripper_value
from hiljax.control.mapping import Commands

Vector = np.ndarray | tuple[float, float, float] | list[float]
GripperScript = str | Mapping[int, str] | Callable[[int, object], str] | None


def proportional_deltas(target: Vector, position: Vector, gain: float, step_sizes: Vector):
    """(dx, dy, dz): the normalised command clip(gain * (target - position), -1, 1) per axis,
    times the step sizes."""
    error = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    command = np.clip(gain * error, -1.0, 1.0) * np.asarray(step_sizes, dtype=np.float64)
    return tuple(float(c) + 0.0 for c in command)


def scripted_gripper(script: GripperScript, step: int, observation) -> str:
    if script is None:
        return "stay"
    if isinstance(script, str):
        command = script
    elif isinstance(script, Mapping):
        command = script.get(step, "stay")
    else:
        command = script(step, observation)
    gripper_value(command)  # raises on a typo, here rather than in the env
    return command


class ScriptedController(InputController):
    """A person stand-in steering towards `target_fn`'s target (see the module docstring)."""

    def __init__(
        self,
        target_fn: Callable[[int, object], Vector],
        position_fn: Callable[[object], Vector],
        gain: float = 10.0,  # 1/m: an error of 0.1 m asks for full speed
        x_step_size: float = 1.0,
        y_step_size: float = 1.0,
        z_step_size: float = 1.0,
        tolerance: float = 0.01,  # m: the target counts as reached within this distance
        gripper: GripperScript = None,
        done_fn: Callable[[int, object], str | None] | None = None,
        end_on_reach: bool = True,
        intervene: bool = True,  # a teleoperating person is intervening
        roll_fn: Callable[[int, object], float] | None = None,
        roll_step_size: float = 1.0,
    ):
        super().__init__(x_step_size, y_step_size, z_step_size, roll_step_size)
        self.roll_fn = roll_fn
        self.target_fn = target_fn
        self.position_fn = position_fn
        self.gain = gain
        self.tolerance = tolerance
        self.gripper = gripper
        self.done_fn = done_fn
        self.end_on_reach = end_on_reach
        self.intervene = intervene
        self.step = 0
        self.observation = None

    def observe(self, observation) -> None:
        self.observation = observation

    def reset(self) -> None:
        super().reset()
        self.step = 0

    def update(self) -> None:
        target = np.asarray(self.target_fn(self.step, self.observation), dtype=np.float64)
        position = np.asarray(self.position_fn(self.observation), dtype=np.float64)
        steps = (self.x_step_size, self.y_step_size, self.z_step_size)
        episode_end = self.done_fn(self.step, self.observation) if self.done_fn else None
        reached = float(np.linalg.norm(target - position)) <= self.tolerance
        if episode_end is None and self.end_on_reach and reached:
            episode_end = SUCCESS
        roll = self.roll_fn(self.step, self.observation) if self.roll_fn else 0.0
        self._apply_commands(
            Commands(
                deltas=proportional_deltas(target, position, self.gain, steps),
                roll=float(np.clip(roll, -1.0, 1.0)) * self.roll_step_size + 0.0,
                intervene=self.intervene,
                gripper=scripted_gripper(self.gripper, self.step, self.observation),
                episode_end=episode_end,
            )
        )
        self.step += 1
