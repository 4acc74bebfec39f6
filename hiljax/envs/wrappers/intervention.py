"""Human intervention: a person (gamepad, keyboard, or a script standing in) takes over.

Each step the controller is read BEFORE the env steps. While it says "intervene", its action
replaces the policy's before anything reaches the robot. These keys are then set in `info` and
are the contract with the actor (which stores `action_intervention` as the transition's action):

    is_intervention      bool: the action executed was the person's
    action_intervention  (action_dim,) float32: the action executed (the person's when
                         intervening), in the policy's action space: [dx, dy, dz] (+ droll
                         when the env has a roll action) (+ the gripper command)
    episode_end          None | "success" | "failure" | "rerecord": what the person asked
    rerecord_episode     bool: the person asked to record this episode again
    next.success         bool, on the step that ends the episode by a request

Wrappers further out must never set `is_intervention` / `action_intervention` (LeRobot #3227:
an outer env wrote its own `False` over the flag and interventions were silently lost); the
env stack's only writer outside is JointMaskingActionSpace, which cuts the action to the
policy's dims. A success request gives reward 1.0 and terminates; a failure terminates with
the env's reward; a rerecord truncates (no terminal state was reached; the episode is dropped).
Asking to quit (`info["quit"]`) truncates too.
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np

from hiljax.control import (
    FAILURE,
    RERECORD,
    SUCCESS,
    InputController,
    KeyboardController,
    make_controller,
)
from hiljax.control.teleop import controller_action

logger = logging.getLogger(__name__)


class InterventionWrapper(gym.Wrapper):
    """A controller overrides the policy while it intervenes (see the module docstring).

    The controller is started here and stopped by close(); `controller.reset()` runs at each
    env reset and `controller.observe(obs)` after each reset and step (a scripted stand-in
    looks at the observation; a device ignores it). Controller step sizes should be 1.0: the
    action is the normalised EE delta that EEActionWrapper scales.
    """

    def __init__(self, env, controller: InputController, use_gripper: bool = False,
                 auto_reset: bool = False, use_roll: bool = False):
        super().__init__(env)
        expected = 3 + int(use_roll) + int(use_gripper)
        if env.action_space.shape != (expected,):
            raise ValueError(f"intervention needs an EE action space of shape ({expected},) "
                             f"(roll {use_roll}, gripper {use_gripper}), got "
                             f"{env.action_space.shape}")
        self.controller = controller
        self.use_gripper = use_gripper
        self.use_roll = use_roll
        self.auto_reset = auto_reset
        controller.start()

    def reset(self, **kwargs):
        self.controller.reset()
        observation, info = self.env.reset(**kwargs)
        self.controller.observe(observation)
        info.setdefault("is_intervention", False)
        return observation, info

    def step(self, action):
        self.controller.update()
        intervening = self.controller.should_intervene()
        status = self.controller.get_episode_end_status()
        human = controller_action(self.controller, self.use_gripper, self.use_roll)
        executed = human if intervening else np.asarray(action, dtype=np.float32).reshape(-1)
        observation, reward, terminated, truncated, info = self.env.step(executed)
        self.controller.observe(observation)
        info["is_intervention"] = bool(intervening)
        info["action_intervention"] = executed.astype(np.float32, copy=True)
        reward, terminated, truncated = self._apply_request(status, info, reward, terminated,
                                                           truncated)
        if (terminated or truncated) and self.auto_reset:
            observation, reset_info = self.reset()
            info["reset_info"] = reset_info
        return observation, reward, terminated, truncated, info

    def _apply_request(self, status, info, reward, terminated, truncated):
        info["episode_end"] = status
        info["rerecord_episode"] = status == RERECORD
        if status == SUCCESS:
            logger.info("episode ended by the person: success (reward 1.0)")
            reward, terminated = 1.0, True
        elif status == FAILURE:
            logger.info("episode ended by the person: failure")
            terminated = True
        elif status == RERECORD:
            logger.info("episode ended by the person: rerecord")
            truncated = True
        if status is not None:
            info["next.success"] = status == SUCCESS
        if self.controller.should_quit():
            info["quit"] = True
            truncated = True
        return reward, terminated, truncated

    def close(self):
        self.controller.stop()
        return self.env.close()


class GamepadControlWrapper(InterventionWrapper):
    """Intervention from a gamepad (RB held = intervene, Y success, A failure, X rerecord,
    LT/RT close/open the gripper, right stick left/right the wrist roll when `use_roll`); raw
    HID on macOS. Pass `controller` to use another device or a `ScriptedController`."""

    def __init__(self, env, x_step_size: float = 1.0, y_step_size: float = 1.0,
                 z_step_size: float = 1.0, use_gripper: bool = False, auto_reset: bool = False,
                 controller: InputController | None = None, control_mode: str = "gamepad",
                 use_roll: bool = False):
        if controller is None:
            controller = make_controller(control_mode, x_step_size=x_step_size,
                                         y_step_size=y_step_size, z_step_size=z_step_size)
        super().__init__(env, controller, use_gripper=use_gripper, auto_reset=auto_reset,
                         use_roll=use_roll)


class KeyboardInterfaceWrapper(InterventionWrapper):
    """Intervention from the keyboard (pygame window): `i` toggles intervention, `s` / `f` / `r`
    success / failure / rerecord, arrows move x / y, shift / right shift z, q / e turn the wrist
    roll (when `use_roll`), ctrl / right ctrl close / open the gripper (keys:
    `hiljax.control.keymap`)."""

    def __init__(self, env, use_gripper: bool = False, auto_reset: bool = False,
                 controller: InputController | None = None, use_roll: bool = False,
                 **controller_kwargs):
        super().__init__(env, controller or KeyboardController(**controller_kwargs),
                         use_gripper=use_gripper, auto_reset=auto_reset, use_roll=use_roll)


# LeRobot's later name for the keyboard variant.
KeyboardControlWrapper = KeyboardInterfaceWrapper


def make_intervention_wrapper(env, control_mode: str | None, use_gripper: bool,
                              controller: InputController | None = None,
                              use_roll: bool = False) -> gym.Env:
    """The human-intervention wrapper for a control mode (or an injected controller);
    `use_roll`: the env's action has a wrist-roll delta, so the person's has one too."""
    if controller is not None:
        return InterventionWrapper(env, controller, use_gripper=use_gripper, use_roll=use_roll)
    if control_mode in ("leader", "leader_automatic"):
        raise ValueError(f"control_mode {control_mode!r} reads a leader arm: build the env with "
                         "hiljax.envs.factory.make_robot_env and a `teleop` config, or pass the "
                         "controller (hiljax.control.make_leader_controller)")
    if control_mode == "sim_operator":
        raise ValueError("control_mode 'sim_operator' reads the simulator: build the env with "
                         "hiljax.envs.factory.make_robot_env (robot.type 'sim_so100'), or pass "
                         "the controller (make_sim_operator(cfg, robot))")
    if control_mode is None:
        return env
    if control_mode == "keyboard":
        return KeyboardInterfaceWrapper(env, use_gripper=use_gripper, use_roll=use_roll)
    return GamepadControlWrapper(env, use_gripper=use_gripper, use_roll=use_roll,
                                 controller=make_controller(control_mode))
