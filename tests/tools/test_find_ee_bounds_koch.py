"""`python -m hiljax.find_ee_bounds --teleop leader` with a Koch: follower and leader are six
emulated Dynamixel servos each on a pseudo-terminal. The leader is read in degrees (LeRobot's
Koch leader reads -100..100), so the follower goes to the leader's very joint angles."""

from __future__ import annotations

import json
import time

import numpy as np

from hiljax.find_ee_bounds import main
from hiljax.hardware.motors.calibration import save_calibration
from tests.control.test_leader_koch import (
    calibration,
    koch_arm,
    move_by_hand,
    read_pose,
    tip,
    torques,
)
from tests.tools.helpers import ROOT, TIMEOUT_S, ToolSession

TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
POSES = [(10.0, 30.0, 40.0, 20.0, 0.0, 50.0), (-25.0, 50.0, 20.0, 45.0, 0.0, 50.0)]


def wait_until(session: ToolSession, done, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert session._thread.is_alive(), f"the tool ended before {what}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.01)


def test_the_koch_follower_follows_the_koch_leader_in_degrees(tmp_path, monkeypatch):
    monkeypatch.setattr("hiljax.find_ee_bounds.REDRAW_EVERY_S", 0.02)
    monkeypatch.setattr("hiljax.find_ee_bounds.PLAIN_REDRAW_EVERY_S", 0.02)
    follower = koch_arm("koch_follower", (0.0, 40.0, 50.0, 30.0, 0.0, 50.0))
    leader = koch_arm("koch_leader", POSES[0])
    save_calibration(tmp_path / "my_follower.json", calibration())
    save_calibration(tmp_path / "my_leader.json", calibration({"elbow_flex": 1}))
    data = json.loads(TEMPLATE.read_text())
    data["robot"].update(type="koch", port=follower.port, calibration_dir=str(tmp_path),
                         cameras=[])
    data["teleop"] = {"type": "koch_leader", "port": leader.port, "id": "my_leader",
                      "calibration_dir": str(tmp_path)}
    data["wrapper"].update(crop_params_dict=None, resize_size=None)
    config = tmp_path / "env_koch.json"
    config.write_text(json.dumps(data, indent=2))
    session = ToolSession(main, ["--config", str(config), "--teleop", "leader",
                                 "--warmup", "0.3", "--duration", "120", "--write"])
    try:
        session.expect("Recording.")
        visited = []
        for pose in POSES:
            move_by_hand(leader, pose)
            # To a tick or two: the degrees of both arms are the same ticks apart.
            wait_until(session, lambda p=pose: np.abs(read_pose(follower) - p).max() < 0.2,
                       f"the follower at {pose}")
            visited.append(tip(read_pose(follower)))
            since = len(session.screen.text())  # two tables on: a tick read it there
            session.wait_for(lambda screen: screen.count("shoulder_pan (deg)") >= 2,
                             "two more tables", since)
        session.press_enter()
        assert session.finish() == 0
    finally:
        session.abandon()
        follower.close()
        leader.close()
    assert torques(follower) == [0] * 6 and torques(leader) == [0] * 6
    written = json.loads(config.read_text())
    bounds = {k: np.asarray(v) for k, v in
              written["wrapper"]["ee_action_space_params"]["bounds"].items()}
    visited = np.stack(visited)
    assert np.all(bounds["min"] <= visited.min(0) + 1e-3)
    assert np.all(bounds["max"] >= visited.max(0) - 1e-3)
    pan = written["robot"]["joint_limits"]["shoulder_pan"]
    assert pan[0] <= -25.0 + 0.2 and pan[1] >= 10.0 - 0.2
