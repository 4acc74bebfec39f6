"""`python -m hiljax.learner` as ONE learner over two processes (two "hosts" on this machine,
jax.distributed + gloo): process 0 serves a real ZeroMQ actor, both insert what it sends, train
in lockstep, and end with the same parameters; process 0 alone checkpoints."""

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


def test_two_processes_are_one_learner(tmp_path):
    config = dataclasses.replace(learner_config(tmp_path), transport="zmq", save_freq=10**6)
    save_config(config, tmp_path / "learner.json")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "HILJAX_COORDINATOR": f"127.0.0.1:{free_port()}", "HILJAX_NUM_PROCESSES": "2"}
    processes = [subprocess.Popen(
        [sys.executable, "-m", "hiljax.learner", "--config", str(tmp_path / "learner.json"),
         "--max-steps", "6"], cwd=ROOT, env={**env, "HILJAX_PROCESS_ID": str(i)},
        stdout=open(tmp_path / f"process{i}.log", "w"), stderr=subprocess.STDOUT)
        for i in range(2)]
    try:
        address_file = Path(config.output_dir) / "learner_address"
        deadline = time.monotonic() + 120
        while not (address_file.exists() and address_file.read_text().strip()):
            assert time.monotonic() < deadline, (tmp_path / "process0.log").read_text()[-3000:]
            assert all(p.poll() is None for p in processes), \
                (tmp_path / "process0.log").read_text()[-3000:]
            time.sleep(0.2)
        actor = make_actor_transport("zmq", address_file.read_text().strip())
        assert actor.ready(timeout=30)
        rng = np.random.default_rng(0)
        for _ in range(3):
            actor.send_transitions(episode(rng))
        codes = [p.wait(timeout=180) for p in processes]
        actor.close()
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    logs = [(tmp_path / f"process{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    run = Path(config.output_dir)
    digests = [(run / "final_params_sha256").read_text(),
               (run / "process_1" / "final_params_sha256").read_text()]
    assert digests[0] == digests[1]  # the replicas agree
    assert int(load_checkpoint(run / "checkpoints", with_buffers=False).agent.step) == 6
    assert not (run / "process_1" / "checkpoints").exists()
    for metrics in (run / "metrics.jsonl", run / "process_1" / "metrics.jsonl"):
        train = [json.loads(x) for x in metrics.read_text().splitlines() if '"train"' in x]
        assert train[-1]["step"] == 6 and train[-1]["buffer_online"] == 30  # same episodes
