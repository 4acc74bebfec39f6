"""`python -m hiljax.learner` as ONE learner over two processes (two "hosts" on this machine,
jax.distributed + gloo): process 0 serves a real ZeroMQ actor, both insert what it sends, train
in lockstep, and end with the same parameters; process 0 alone checkpoints; both resume from
its checkpoint."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hiljax.config import save_config
from hiljax.run.checkpoint import load_checkpoint
from tests.test_learner import episode, learner_config
from transport.factory import make_actor_transport

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_learners(tmp_path, env: dict, phase: str, *args: str) -> list[subprocess.Popen]:
    return [subprocess.Popen(
        [sys.executable, "-m", "hiljax.learner", "--config", str(tmp_path / "learner.json"),
         *args], cwd=ROOT, env={**env, "HILJAX_PROCESS_ID": str(i)},
        stdout=open(tmp_path / f"{phase}_process{i}.log", "w"), stderr=subprocess.STDOUT)
        for i in range(2)]


def finish(tmp_path, phase: str, processes: list[subprocess.Popen]) -> None:
    try:
        codes = [p.wait(timeout=180) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    logs = [(tmp_path / f"{phase}_process{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]


def final_digests(run: Path) -> list[str]:
    return [(run / "final_params_sha256").read_text(),
            (run / "process_1" / "final_params_sha256").read_text()]


def test_two_processes_are_one_learner_and_resume_as_one(tmp_path):
    config = dataclasses.replace(learner_config(tmp_path), transport="zmq", save_freq=10**6)
    save_config(config, tmp_path / "learner.json")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "HILJAX_COORDINATOR": f"127.0.0.1:{free_port()}", "HILJAX_NUM_PROCESSES": "2",
           # The resumed pair reuses the first pair's compiled programs.
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    processes = start_learners(tmp_path, env, "first", "--max-steps", "6")
    address_file = Path(config.output_dir) / "learner_address"
    deadline = time.monotonic() + 120
    while not (address_file.exists() and address_file.read_text().strip()):
        log = (tmp_path / "first_process0.log").read_text()[-3000:]
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), log
        time.sleep(0.2)
    actor = make_actor_transport("zmq", address_file.read_text().strip())
    try:
        assert actor.ready(timeout=30)
        rng = np.random.default_rng(0)
        for _ in range(3):
            actor.send_transitions(episode(rng))
        finish(tmp_path, "first", processes)
    finally:
        actor.close()
    run = Path(config.output_dir)
    digests = final_digests(run)
    assert digests[0] == digests[1]  # the replicas agree
    saved = load_checkpoint(run / "checkpoints", with_buffers=False)
    assert int(saved.agent.step) == 6
    assert not (run / "process_1" / "checkpoints").exists()  # process 0 alone checkpoints
    for metrics in (run / "metrics.jsonl", run / "process_1" / "metrics.jsonl"):
        train = [json.loads(x) for x in metrics.read_text().splitlines() if '"train"' in x]
        assert train[-1]["step"] == 6 and train[-1]["buffer_online"] == 30  # same episodes
    # Each process samples its own rows: its own generator, each one's state in the checkpoint.
    states = saved.extra["rng_by_process"]
    assert len(states) == 2 and states[0] != states[1] and states[0] == saved.extra["rng"]

    # Resumed: process 1 gets process 0's checkpoint (its own disk has none) and both continue.
    finish(tmp_path, "resumed", start_learners(tmp_path, env, "resumed", "--resume",
                                               "--max-steps", "10"))
    assert (run / "process_1" / "checkpoints" / "step_000000006" / "COMPLETE").exists()
    resumed = final_digests(run)
    assert resumed[0] == resumed[1] != digests[0]
    assert int(load_checkpoint(run / "checkpoints", with_buffers=False).agent.step) == 10
