"""Action wrappers: end-effector deltas -> joint targets, the gripper, and joint masking.

The stack (inside out, as make_robot_env builds it): GripperActionWrapper turns the gripper
command (0 close, 1 stay, 2 open) into a gripper position; GripperPenaltyWrapper watches that
command; EEActionWrapper turns [dx, dy, dz] (+ droll) in [-1, 1] (+ the gripper command) into
joint targets. Angles are degrees and the gripper is in [0, 100] (0 closed), as `hiljax.envs.robot`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN
from hiljax.envs.wrappers._spaces import observed_joints_of, robot_of
from hiljax.kinematics import JOINT_NAMES, IKOptions, RobotKinematics

logger = logging.getLogger(__name__)

GRIPPER_RANGE = GRIPPER_OPEN - GRIPPER_CLOSED
WRIST_ROLL = JOINT_NAMES.index("wrist_roll")


class EEActionWrapper(gym.ActionWrapper):
    """[dx, dy, dz] (+ droll) in [-1, 1] (+ gripper command in [0, 2]) -> joint targets.

    Each step: tip = FK(measured joints); target = clip(tip + action * step sizes, bounds);
    joints = IK from the measured joints (position only; the wrist orientation is free). The
    reference (v0.3) added the raw action in metres with the step sizes as the action bounds;
    LeRobot later, gym-hil and hiljax take a normalised action scaled by the step sizes.

    With `roll_step_size` (degrees) the action has a 4th value: the wrist roll target becomes
    the measured roll + droll * roll_step_size, clipped to the joint's limits. The tip lies on
    the roll axis, so rolling turns the fingers about the tip without moving it, and the
    position IK (which cannot move the tip with the roll) leaves the roll alone.
    """

    def __init__(self, env, ee_action_space_params, use_gripper: bool = False,
                 kinematics: RobotKinematics | None = None, ik_options: IKOptions | None = None):
        super().__init__(env)
        params = ee_action_space_params
        self.step_sizes = np.array([params.x_step_size, params.y_step_size, params.z_step_size])
        self.roll_step_size = getattr(params, "roll_step_size", None)
        self.bounds = {"min": np.asarray(params.bounds["min"], dtype=np.float64),
                       "max": np.asarray(params.bounds["max"], dtype=np.float64)}
        self.use_gripper = use_gripper
        self.kinematics = kinematics or RobotKinematics("so100")
        self.ik_options = ik_options or IKOptions(max_iterations=50)
        num_deltas = 3 + int(self.use_roll)
        low, high = -np.ones(num_deltas), np.ones(num_deltas)
        if use_gripper:  # gripper: 0 close, 1 stay, 2 open
            low, high = np.append(low, 0.0), np.append(high, 2.0)
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32),
                                           dtype=np.float32)
        self.last_ik_converged = True
        self.last_target_position = np.zeros(3)

    @property
    def use_roll(self) -> bool:
        return self.roll_step_size is not None

    def target_position(self, joints: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        tip = self.kinematics.fk_gripper_tip(joints)[:3, 3]
        moved = tip + np.clip(deltas, -1.0, 1.0) * self.step_sizes
        return np.clip(moved, self.bounds["min"], self.bounds["max"])

    def target_roll(self, joints: np.ndarray, droll: float) -> float:
        """The wrist roll target (degrees): the measured roll turned by droll step sizes."""
        low, high = self.kinematics.joint_limits_deg[WRIST_ROLL]
        turned = joints[WRIST_ROLL] + float(np.clip(droll, -1.0, 1.0)) * self.roll_step_size
        return float(np.clip(turned, low, high))

    def action(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"EE action must have shape {self.action_space.shape}, got "
                             f"{action.shape}")
        joints = observed_joints_of(self.env)  # what the policy saw when it chose the action
        target = self.target_position(joints, action[:3])
        result = self.kinematics.solve_ik(joints, target, options=self.ik_options)
        self.last_ik_converged, self.last_target_position = bool(result.converged), target
        targets = np.array(result.joints, dtype=np.float32)  # the gripper value passes through
        if self.use_roll:
            targets[WRIST_ROLL] = self.target_roll(joints, action[3])
        if self.use_gripper:
            targets[-1] = action[-1]  # the command; GripperActionWrapper makes it a position
        return targets


class GripperActionWrapper(gym.ActionWrapper):
    """The gripper command in [0, 2] (last action value) -> a gripper position in [0, 100].

    The command minus 1 is quantised to -1 / 0 / +1 when its size passes the threshold (the
    reference's rule), then moves the gripper target by `gripper_step` per unit (the default
    is the whole range: close or open fully, as the reference). "Stay" keeps the last commanded
    target. (The reference re-sent the measured position, which relaxes a grip on an object:
    a blocked jaw reads open-er than it was told, and that becomes its new target.)
    `gripper_sleep` s: a new command is ignored that soon after the last one (the reference's).
    """

    def __init__(self, env, quantization_threshold: float | None = 0.2,
                 gripper_sleep: float = 0.0, gripper_step: float = GRIPPER_RANGE):
        super().__init__(env)
        self.quantization_threshold = quantization_threshold
        self.gripper_sleep = gripper_sleep
        self.gripper_step = gripper_step
        self.gripper_target: float | None = None
        self._last_command_time = -np.inf
        self._last_command: float | None = None

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self.gripper_target = None
        self._last_command_time, self._last_command = -np.inf, None
        return result

    def quantize(self, command: float) -> float:
        command = float(np.clip(command, 0.0, 2.0)) - 1.0
        if self.quantization_threshold is None:
            return command
        return float(np.sign(command)) if abs(command) > self.quantization_threshold else 0.0

    def _debounced(self, command: float) -> float:
        if self.gripper_sleep <= 0.0:
            return command
        now = time.perf_counter()
        if self._last_command is not None and now - self._last_command_time < self.gripper_sleep:
            return self._last_command
        self._last_command_time, self._last_command = now, command
        return command

    def action(self, action):
        action = np.array(action, dtype=np.float32, copy=True)
        if self.gripper_target is None:
            self.gripper_target = float(robot_of(self.env).read_joint_positions()[-1])
        step = self.quantize(self._debounced(float(action[-1]))) * self.gripper_step
        self.gripper_target = float(np.clip(self.gripper_target + step,
                                            GRIPPER_CLOSED, GRIPPER_OPEN))
        action[-1] = self.gripper_target
        return action


class GripperPenaltyWrapper(gym.Wrapper):
    """`info["discrete_penalty"] = penalty` when the gripper command (last action value, 0 close /
    1 stay / 2 open) would close an already closed gripper or open an open one; else 0.0.

    "Closed" and "open" use the reference's thresholds mirrored into hiljax's convention
    (0 = closed): closed below 25 % of the range, open above 50 %. With
    `gripper_penalty_in_reward` the penalty is added to the reward instead (the reference's
    option). Sits between GripperActionWrapper (inside) and EEActionWrapper (outside).
    """

    CLOSED_BELOW = GRIPPER_CLOSED + 0.25 * GRIPPER_RANGE
    OPEN_ABOVE = GRIPPER_CLOSED + 0.50 * GRIPPER_RANGE

    def __init__(self, env, penalty: float = -0.1, gripper_penalty_in_reward: bool = False):
        super().__init__(env)
        self.penalty = float(penalty)
        self.gripper_penalty_in_reward = gripper_penalty_in_reward

    def penalty_for(self, gripper_position: float, command: float) -> float:
        command = float(command) - 1.0
        useless = ((command < -0.5 and gripper_position < self.CLOSED_BELOW)
                   or (command > 0.5 and gripper_position > self.OPEN_ABOVE))
        return self.penalty if useless else 0.0

    def step(self, action):
        position = float(observed_joints_of(self.env)[-1])
        penalty = self.penalty_for(position, np.asarray(action).reshape(-1)[-1])
        observation, reward, terminated, truncated, info = self.env.step(action)
        if self.gripper_penalty_in_reward:
            reward = reward + penalty
        else:
            info["discrete_penalty"] = penalty
        return observation, reward, terminated, truncated, info


class JointMaskingActionSpace(gym.Wrapper):
    """Removes action dimensions: the policy acts on the dims where `mask` is true.

    Masked dims are filled with the middle of their range - 0 for a delta in [-1, 1], 1
    ("stay") for the gripper in [0, 2] (the reference fills zeros, which for the gripper would
    mean "close"). `info["action_intervention"]` is cut to the same dims, so a stored human
    action has the policy's shape.
    """

    def __init__(self, env, mask: Sequence[bool]):
        super().__init__(env)
        inner = env.action_space
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != inner.shape:
            raise ValueError(f"joint_masking_action_space has {mask.size} entries, the action "
                             f"space {inner.shape[0]}")
        if not mask.any():
            raise ValueError("joint_masking_action_space masks every action dimension")
        self.active_dims = np.flatnonzero(mask)
        self.fill = ((inner.low + inner.high) / 2.0).astype(inner.dtype)
        self.action_space = gym.spaces.Box(inner.low[self.active_dims],
                                           inner.high[self.active_dims], dtype=inner.dtype)

    def action(self, action) -> np.ndarray:
        full = self.fill.copy()
        full[self.active_dims] = np.asarray(action, dtype=full.dtype).reshape(-1)
        return full

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(self.action(action))
        human = info.get("action_intervention")
        if human is not None:
            info["action_intervention"] = np.asarray(human)[..., self.active_dims]
        return observation, reward, terminated, truncated, info

