"""The MJCF arm matches hiljax.kinematics: same axes, link origins, signs, zero pose, limits."""

import mujoco
import numpy as np
import pytest

from hiljax.envs.sim.scene import build_scene_xml
from hiljax.kinematics import JOINT_NAMES, RobotKinematics

KINEMATICS = RobotKinematics("so100")


@pytest.fixture(scope="module")
def model_and_data():
    model = mujoco.MjModel.from_xml_string(build_scene_xml())
    return model, mujoco.MjData(model)


def _posed(model, data, joints_deg):
    for name, angle in zip(JOINT_NAMES, joints_deg):
        data.qpos[model.joint(name).qposadr[0]] = np.deg2rad(angle)
    mujoco.mj_kinematics(model, data)
    return data


def test_tip_site_matches_fk_for_random_joints(model_and_data, rng):
    model, data = model_and_data
    low, high = KINEMATICS.joint_limits_deg.T
    for joints in rng.uniform(low, high, size=(50, 5)):
        _posed(model, data, joints)
        tip = data.site("gripper_tip").xpos
        np.testing.assert_allclose(tip, KINEMATICS.fk_gripper_tip(joints)[:3, 3], atol=1e-3)


def test_gripper_orientation_matches_fk(model_and_data, rng):
    """The gripper body's x axis (the approach direction) is the tip frame's x axis."""
    model, data = model_and_data
    low, high = KINEMATICS.joint_limits_deg.T
    for joints in rng.uniform(low, high, size=(10, 5)):
        _posed(model, data, joints)
        approach = data.body("gripper").xmat.reshape(3, 3)[:, 0]
        np.testing.assert_allclose(approach, KINEMATICS.fk_gripper_tip(joints)[:3, 0], atol=1e-6)


def test_zero_pose_is_arm_stretched_forward(model_and_data):
    model, data = model_and_data
    _posed(model, data, np.zeros(5))
    np.testing.assert_allclose(data.site("gripper_tip").xpos, [0.44, 0.0, 0.07], atol=1e-9)


def test_joint_limits_and_actuator_ranges_match_kinematics(model_and_data):
    model, _ = model_and_data
    for i, name in enumerate(JOINT_NAMES):
        expected = np.deg2rad(KINEMATICS.joint_limits_deg[i])
        np.testing.assert_allclose(model.joint(name).range, expected, atol=1e-9)
        np.testing.assert_allclose(model.actuator(name).ctrlrange, expected, atol=1e-9)


def test_positive_lift_raises_the_tip(model_and_data):
    """Sign convention: +shoulder_lift raises the arm, +elbow_flex lowers the forearm."""
    model, data = model_and_data
    heights = [_posed(model, data, q).site("gripper_tip").xpos[2]
               for q in ([0, 0, 0, 0, 0], [0, 10, 0, 0, 0], [0, 0, 10, 0, 0])]
    assert heights[1] > heights[0] > heights[2]
