"""Shared builders for the env tests: a fake-robot config and small stand-in callables."""

from __future__ import annotations

import dataclasses

import numpy as np

from hiljax.control import ScriptedController
from hiljax.envs.configs import (
    EEActionSpaceConfig,
    EnvWrapperConfig,
    HILSerlRobotEnvConfig,
    RobotConfig,
)
from hiljax.envs.fake_robot import FakeRobot, FakeTaskRobot

RESET_JOINTS = (0.0, 89.0, 75.0, 104.0, 0.0)
BOUNDS = {"min": (0.12, -0.12, 0.01), "max": (0.30, 0.12, 0.16)}


def fake_config(cameras=(), control_mode=None, **wrapper_fields) -> HILSerlRobotEnvConfig:
    """The fake robot with EE actions and a gripper, resetting to RESET_JOINTS instantly."""
    fields = {"use_gripper": True, "fixed_reset_joint_positions": RESET_JOINTS,
              "reset_time_s": 0.0, "control_time_s": 2.0,
              "ee_action_space_params": EEActionSpaceConfig(bounds=BOUNDS,
                                                            control_mode=control_mode)}
    fields.update(wrapper_fields)
    return HILSerlRobotEnvConfig(robot=RobotConfig(type="fake", cameras=tuple(cameras),
                                                   image_size=64),
                                 wrapper=EnvWrapperConfig(**fields), fps=10)


def replace_wrapper(cfg: HILSerlRobotEnvConfig, **fields) -> HILSerlRobotEnvConfig:
    return dataclasses.replace(cfg, wrapper=dataclasses.replace(cfg.wrapper, **fields))


def connected(robot_cls=FakeRobot, **kwargs):
    robot = robot_cls(**kwargs)
    robot.connect()
    return robot


def fixed_command_controller(deltas=(1.0, 0.0, 0.0), gripper="stay", intervene=True,
                             done_fn=None) -> ScriptedController:
    """A scripted person pushing a constant normalised command (target far along `deltas`)."""
    direction = np.asarray(deltas, dtype=np.float64)
    return ScriptedController(target_fn=lambda step, obs: direction, position_fn=lambda obs: np.zeros(3),
                              gain=1.0, gripper=gripper, end_on_reach=False, intervene=intervene,
                              done_fn=done_fn)


__all__ = ["BOUNDS", "RESET_JOINTS", "FakeRobot", "FakeTaskRobot", "connected", "fake_config",
           "fixed_command_controller", "replace_wrapper"]
