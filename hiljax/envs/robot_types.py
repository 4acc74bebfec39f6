"""The robot types `robot.type` can name: one small registry (type -> builder, kinematics, kind).

Adding an arm is one module under hiljax.hardware.robots and one entry here. Builders import
what they need when called, so a config check never loads MuJoCo or a serial driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class RobotType:
    name: str
    real: bool  # a real arm: real time at the env's fps, torque safety, calibration
    kinematics: str | None  # the arm table of hiljax.kinematics the EE wrappers use
    build: Callable | None  # (robot config, fps) -> Robot; None: built by its own env


def _sim_so100(cfg, fps: float):
    from hiljax.envs.sim import SimRobot  # MuJoCo only when asked for
    from hiljax.envs.sim.task import CubeSpawn

    spawn = CubeSpawn(x_range=cfg.cube_x_range, y_range=cfg.cube_y_range,
                      yaw_noise_deg=cfg.cube_yaw_deg)
    return SimRobot(cameras=cfg.camera_names, image_size=cfg.image_size, control_dt=1.0 / fps,
                    seed=cfg.seed, render=bool(cfg.cameras), cube_spawn=spawn)


def _fake(cfg, fps: float):
    from hiljax.envs.fake_robot import FakeTaskRobot

    return FakeTaskRobot(cameras=cfg.camera_names, image_size=(cfg.image_size, cfg.image_size),
                         control_dt=1.0 / fps)


def _servo_arm(arm: str) -> Callable:
    def build(cfg, fps: float):
        from hiljax.hardware.robots import ServoArm, ServoArmConfig

        return ServoArm(ServoArmConfig(
            type=arm, port=cfg.port, id=cfg.id, calibration_dir=cfg.calibration_dir,
            disable_torque_on_disconnect=cfg.disable_torque_on_disconnect,
            max_relative_target=cfg.max_relative_target, use_degrees=cfg.use_degrees,
            cameras=dict(cfg.cameras),
            # motor -> [min, max] (lists from JSON; ServoArmConfig makes tuples and checks them)
            joint_limits=getattr(cfg, "joint_limits", None)))

    return build


ROBOT_TYPES: dict[str, RobotType] = {t.name: t for t in (
    RobotType("sim_so100", real=False, kinematics="so100", build=_sim_so100),
    RobotType("fake", real=False, kinematics="so100", build=_fake),
    RobotType("gym_hil", real=False, kinematics=None, build=None),  # hiljax.envs.gym_hil
    RobotType("so100", real=True, kinematics="so100", build=_servo_arm("so100_follower")),
    RobotType("so101", real=True, kinematics="so100", build=_servo_arm("so101_follower")),
    RobotType("moss", real=True, kinematics="moss", build=_servo_arm("moss_follower")),
    RobotType("koch", real=True, kinematics="koch", build=_servo_arm("koch_follower")),
)}
