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

gym-hil faults corrected on the way (Base tasks):
- Its EE wrapper maps gripper command 2 ("open" in its input wrappers) to +1, which drives the
  Robotiq 2F-85 to ctrl 255: CLOSED. hiljax keeps LeRobot's meaning (0 close, 1 stay, 2 open)
  and flips the command before gym-hil sees it (`GymHilGripper`), so a stored action, a
  person's button and the scripted person mean what they say.
- Its gripper penalty, built on the same inversion, charges every real open / close. hiljax's
  charges what LeRobot's GripperPenaltyWrapper does: closing a closed or opening an open gripper.
- `observation.state[14]`, the gripper, is 0..1 (gym-hil gives its raw 0..255 actuator
  command, a hundred times the scale of every other feature).
- `robot.random_block_position` places the cube with the env's seeded generator (gym-hil's own
  option draws from numpy's global one, so new seeds would not give new, repeatable scenes).
`control_mode = "sim_operator"` reads the scene through `GymHilScene` (the scripted person of
hiljax.envs.sim.operator, with the Panda's geometry).
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


class GymHilStateScale(gym.ObservationWrapper):
    """gym-hil's `agent_pos` carries the gripper as its raw actuator command, 0..255, beside
    joint angles, velocities and metres of order 1; hiljax gives it as 0..1 (1 = closed)."""

    GRIPPER_INDEX = 14  # agent_pos = qpos (7), qvel (7), gripper command (1), pinch xyz (3)

    def __init__(self, env):
        super().__init__(env)
        spaces = dict(env.observation_space.spaces)
        box = spaces["agent_pos"]
        low, high = box.low.copy(), box.high.copy()
        low[self.GRIPPER_INDEX], high[self.GRIPPER_INDEX] = 0.0, 1.0
        spaces["agent_pos"] = gym.spaces.Box(low, high, dtype=box.dtype)
        self.observation_space = gym.spaces.Dict(spaces)

    def observation(self, observation):
        state = np.array(observation["agent_pos"], dtype=np.float32)
        state[self.GRIPPER_INDEX] /= 255.0
        return {**observation, "agent_pos": state}


class GymHilGripper(gym.Wrapper):
    """LeRobot's gripper command (0 close / 1 stay / 2 open) for gym-hil's EE wrapper (which
    reads 2 as +1 = close), and LeRobot's penalty for a useless command (see the module
    docstring). Sits directly above gym-hil's wrappers."""

    CLOSED_ABOVE, OPEN_BELOW = 0.9, 0.1  # gym-hil's thresholds on ctrl / 255 (1 = closed)

    def __init__(self, env, penalty: float = 0.0):
        super().__init__(env)
        self.penalty = float(penalty)

    def _closedness(self) -> float:
        return float(self.unwrapped.get_gripper_pose()[0]) / 255.0

    def step(self, action):
        action = np.array(action, dtype=np.float32).reshape(-1)
        command = float(action[-1])
        closedness = self._closedness()
        useless = ((command < 0.5 and closedness > self.CLOSED_ABOVE)
                   or (command > 1.5 and closedness < self.OPEN_BELOW))
        action[-1] = 2.0 - command
        observation, reward, terminated, truncated, info = self.env.step(action)
        info["discrete_penalty"] = self.penalty if useless else 0.0
        return observation, reward, terminated, truncated, info


class SeededBlockPosition(gym.Wrapper):
    """Puts the cube anywhere in gym-hil's sampling area, drawn from the env's seeded generator
    (`reset(seed=...)` gives the same scene again). Wraps the bare gym-hil env."""

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        base = self.unwrapped
        low, high = _sampling_bounds()
        xy = base.np_random.uniform(low, high)
        base._data.jnt("block").qpos[:3] = (*xy, base._block_z)
        import mujoco

        mujoco.mj_forward(base._model, base._data)
        return base._compute_observation(), info


def _sampling_bounds() -> tuple[np.ndarray, np.ndarray]:
    from gym_hil.envs import panda_pick_gym_env

    bounds = np.asarray(panda_pick_gym_env._SAMPLING_BOUNDS, dtype=np.float64)
    return bounds[0], bounds[1]


class GymHilScene:
    """What the scripted person (hiljax.envs.sim.operator.SimOperator) reads, from gym-hil's
    PandaPickCube: the pinch point, the cube, the Robotiq's opening, pad contacts, the lift."""

    lift_height = 0.1  # gym-hil's success: the cube 10 cm above where it started
    DRIVER_CLOSED = 0.8  # rad: the driver joint of an empty, fully closed 2F-85

    def __init__(self, env: gym.Env):
        self.base = env.unwrapped
        model = self.base._model
        self._driver = model.jnt_qposadr[model.joint("right_driver_joint").id]
        self._block_body = model.body("block").id
        self._pad_bodies = {model.body(name).id for name in ("left_pad", "right_pad",
                                                             "left_silicone_pad",
                                                             "right_silicone_pad")}
        self._left = {model.body("left_pad").id, model.body("left_silicone_pad").id}

    def environment_state(self) -> np.ndarray:
        return np.array(self.base._data.sensor("block_pos").data, dtype=np.float64)

    def gripper_tip_position(self) -> np.ndarray:
        return np.array(self.base._data.sensor("2f85/pinch_pos").data, dtype=np.float64)

    def read_joint_positions(self) -> np.ndarray:
        """Only the last value is read: the opening, 0 closed .. 100 open."""
        closed = float(self.base._data.qpos[self._driver]) / self.DRIVER_CLOSED
        return np.array([100.0 * (1.0 - np.clip(closed, 0.0, 1.0))])

    def cube_grasped(self) -> bool:
        data, model = self.base._data, self.base._model
        touching = set()
        for contact in data.contact[:data.ncon]:
            bodies = {model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]}
            if self._block_body in bodies:
                touching |= bodies & self._pad_bodies
        return bool(touching & self._left) and bool(touching - self._left)

    def cube_lift(self) -> float:
        return float(self.environment_state()[2] - self.base._z_init)

    def task_success(self) -> bool:
        return bool(self.base._is_success())


