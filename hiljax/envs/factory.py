"""make_robot_env: the robot, HILSerlRobotEnv and the wrappers, in the reference's order.

    base env -> joint velocity -> currents -> EE pose -> LeRobot keys -> crop / resize
    -> reward classifier -> time limit -> gripper action -> gripper penalty -> EE action
    -> human intervention -> joint masking -> reset -> (batch axis)

(The reference's v0.3 order; joint masking, which it applied to joint-space actions, masks the
policy's EE action here.) `robot.type == "gym_hil"` builds LeRobot's gym-hil sim instead
(hiljax.envs.gym_hil). The reward classifier comes in as a plain callable (the env never
loads JAX models); a controller can be injected (e.g. a ScriptedController in tests).
`control_mode = "sim_operator"` builds the simulator's scripted person (hiljax.envs.sim.operator)
on the robot it drives.
"""

from __future__ import annotations

import dataclasses
import logging

import gymnasium as gym

from hiljax.control import InputController
from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig
from hiljax.envs.env import HILSerlRobotEnv
from hiljax.envs.robot_types import ROBOT_TYPES
from hiljax.envs.wrappers import (
    AddCurrentToObservation,
    AddJointVelocityToObservation,
    BatchCompatibleWrapper,
    ConvertToLeRobotObservation,
    EEActionWrapper,
    EEObservationWrapper,
    GripperActionWrapper,
    GripperPenaltyWrapper,
    ImageCropResizeWrapper,
    JointMaskingActionSpace,
    ResetWrapper,
    RewardClassifier,
    RewardWrapper,
    TimeLimitWrapper,
    make_intervention_wrapper,
)
from hiljax.kinematics import RobotKinematics

logger = logging.getLogger(__name__)

REAL_ROBOT_RESET_STEP_WAIT_S = 0.015  # the reference paces reset commands 15 ms apart


def make_robot(cfg: RobotConfig, fps: float):
    """The `Robot` a config names (connected by HILSerlRobotEnv), from the robot-type registry."""
    robot_type = ROBOT_TYPES[cfg.type]
    if robot_type.build is None:
        raise ValueError(f"robot.type {cfg.type!r} is built with its own env (make_robot_env)")
    return robot_type.build(cfg, fps)


def make_robot_env(cfg: HILSerlRobotEnvConfig, *, robot=None,
                   reward_classifier: RewardClassifier | None = None,
                   controller: InputController | None = None) -> gym.Env:
    """The full env stack for `cfg` (see the module docstring).

    robot: use this `Robot` instead of building cfg.robot's (a real arm's driver, a fake).
    reward_classifier: observation -> P(success); required when the config names a classifier.
    controller: the human (or scripted) input; default: the device of `control_mode`.
    """
    if cfg.robot.type == "gym_hil":
        from hiljax.envs.gym_hil import make_gym_hil_env

        return make_gym_hil_env(cfg, reward_classifier=reward_classifier, controller=controller)
    _check_classifier(cfg, reward_classifier)
    built = robot is None
    robot = robot if robot is not None else make_robot(cfg.robot, cfg.fps)
    try:
        return _wrapped_env(cfg, robot, controller, reward_classifier)
    except BaseException:
        # A stack that fails after a real arm connected (no gamepad, a leader on a wrong port)
        # must not leave it stiff: the robot we built goes limp and is closed.
        if built and robot.is_connected:
            robot.disconnect()
        raise


def _wrapped_env(cfg: HILSerlRobotEnvConfig, robot, controller, reward_classifier) -> gym.Env:
    wrapper = cfg.wrapper
    realtime = cfg.robot.is_real if cfg.robot.realtime is None else cfg.robot.realtime
    kinematics = RobotKinematics(cfg.robot.kinematics_table)
    env = HILSerlRobotEnv(robot, display_cameras=wrapper.display_cameras, fps=cfg.fps,
                          realtime=realtime, task_reward=cfg.robot.task_reward,
                          add_environment_state=cfg.robot.add_environment_state)
    env = _observation_wrappers(env, cfg, kinematics)
    env = _reward_and_time_wrappers(env, cfg, reward_classifier)
    env = action_wrappers(env, cfg, kinematics)
    if controller is None and wrapper.ee_action_space_params.control_mode == "sim_operator":
        controller = make_sim_operator(cfg, robot)
    env = _intervention_wrapper(env, cfg, controller)
    if wrapper.joint_masking_action_space is not None:
        env = JointMaskingActionSpace(env, wrapper.joint_masking_action_space)
    env = ResetWrapper(env, reset_pose=wrapper.fixed_reset_joint_positions,
                       reset_time_s=wrapper.reset_time_s,
                       open_gripper_on_reset=wrapper.open_gripper_on_reset,
                       step_wait_s=REAL_ROBOT_RESET_STEP_WAIT_S if realtime else 0.0,
                       realtime=realtime)
    if wrapper.batch_compatible:
        env = BatchCompatibleWrapper(env)
    return env


