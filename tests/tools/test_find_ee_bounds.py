"""`python -m hiljax.find_ee_bounds` against a virtual SO-100 on a real pseudo-terminal: the
follower of the real-arm template config, torque off, joints moved by hand by the test; or
driven from a second virtual SO-100, the leader, moved by hand (--teleop leader).

Each pose is held until the live table shows it (so no sample depends on timing); the written
bounds must hold the FK of every pose, the rest of the config must be untouched and
make_robot_env must accept the result, and the arm must end limp whatever happened.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import threading

import numpy as np
import pytest

from hiljax.control.scripted import ScriptedController
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.envs.wrappers.action import EEActionWrapper
from hiljax.find_ee_bounds import WorkspaceTracker, main
from hiljax.hardware.robots import MOTOR_NAMES
from hiljax.hardware.virtual import VirtualSO100
from hiljax.kinematics import RobotKinematics
from tests.tools.helpers import ROOT, TIMEOUT_S, ToolSession, tool_process

TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
ARM_ID = "my_follower"  # the template's robot.id
START = (0.0, 90.0, 90.0, 60.0, 0.0, 50.0)
POSES = [(30.0, 70.0, 60.0, 40.0, 10.0, 20.0), (-35.0, 110.0, 120.0, 80.0, -10.0, 80.0),
         (10.0, 95.0, 100.0, 30.0, 0.0, 50.0)]
MARGIN = 0.02
ROW = re.compile(r"^(\w+) \((?:deg|%)\)\s*\|\s*(-?[\d.]+) \|", re.MULTILINE)


@pytest.fixture
def arm(tmp_path):
    arm = VirtualSO100(calibrated=True, pose=START)
    arm.start()
    arm.save_calibration(tmp_path / f"{ARM_ID}.json")
    yield arm
    arm.stop()


@pytest.fixture
def config(arm, tmp_path):
    """The template with this arm's port and calibration directory, as a person edits it, and
    no cameras (the env built from it at the end has none here)."""
    data = json.loads(TEMPLATE.read_text())
    data["robot"].update(port=arm.port, calibration_dir=str(tmp_path), cameras=[])
    data["wrapper"].update(crop_params_dict=None, resize_size=None)
    path = tmp_path / "env.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


@pytest.fixture
def sessions(monkeypatch):
    # The table is redrawn every REDRAW_EVERY_S (a new one every PLAIN_REDRAW_EVERY_S when
    # stdout is not a terminal); faster changes nothing but the test's wall time.
    monkeypatch.setattr("hiljax.find_ee_bounds.REDRAW_EVERY_S", 0.02)
    monkeypatch.setattr("hiljax.find_ee_bounds.PLAIN_REDRAW_EVERY_S", 0.02)
    started = []

    def start(argv) -> ToolSession:
        started.append(ToolSession(main, argv))
        return started[-1]

    yield start
    for session in started:  # a failed test must not leave the tool blocked on its input
        session.abandon()


def tip(joints) -> np.ndarray:
    return RobotKinematics("so100").fk_gripper_tip(np.asarray(joints[:5], np.float64))[:3, 3]


def hold_pose(session: ToolSession, arm: VirtualSO100, pose,
              follower: VirtualSO100 | None = None) -> np.ndarray:
    """Put the joints of `arm` there by hand and wait until the table shows every one of them
    (within a tick; with a leader, once the `follower` got there); returns the tip there (FK of
    the recorded arm's true joints)."""
    since = len(session.screen.text())
    for motor, value in zip(MOTOR_NAMES, pose):
        arm.move_by_hand(motor, value)

    def shown(screen: str) -> bool:
        rows = dict(ROW.findall(screen)[-len(MOTOR_NAMES):])
        return len(rows) == len(MOTOR_NAMES) and all(
            abs(float(rows[m]) - v) <= 0.15 for m, v in zip(MOTOR_NAMES, pose))

    session.wait_for(shown, f"the table at {pose}", since)
    return tip((follower or arm).joint_positions())


def assert_limp(arm: VirtualSO100) -> None:
    assert {m: arm.register(m, "Torque_Enable") for m in MOTOR_NAMES} == dict.fromkeys(
        MOTOR_NAMES, 0)


def without_bounds(data: dict) -> dict:
    """The config less what --write writes (the EE bounds and the joint limits)."""
    data = json.loads(json.dumps(data))
    del data["wrapper"]["ee_action_space_params"]["bounds"]
    data["robot"].pop("joint_limits", None)
    return data


def test_the_written_bounds_hold_every_visited_pose(arm, config, sessions):
    original = json.loads(config.read_text())
    session = sessions(["--config", str(config), "--teleop", "none", "--duration", "120",
                        "--margin", str(MARGIN), "--write"])
    session.expect("Torque is off")
    visited = np.stack([hold_pose(session, arm, pose) for pose in (START, *POSES)])
    session.press_enter()  # before the duration: ENTER stops too
    assert session.finish() == 0
    assert_limp(arm)

    written = json.loads(config.read_text())
    bounds = {k: np.asarray(v) for k, v in
              written["wrapper"]["ee_action_space_params"]["bounds"].items()}
    assert np.all(bounds["min"] <= visited.min(0) - MARGIN + 1e-3)
    assert np.all(bounds["max"] >= visited.max(0) + MARGIN - 1e-3)
    # Tight: the box of the poses plus the margin, give or take a tick of every joint.
    np.testing.assert_allclose(bounds["min"], visited.min(0) - MARGIN, atol=2e-3)
    np.testing.assert_allclose(bounds["max"], visited.max(0) + MARGIN, atol=2e-3)
    assert without_bounds(written) == without_bounds(original)
    assert list(written) == list(original)  # the file's order too
    assert "max_ee (m)" in session.screen.text()
    # Every joint moved: each one's seen range (poses held to a tick), rounded outwards.
    poses = np.array([START, *POSES])
    limits = written["robot"]["joint_limits"]
    assert list(limits) == list(MOTOR_NAMES)
    for index, name in enumerate(MOTOR_NAMES):
        low, high = limits[name]
        assert poses[:, index].min() - 0.2 <= low <= poses[:, index].min() + 0.1
        assert poses[:, index].max() - 0.1 <= high <= poses[:, index].max() + 0.2

    cfg = load_env_config(config)
    env = make_robot_env(cfg, controller=ScriptedController(lambda *_: (0, 0, 0),
                                                            lambda *_: (0, 0, 0)))
    try:
        wrapper = env
        while not isinstance(wrapper, EEActionWrapper):
            wrapper = wrapper.env
        np.testing.assert_array_equal(wrapper.bounds["min"], bounds["min"])
        assert cfg.robot.joint_limits == {k: tuple(v) for k, v in limits.items()}
    finally:
        env.close()
    assert_limp(arm)


def test_duration_with_closed_input_as_its_own_process(arm, config, tmp_path):
    """Non-interactive (`< /dev/null`): --duration ends it, --output leaves the config alone,
    while a person (a thread) keeps moving the elbow."""
    original = config.read_text()
    output = tmp_path / "with_bounds.json"
    stop = threading.Event()

    def person():
        for step in range(10_000):
            if stop.wait(0.02):
                return
            arm.move_by_hand("elbow_flex", 90.0 + 20.0 * np.sin(step / 5.0))

    mover = threading.Thread(target=person, daemon=True)
    mover.start()
    try:
        process = tool_process("find_ee_bounds", "--config", str(config), "--duration", "1.5",
                               "--margin", "0.01", "--output", str(output))
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        stop.set()
        mover.join()
    assert process.returncode == 0, err
    assert config.read_text() == original
    bounds = load_env_config(output).wrapper.ee_action_space_params.bounds
    start = tip(START)
    assert np.all(np.asarray(bounds["min"]) < start) and np.all(start < bounds["max"])
    assert "Wrote wrapper.ee_action_space_params.bounds" in out
    assert_limp(arm)


def test_ctrl_c_shows_the_bounds_writes_nothing_and_leaves_the_arm_limp(arm, config):
    original = config.read_text()
    process = tool_process("find_ee_bounds", "--config", str(config), "--write",
                           stdin=subprocess.PIPE)  # a pipe that stays open: only Ctrl-C ends it
    try:
        line = ""
        while "current" not in line:  # the live table is up: the arm is being recorded
            line = process.stdout.readline()
            assert line, f"the tool ended early: {process.stderr.read()}"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "max_ee (m)" in out and "not written" in err
    assert config.read_text() == original
    assert_limp(arm)


def test_closed_input_without_duration_is_an_error(arm, config, sessions, caplog):
    original = config.read_text()
    session = sessions(["--config", str(config), "--write"])
    session.expect("Torque is off")
    with caplog.at_level(logging.ERROR):
        session.close_input()
        assert session.finish() == 1
    assert "give --duration" in caplog.text
    assert config.read_text() == original
    assert_limp(arm)


def test_a_tip_that_never_moved_gives_no_bounds(arm, config, sessions, caplog):
    original = config.read_text()
    session = sessions(["--config", str(config), "--duration", "0.3", "--write"])
    with caplog.at_level(logging.ERROR):
        assert session.finish() == 1
    assert "thinner than 5 mm along x, y, z" in caplog.text
    assert config.read_text() == original
    assert_limp(arm)


def test_a_simulated_robot_is_refused(tmp_path, caplog):
    path = tmp_path / "sim.json"
    shutil.copy(ROOT / "configs" / "env_sim.json", path)
    with caplog.at_level(logging.ERROR):
        assert main(["--config", str(path)]) == 2
    assert "not a real arm" in caplog.text


def test_a_missing_port_is_an_error(arm, config, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["--config", str(config), "--set", f"robot.port={tmp_path / 'nothing'}",
                     "--duration", "1"])
    assert code == 1 and "nothing" in caplog.text


def test_tracker_bounds_round_outwards_and_refuse_a_flat_box():
    tracker = WorkspaceTracker(MOTOR_NAMES)
    tracker.add(np.zeros(6), np.array([0.10004, -0.20004, 0.05]))
    tracker.add(np.ones(6), np.array([0.20006, 0.10001, 0.0520]))
    with pytest.raises(ValueError, match="thinner than 5 mm along z"):
        tracker.bounds(margin=0.0)
    assert tracker.bounds(margin=0.01) == {"min": [0.09, -0.2101, 0.04],
                                           "max": [0.2101, 0.1101, 0.062]}


# --------------------------------------------------------------------------- --teleop leader
# The leader's poses all swing the tip to one side (y < -0.1 m), and the follower starts at
# START (y = 0): the warm-up drives it over, and the bounds must not hold where it came from.
LEADER_POSES = [(20.0, 80.0, 80.0, 50.0, 0.0, 50.0), (40.0, 100.0, 110.0, 60.0, 0.0, 30.0),
                (25.0, 70.0, 60.0, 70.0, 0.0, 70.0)]
LEADER_ID = "my_leader"


@pytest.fixture
def leader(tmp_path):
    leader = VirtualSO100(calibrated=True, pose=LEADER_POSES[0])
    leader.start()
    leader.save_calibration(tmp_path / f"{LEADER_ID}.json")
    yield leader
    leader.stop()


def leader_config(follower: VirtualSO100, tmp_path, teleop: dict | None):
    """The template as a person edits it for the leader: ports, calibration directories. Its
    cameras (/dev/video0, /dev/video2, absent here) stay: the tool takes no picture."""
    data = json.loads(TEMPLATE.read_text())
    data["robot"].update(port=follower.port, calibration_dir=str(tmp_path))
    data["teleop"] = teleop
    path = tmp_path / "env_leader.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def test_the_follower_follows_the_leader_and_its_workspace_is_written(arm, leader, tmp_path,
                                                                       sessions):
    config = leader_config(arm, tmp_path, {"type": "so101_leader", "port": leader.port,
                                           "id": LEADER_ID, "calibration_dir": str(tmp_path)})
    session = sessions(["--config", str(config), "--teleop", "leader", "--warmup", "1.0",
                        "--duration", "120", "--margin", str(MARGIN), "--write"])
    session.expect("Recording.")
    assert_limp(leader)  # the person moves it
    np.testing.assert_allclose(arm.joint_positions(), LEADER_POSES[0], atol=0.3)  # caught up
    visited = np.stack([hold_pose(session, leader, pose, follower=arm) for pose in LEADER_POSES])
    session.press_enter()
    assert session.finish() == 0
    assert_limp(arm)
    assert_limp(leader)

    bounds = {k: np.asarray(v) for k, v in
              load_env_config(config).wrapper.ee_action_space_params.bounds.items()}
    assert np.all(bounds["min"] <= visited.min(0) - MARGIN + 1e-3)
    assert np.all(bounds["max"] >= visited.max(0) + MARGIN - 1e-3)
    # Between two poses the follower moves in joint space, so its tip leaves the box of the
    # poses a little (it was there: recorded); far less than where the warm-up started.
    assert np.all(bounds["min"] >= visited.min(0) - MARGIN - 0.03)
    assert np.all(bounds["max"] <= visited.max(0) + MARGIN + 0.03)
    assert bounds["max"][1] < tip(START)[1]  # where the warm-up started is not in the box


