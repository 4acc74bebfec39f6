"""`python -m hiljax.virtual_robot`: starts, prints its port, writes the calibration, answers on
the link, and leaves cleanly on SIGTERM / SIGINT."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hiljax.hardware.motors.calibration import load_calibration
from hiljax.hardware.virtual import VirtualSO100
from hiljax.hardware.virtual import protocol as p
from tests.hardware.test_virtual_protocol import Client

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str, stdin=None) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hiljax.virtual_robot", *args], cwd=ROOT,
                            env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_on_the_link_and_stops_cleanly(tmp_path, signum):
    link, calibration_file = tmp_path / "so100", tmp_path / "calibration" / "follower.json"
    process = start("--type", "so100", "--link", str(link), "--calibrated",
                    "--calibration-file", str(calibration_file), "--faults", "error=6:1")
    try:
        line = process.stdout.readline()
        assert line.strip().endswith(str(link)), (line, process.stderr.read())
        assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
        assert load_calibration(calibration_file) == VirtualSO100().calibration()
        client = Client(str(link))
        try:
            assert client.request(p.instruction_packet(1, p.READ, bytes([56, 2])), 8) == \
                p.status_packet(1, 0, (2047).to_bytes(2, "little"))
            assert client.request(p.instruction_packet(6, p.PING), 6) == p.status_packet(6, 1)
        finally:
            client.close()
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not link.exists() and not link.is_symlink()
    assert "Traceback" not in process.stderr.read()


def test_cli_refuses_bad_faults():
    process = start("--faults", "explode=1")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "bad fault" in err


def test_cli_serves_a_leader_that_stdin_moves_by_hand(tmp_path):
    from hiljax.hardware.robots import ServoArm, ServoArmConfig

    link, leader_link = tmp_path / "follower", tmp_path / "leader"
    process = start("--link", str(link), "--calibrated", "--leader-link", str(leader_link),
                    "--leader-calibration-file", str(tmp_path / "leaders" / "my_leader.json"),
                    stdin=subprocess.PIPE)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert lines[0].strip().endswith(str(link)), (lines, process.stderr.read())
        assert "leader" in lines[1] and lines[1].strip().endswith(str(leader_link))
        leader = ServoArm(ServoArmConfig(type="so101_leader", port=str(leader_link),
                                         id="my_leader", calibration_dir=str(tmp_path / "leaders")))
        leader.connect()
        try:
            assert abs(leader.read_joint_positions()[2]) < 0.5
            process.stdin.write("elbow_flex 30\nnonsense\n")
            process.stdin.flush()
            deadline = time.monotonic() + 10
            while abs(leader.read_joint_positions()[2] - 30.0) > 0.5:
                assert time.monotonic() < deadline, "the leader did not move"
                time.sleep(0.05)
        finally:
            leader.disconnect()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not link.exists() and not leader_link.exists()
    err = process.stderr.read()
    assert "Traceback" not in err and "ignored 'nonsense'" in err


def test_cli_refuses_a_leader_calibration_without_a_leader():
    process = start("--leader-calibration-file", "/tmp/never.json")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "--leader-link" in err
