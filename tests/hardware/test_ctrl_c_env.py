"""Ctrl-C (SIGINT) while make_robot_env steps a real arm: the SO-100 driver on the virtual arm's
pseudo-terminal, real-time pacing on, in a child process running a person's episode loop with no
try / finally and no env.close(). Wherever the signal lands (waiting out the control period, or
inside a bus transaction), every motor ends limp."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hiljax.hardware.virtual import VirtualSO100

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "configs" / "env_real_so100_template.json"
MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")

# argv: template, port, calibration dir, where ("wait" | "bus"). From the third step on, the
# child says where it is and stays there (the env's pacing sleep, or a goal write on the bus)
# until the parent's SIGINT arrives, so the signal lands exactly there.
EPISODE_SCRIPT = """
import sys, time, types
import numpy as np
import hiljax.envs.env as env_module
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env

template, port, calibration_dir, where = sys.argv[1:5]
cfg = load_env_config(template, [
    "robot.cameras=[]", "wrapper.crop_params_dict=null", "wrapper.resize_size=null",
    f"robot.port={port}", f"robot.calibration_dir={calibration_dir}", "robot.realtime=true",
    "wrapper.ee_action_space_params.control_mode=null", "wrapper.display_cameras=false",
    "wrapper.reset_time_s=0.2", "wrapper.control_time_s=600.0"])
env = make_robot_env(cfg)
assert env.unwrapped.realtime
steps = 0

def park(label):
    print(label, flush=True)
    time.sleep(60)  # the parent's SIGINT ends this

def paced_sleep(seconds):
    if where == "wait" and steps >= 2:
        park("in the pacing wait")
    time.sleep(seconds)

env_module.time = types.SimpleNamespace(perf_counter=time.perf_counter,
                                        monotonic=time.monotonic, sleep=paced_sleep)
bus = env.unwrapped.robot.bus
real_sync_write = bus.sync_write

def sync_write(*args, **kwargs):
    real_sync_write(*args, **kwargs)
    if where == "bus" and steps >= 2:
        park("in a bus transaction")

bus.sync_write = sync_write
env.reset()
while True:
    env.step(np.asarray([0.2, 0.0, 0.0, 1.0], np.float32))
    steps += 1
"""


@pytest.fixture
def virtual_arm(tmp_path):
    arm = VirtualSO100(calibrated=True)
    arm.start()
    arm.save_calibration(tmp_path / "my_follower.json")  # the template's robot.id
    yield arm
    arm.stop()


def torques(arm) -> dict[str, int]:
    return {m: arm.register(m, "Torque_Enable") for m in MOTORS}


@pytest.mark.parametrize("where, marker", [("wait", "in the pacing wait"),
                                           ("bus", "in a bus transaction")])
def test_ctrl_c_during_env_step_leaves_every_motor_limp(virtual_arm, tmp_path, where, marker):
    process = subprocess.Popen(
        [sys.executable, "-c", EPISODE_SCRIPT, str(TEMPLATE), virtual_arm.port, str(tmp_path),
         where],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        line = process.stdout.readline().strip()
        if line != marker:
            process.kill()
            pytest.fail(f"the child said {line!r}: {process.communicate()[1]}")
        assert set(torques(virtual_arm).values()) == {1}  # a stiff follower mid-episode
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert "KeyboardInterrupt" in stderr
    assert set(torques(virtual_arm).values()) == {0}, stderr
