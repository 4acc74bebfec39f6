"""The learner process's data-parallel mode (learner.data_parallel): on four devices its rounds
give the one-device learner's agent, and its state stays replicated. XLA fixes the device count
when JAX starts, so the comparison runs in a subprocess with four host devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import dataclasses, json, sys, tempfile
from pathlib import Path
import jax, numpy as np
from hiljax.learner import Learner
from tests.test_learner import episode, learner_config
from transport.factory import make_actor_transport, make_learner_transport

def learner(parallel):
    root = Path(tempfile.mkdtemp())
    config = dataclasses.replace(learner_config(root), data_parallel=parallel, save_freq=10**6)
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    made = Learner.create(config, transport)
    actor = make_actor_transport("inproc", transport.address)
    actor.ready(timeout=5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        actor.send_transitions(episode(rng))
    made.ingest(timeout=2.0)
    for _ in range(4):
        made.step()  # no pipeline: both learners sample the same batches
    return made

one, four = learner(False), learner(True)
worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / (1 + np.abs(np.asarray(a)))))
            for a, b in zip(jax.tree.leaves(one.agent.params), jax.tree.leaves(four.agent.params)))
leaf = jax.tree.leaves(four.agent.params)[0]
print(json.dumps({"worst": worst, "devices": len(leaf.sharding.device_set),
                  "replicated": leaf.sharding.is_fully_replicated,
                  "steps": [one.step_count, four.step_count]}))
'''


@pytest.mark.timeout(300)
def test_four_devices_learn_what_one_does():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4 and result["replicated"]
    assert result["steps"] == [4, 4]
    assert result["worst"] < 1e-5