def make_gym_hil_operator(cfg, env: gym.Env):
    """The scripted person of control_mode "sim_operator" on gym-hil's PandaPickCube."""
    from hiljax.envs.sim.operator import PANDA_GEOMETRY, SimOperator

    params = cfg.wrapper.ee_action_space_params
    return SimOperator(GymHilScene(env), cfg.wrapper.sim_operator,
                       step_sizes=(params.x_step_size, params.y_step_size, params.z_step_size),
                       geometry=PANDA_GEOMETRY)


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
    if image_obs:
        from hiljax.envs.sim.rendering import plain_scene

        plain_scene(env.unwrapped._viewer)  # ~2 -> ~18 steps/s with two cameras on 2 CPU cores
    if cfg.robot.random_block_position:
        env = SeededBlockPosition(env)
    params = cfg.wrapper.ee_action_space_params
    env = gym_hil.wrap_env(
        env,
        ee_step_size={"x": params.x_step_size, "y": params.y_step_size, "z": params.z_step_size},
        use_gripper=cfg.wrapper.use_gripper,
        gripper_penalty=0.0,  # gym-hil's charges real toggles; GymHilGripper's is LeRobot's
        use_inputs_control=False,
        use_viewer=False,
        reset_delay_seconds=0.0,
    )
    return GymHilGripper(env, penalty=cfg.wrapper.gripper_penalty or 0.0)


def make_gym_hil_env(cfg, reward_classifier=None, controller=None) -> gym.Env:
    """The gym-hil env with hiljax's observation / info conventions and wrappers."""
    env = make_base_gym_hil_env(cfg)
    if "Base" in cfg.task:
        env = GymHilStateScale(env)
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
        mode = wrapper.ee_action_space_params.control_mode
        if controller is None and mode == "sim_operator":
            controller = make_gym_hil_operator(cfg, env)
        env = make_intervention_wrapper(env, mode, has_gripper, controller)
    return env