def test_leader_flags_as_its_own_process_with_a_person_moving_the_leader(
        arm, leader, tmp_path, monkeypatch):
    """No teleop block: --leader-port / --leader-id, the leader's calibration where LeRobot
    keeps it. A thread (the person) sweeps the leader's elbow once recording started and notes
    where the FOLLOWER really went: the bounds hold every one of those tips."""
    calibrations = tmp_path / "lerobot_calibration"
    leader.save_calibration(calibrations / "teleoperators" / "so_leader" / f"{LEADER_ID}.json")
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(calibrations))
    config = leader_config(arm, tmp_path, None)
    recording, done, seen = threading.Event(), threading.Event(), []

    def person():
        # Each pose is held a moment, and only the settled follower is noted: the tool samples
        # at 30 Hz, so a tip seen mid-move could fall between two of its samples under load.
        recording.wait(TIMEOUT_S)
        for elbow in (80.0, 95.0, 110.0, 120.0, 100.0, 80.0, 60.0):
            leader.move_by_hand("elbow_flex", elbow)
            if done.wait(0.25):
                return
            seen.append(tip(arm.joint_positions()))

    mover = threading.Thread(target=person, daemon=True)
    mover.start()
    process = tool_process("find_ee_bounds", "--config", str(config), "--teleop", "leader",
                           "--leader-port", leader.port, "--leader-id", LEADER_ID,
                           "--warmup", "0.5", "--duration", "3.0", "--write")
    try:
        for line in process.stdout:  # the follower catches up with the leader first
            if line.startswith("Recording."):
                break
        recording.set()
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        recording.set()
        done.set()
        mover.join()
        process.kill()
    assert process.returncode == 0, err
    assert "Wrote wrapper.ee_action_space_params.bounds" in out
    bounds = load_env_config(config).wrapper.ee_action_space_params.bounds
    seen = np.stack(seen)
    assert np.ptp(seen[:, 2]) > 0.02  # the follower did move with the leader
    assert np.all(np.asarray(bounds["min"]) <= seen.min(0) + 2e-3)
    assert np.all(np.asarray(bounds["max"]) >= seen.max(0) - 2e-3)
    assert_limp(arm)
    assert_limp(leader)


def test_the_leader_must_be_named(arm, tmp_path, caplog):
    config = leader_config(arm, tmp_path, None)
    with caplog.at_level(logging.ERROR):
        assert main(["--config", str(config), "--teleop", "leader"]) == 2
    assert "--leader-port" in caplog.text
    with pytest.raises(SystemExit) as exit_info:  # a leader flag without --teleop leader
        main(["--config", str(config), "--leader-port", "/dev/ttyACM1"])
    assert exit_info.value.code == 2
