"""`robot.joint_limits` (motor -> [min, max] in the arm's units): what the config accepts, its
JSON round trip, and how find_ee_bounds turns the seen joint ranges into it (--joint-margin,
joints that never moved, the reset pose outside)."""

from __future__ import annotations

import io
import json
import logging
import math

import numpy as np
import pytest

from hiljax.config import ConfigError, FrozenMapping, from_dict, to_dict
from hiljax.envs.configs import HILSerlRobotEnvConfig, RobotConfig, load_env_config
from hiljax.find_ee_bounds import WorkspaceTracker, new_joint_limits
from hiljax.hardware.robots import MOTOR_NAMES
from hiljax.run.setup_tools import Console
from tests.tools.helpers import ROOT

TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
LIMITS = {"shoulder_pan": [-30.5, 40.0], "elbow_flex": [10, 120], "gripper": [0, 100]}


def real(**fields) -> RobotConfig:
    return RobotConfig(type="so101", port="/dev/ttyACM0", cameras=(), **fields)


def test_joint_limits_are_frozen_numbers_and_round_trip_through_json(tmp_path):
    robot = real(joint_limits=LIMITS)
    assert isinstance(robot.joint_limits, FrozenMapping)
    assert robot.joint_limits == {"shoulder_pan": (-30.5, 40.0), "elbow_flex": (10.0, 120.0),
                                  "gripper": (0.0, 100.0)}
    assert real().joint_limits is None  # the calibration's limits
    assert from_dict(RobotConfig, to_dict(robot)) == robot
    hash(robot)  # configs stay hashable
    data = json.loads(TEMPLATE.read_text())
    data["robot"]["joint_limits"] = LIMITS
    path = tmp_path / "env.json"
    path.write_text(json.dumps(data))
    cfg = load_env_config(path)
    assert cfg.robot.joint_limits == robot.joint_limits
    assert from_dict(HILSerlRobotEnvConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    assert load_env_config(path, ["robot.joint_limits=null"]).robot.joint_limits is None


@pytest.mark.parametrize("limits, message", [
    ({"elbow": [0, 10]}, "unknown motors \\['elbow'\\]"),
    ({"elbow_flex": [10, 10]}, "min < max"),
    ({"elbow_flex": [20, 10]}, "min < max"),
    ({"elbow_flex": [0, math.inf]}, "finite"),
    ({"elbow_flex": [math.nan, 10]}, "finite"),
    ({"elbow_flex": [0, 10, 20]}, "\\[min, max\\]"),
    ({"elbow_flex": [False, 10]}, "\\[min, max\\]"),
    ({"gripper": [-5, 100]}, "0 \\(closed\\) .. 100"),
    ({"gripper": [0, 120]}, "0 \\(closed\\) .. 100"),
])
def test_bad_joint_limits_are_refused(limits, message):
    with pytest.raises(ConfigError, match=message):
        real(joint_limits=limits)


def test_a_string_or_a_list_is_refused_by_the_loader():
    for value in ("10..20", [0, 10]):
        with pytest.raises(ConfigError, match="joint_limits"):
            from_dict(RobotConfig, {"type": "so101", "port": "/dev/ttyACM0", "cameras": [],
                                    "joint_limits": value})
    with pytest.raises(ConfigError, match="joint_limits"):
        from_dict(RobotConfig, {"type": "so101", "port": "/dev/ttyACM0", "cameras": [],
                                "joint_limits": {"elbow_flex": ["a", "b"]}})


def test_motor_names_are_only_checked_for_a_real_arm():
    assert RobotConfig(type="fake", joint_limits={"joint_a": [0, 1]}).joint_limits == {
        "joint_a": (0.0, 1.0)}


# --------------------------------------------------------------------------- from the ranges
def tracker_of(rows) -> WorkspaceTracker:
    tracker = WorkspaceTracker(MOTOR_NAMES)
    for joints in rows:
        tracker.add(np.asarray(joints, np.float64), np.zeros(3))
    return tracker


SEEN = [(-20.04, 80.0, 60.0, 30.0, 5.0, 3.0), (35.01, 80.5, 120.0, 70.0, 5.2, 97.0)]


def test_seen_ranges_round_outwards_widen_by_the_margin_and_skip_still_joints():
    limits, still = tracker_of(SEEN).joint_limits(margin=0.0)
    assert limits == {"shoulder_pan": [-20.1, 35.1], "elbow_flex": [60.0, 120.0],
                      "wrist_flex": [30.0, 70.0], "gripper": [3.0, 97.0]}
    assert still == ["shoulder_lift", "wrist_roll"]  # moved 0.5 and 0.2 degrees
    limits, _ = tracker_of(SEEN).joint_limits(margin=5.0)
    assert limits["shoulder_pan"] == [-25.1, 40.1]
    assert limits["gripper"] == [0.0, 100.0]  # widened, but kept in the gripper's 0..100
    assert real(joint_limits=limits).joint_limits["gripper"] == (0.0, 100.0)


def test_written_limits_keep_the_configs_own_for_still_joints_and_warn_about_the_reset(caplog):
    data = json.loads(TEMPLATE.read_text())
    data["robot"].update(cameras=[], joint_limits={"shoulder_lift": [70, 100],
                                                   "shoulder_pan": [-90, 90]})
    data["wrapper"].update(crop_params_dict=None, resize_size=None)
    cfg = from_dict(HILSerlRobotEnvConfig, data)  # reset pose: [0, 89, 75, 104, 0, 100]
    out = io.StringIO()
    with caplog.at_level(logging.WARNING):
        limits = new_joint_limits(cfg, tracker_of(SEEN), 0.0, Console(io.StringIO(), out))
    assert limits == {"shoulder_pan": [-20.1, 35.1], "shoulder_lift": [70.0, 100.0],
                      "elbow_flex": [60.0, 120.0], "wrist_flex": [30.0, 70.0],
                      "gripper": [3.0, 97.0]}
    assert list(limits) == [m for m in MOTOR_NAMES if m in limits]  # the motors' order
    assert "Not limited (moved less than 1): shoulder_lift, wrist_roll (the config's limits " \
           "kept)" in out.getvalue()
    assert "outside the joint limits on wrist_flex, gripper" in caplog.text
    assert real(joint_limits=limits).joint_limits  # what --write writes loads


def test_nothing_moved_and_no_limits_before_writes_none():
    cfg = from_dict(HILSerlRobotEnvConfig, {"robot": to_dict(real())})
    still = tracker_of([(0, 0, 0, 0, 0, 50)])
    assert new_joint_limits(cfg, still, 0.0, Console(io.StringIO(), io.StringIO())) is None
