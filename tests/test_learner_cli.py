"""`python -m hiljax.learner` as a real process, over real gRPC and ZeroMQ sockets."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hiljax.config import ActorLearnerConfig, LearnerConfig, save_config
from tests.test_learner import episode, learner_config
from transport.factory import make_actor_transport

ROOT = Path(__file__).resolve().parents[1]


def _start(config_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hiljax.learner", "--config", str(config_path),
                             *extra], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process.poll() is not None:
            raise AssertionError(f"learner exited while waiting for {what}:\n"
                                 f"{process.stdout.read()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}:\n{process.stdout.read()}")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["grpc", "zmq"])
def test_learner_process_trains_pushes_and_resumes(tmp_path, kind):
    config = learner_config(tmp_path)
    policy = config.policy
    network = ActorLearnerConfig(learner_port=0, policy_parameters_push_frequency=0.2)
    config = LearnerConfig(policy=policy, actor_learner_config=network,
                           output_dir=config.output_dir, save_freq=1000, log_freq=5)
    save_config(config, tmp_path / "learner.json")
    run_dir = Path(config.output_dir)

    process = _start(tmp_path / "learner.json", "--transport", kind)
    try:
        _exercise(process, run_dir, kind, tmp_path)
    finally:
        if process.poll() is None:  # never leave a learner running after a failed assertion
            process.kill()
            process.wait(timeout=30)


def _exercise(process, run_dir, kind, tmp_path):
    checkpoints = run_dir / "checkpoints"
    address = _wait_for(lambda: (run_dir / "learner_address").exists()
                        and (run_dir / "learner_address").read_text().strip(), 60, "address",
                        process)
    actor = make_actor_transport(kind, address)
    assert actor.ready(timeout=30)
    rng = np.random.default_rng(0)
    for _ in range(4):
        actor.send_transitions(episode(rng))
    # Version 0 (the initial parameters) comes first; then trained ones.
    trained = lambda: (p := actor.latest_parameters()) is not None and p[0] >= 1 and p  # noqa: E731
    version, payload = _wait_for(trained, 90, "trained parameters", process)
    assert version >= 1 and payload
    assert actor.flush(timeout=30)
    actor.close()
    _stop(process)
    assert (checkpoints / "LATEST").exists()
    saved = json.loads((checkpoints / json.loads((checkpoints / "LATEST").read_text())["checkpoint"]
                        / "learner.json").read_text())
    assert saved["counters"]["transition_payloads"] == 4 and saved["transport"]["duplicates"]

    refused = _start(tmp_path / "learner.json", "--transport", kind)
    assert refused.wait(timeout=60) != 0  # an existing run is never overwritten silently
    assert "already holds a run" in refused.stdout.read()

    step = int(json.loads((checkpoints / "LATEST").read_text())["checkpoint"].split("_")[1])
    resumed = _start(tmp_path / "learner.json", "--transport", kind, "--resume",
                     "--max-steps", str(step + 3))
    output, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, output
    assert "checkpoint restored" in output
    assert json.loads((checkpoints / "LATEST").read_text())["checkpoint"] == f"step_{step + 3:09d}"
