"""gym-hil (LeRobot's PandaPickCube MuJoCo sim) through hiljax's make_robot_env.

    {"robot": {"type": "gym_hil", "cameras": []}, "task": "PandaPickCubeBase-v0", ...}

A Base task gets gym-hil's own EE action wrapper ([-1, 1]^3 times the config's step sizes,
+ gripper 0 / 1 / 2) and gripper penalty, then hiljax's conventions:

    agent_pos (18,)            -> observation.state
    environment_state (3,)     -> observation.environment_state (state-only mode)
    pixels/front, pixels/wrist -> observation.images.front / .wrist, (H, W, 3) uint8
    info["succeed"]            -> info["next.success"]
    info["teleop_action"]      -> info["action_intervention"]

`robot.cameras` non-empty turns gym-hil's image observations on (it then drops
environment_state, as gym-hil does). The episode lasts control_time_s * fps steps (truncated).
Human intervention uses hiljax's controllers (control_mode), not gym-hil's. A Keyboard /
Gamepad task id is made as gym-hil registers it (its own viewer and input devices) and only
converted. gym-hil needs mujoco < 3.9 and an OpenGL backend even for state-only observations
(headless: MUJOCO_GL=egl). Install: `pip install -e .[gymhil]`.
"""

from __future__ import annotations

import logging
import os
import sys

import gymnasium as gym
import numpy as np

from hiljax.envs.wrappers import (
    ConvertToLeRobotObservation,
    ImageCropResizeWrapper,
    RewardWrapper,
    make_intervention_wrapper,
)

logger = logging.getLogger(__name__)

INFO_RENAMES = {"succeed": "next.success", "teleop_action": "action_intervention"}


class GymHilInfoWrapper(gym.Wrapper):
    """gym-hil's info keys -> hiljax's (`INFO_RENAMES`); `is_intervention` defaults to False."""

    @staticmethod
    def convert(info: dict) -> dict:
        out = {INFO_RENAMES.get(key, key): value for key, value in info.items()}
        out.setdefault("is_intervention", False)
        if out.get("action_intervention") is not None:
            out["action_intervention"] = np.asarray(out["action_intervention"], np.float32)
        return out

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation, self.convert(info)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(
            np.asarray(action, dtype=np.float32).reshape(-1))
        return observation, float(reward), bool(terminated), bool(truncated), self.convert(info)


def _import_gym_hil():
    if sys.platform.startswith("linux") and "mujoco" not in sys.modules:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("MUJOCO_GL", "egl")  # gym-hil always builds a renderer
    try:
        import gym_hil
    except ImportError as exc:
        raise ImportError("robot.type 'gym_hil' needs the gym-hil package: "
                          "pip install -e '.[gymhil]' (gym-hil pins mujoco < 3.9)") from exc
    return gym_hil


def make_base_gym_hil_env(cfg) -> gym.Env:
    """gym-hil's env for cfg.task, with its EE action wrapper and gripper penalty."""
    gym_hil = _import_gym_hil()
    env_id = f"gym_hil/{cfg.task}"
    image_obs = bool(cfg.robot.cameras)
    max_steps = cfg.max_episode_steps
    if "Base" not in cfg.task:  # a wrapped variant: built as gym-hil registers it
        return gym.make(env_id, max_episode_steps=max_steps, image_obs=image_obs)
    env = gym.make(env_id, max_episode_steps=max_steps, image_obs=image_obs, seed=cfg.robot.seed,
                   control_dt=1.0 / cfg.fps)
    params = cfg.wrapper.ee_action_space_params
    return gym_hil.wrap_env(
        env,
        ee_step_size={"x": params.x_step_size, "y": params.y_step_size, "z": params.z_step_size},
        use_gripper=cfg.wrapper.use_gripper,
        gripper_penalty=cfg.wrapper.gripper_penalty or 0.0,
        use_inputs_control=False,
        use_viewer=False,
        reset_delay_seconds=0.0,
    )


def make_gym_hil_env(cfg, reward_classifier=None, controller=None) -> gym.Env:
    """The gym-hil env with hiljax's observation / info conventions and wrappers."""
    env = make_base_gym_hil_env(cfg)
    env = GymHilInfoWrapper(env)
    env = ConvertToLeRobotObservation(env)
    wrapper = cfg.wrapper
    if wrapper.crop_params_dict is not None or wrapper.resize_size is not None:
        env = ImageCropResizeWrapper(env, wrapper.crop_params_dict, wrapper.resize_size)
    if reward_classifier is not None:
        env = RewardWrapper(env, reward_classifier, threshold=cfg.reward_classifier_threshold,
                            mode=cfg.reward_classifier_mode)
    if "Base" in cfg.task:  # the other variants bring gym-hil's own input handling
        # gym-hil's EE wrapper always adds the gripper dimension, whatever use_gripper says.
        has_gripper = env.action_space.shape == (4,)
        env = make_intervention_wrapper(env, wrapper.ee_action_space_params.control_mode,
                                        has_gripper, controller)
    return env