def _check_classifier(cfg: HILSerlRobotEnvConfig, reward_classifier) -> None:
    if cfg.reward_classifier_pretrained_path is not None and reward_classifier is None:
        raise ValueError(
            f"reward_classifier_pretrained_path is set ({cfg.reward_classifier_pretrained_path})"
            " but no reward_classifier was passed: hiljax.envs never loads JAX models; load it "
            "with hiljax.classifier and pass make_robot_env(cfg, reward_classifier=predict_fn)")


def _observation_wrappers(env, cfg: HILSerlRobotEnvConfig, kinematics) -> gym.Env:
    wrapper = cfg.wrapper
    if wrapper.add_joint_velocity_to_observation:
        env = AddJointVelocityToObservation(env, fps=cfg.fps)
    if wrapper.add_current_to_observation:
        env = AddCurrentToObservation(env)
    if wrapper.add_ee_pose_to_observation:
        env = EEObservationWrapper(env, wrapper.ee_action_space_params.bounds, kinematics)
    env = ConvertToLeRobotObservation(env)
    if wrapper.crop_params_dict is not None or wrapper.resize_size is not None:
        env = ImageCropResizeWrapper(env, wrapper.crop_params_dict, wrapper.resize_size)
    return env


def _reward_and_time_wrappers(env, cfg: HILSerlRobotEnvConfig, reward_classifier) -> gym.Env:
    if reward_classifier is not None:
        env = RewardWrapper(env, reward_classifier, threshold=cfg.reward_classifier_threshold,
                            mode=cfg.reward_classifier_mode)
    return TimeLimitWrapper(env, control_time_s=cfg.wrapper.control_time_s, fps=cfg.fps)


def action_wrappers(env, cfg: HILSerlRobotEnvConfig, kinematics) -> gym.Env:
    """The EE action path (gripper, EE deltas -> joint targets) over a joint-target env."""
    wrapper = cfg.wrapper
    if wrapper.use_gripper:
        env = GripperActionWrapper(env, quantization_threshold=wrapper.gripper_quantization_threshold)
        if wrapper.gripper_penalty is not None:
            env = GripperPenaltyWrapper(env, penalty=wrapper.gripper_penalty,
                                        gripper_penalty_in_reward=wrapper.gripper_penalty_in_reward)
    return EEActionWrapper(env, wrapper.ee_action_space_params, use_gripper=wrapper.use_gripper,
                           kinematics=kinematics)


def make_sim_operator(cfg: HILSerlRobotEnvConfig, robot) -> InputController:
    """The scripted person of control_mode "sim_operator", reading `robot` (a SimRobot)."""
    from hiljax.envs.sim.operator import SimOperator  # MuJoCo only when asked for

    if cfg.robot.type != "sim_so100" or not cfg.wrapper.use_gripper:
        raise ValueError(
            "control_mode 'sim_operator' is the scripted person of the MuJoCo pick-and-lift: it "
            f"needs robot.type 'sim_so100' and wrapper.use_gripper true (got {cfg.robot.type!r},"
            f" use_gripper {cfg.wrapper.use_gripper})")
    params = cfg.wrapper.ee_action_space_params
    return SimOperator(robot, cfg.wrapper.sim_operator,
                       step_sizes=(params.x_step_size, params.y_step_size, params.z_step_size),
                       bounds=params.bounds, roll_step_size=params.roll_step_size)


def _intervention_wrapper(env, cfg: HILSerlRobotEnvConfig, controller) -> gym.Env:
    params = cfg.wrapper.ee_action_space_params
    if controller is None and params.control_mode in ("leader", "leader_automatic"):
        controller = make_leader(cfg)
    return make_intervention_wrapper(env, params.control_mode, cfg.wrapper.use_gripper, controller,
                                     use_roll=params.roll_step_size is not None)


def make_leader(cfg: HILSerlRobotEnvConfig) -> InputController:
    """The leader-arm controller of `cfg.teleop` (connected when the wrapper starts it)."""
    from hiljax.control.leader import LeaderSettings, make_leader_controller
    from hiljax.hardware.robots import ServoArmConfig

    teleop, params = cfg.teleop, cfg.wrapper.ee_action_space_params
    settings = LeaderSettings(**{f.name: getattr(teleop, f.name)
                                 for f in dataclasses.fields(LeaderSettings)
                                 if hasattr(teleop, f.name)})
    return make_leader_controller(
        ServoArmConfig(type=teleop.type, port=teleop.port, id=teleop.id,
                       calibration_dir=teleop.calibration_dir),
        step_sizes=(params.x_step_size, params.y_step_size, params.z_step_size),
        use_gripper=cfg.wrapper.use_gripper, control_mode=params.control_mode,
        kinematics=cfg.robot.kinematics_table, settings=settings,
        roll_step_deg=params.roll_step_size)
