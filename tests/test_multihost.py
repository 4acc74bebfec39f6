"""One learner over two hosts: two CPU processes joined by `jax.distributed` (gloo collectives),
two devices each, every process feeding its half of each global batch.

After three UTD rounds both processes must hold the same parameters, target parameters and
optimiser states, equal to float tolerance to a single-process, single-device run over the
whole batches (computed here while the two workers run).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from hiljax.agents.sac import SACAgent
from tests.multihost_worker import CONFIG, GLOBAL_BATCH, ROUNDS, flat, global_batches
from tests.sac_helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
PROCESSES, LOCAL_DEVICES = 2, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reference() -> dict[str, np.ndarray]:
    config = tiny_config(**CONFIG)
    agent = SACAgent.create(config, jax.random.key(0))
    for batch in global_batches(config):
        agent, metrics = agent.update(batch)
    state = {"params": agent.params, "target_params": agent.target_params,
             "opt_states": agent.opt_states}
    return flat(jax.device_get({"state": state, "metrics": metrics}))


@pytest.mark.timeout(120)
def test_two_processes_learn_as_one(tmp_path):
    from jax._src.lib import _jax

    if not hasattr(_jax, "make_gloo_tcp_collectives"):
        pytest.skip("this jaxlib has no gloo CPU collectives (make_gloo_tcp_collectives)")
    port = _free_port()
    # Optimisation level 0: a third of the compile time; the reference below is compiled at
    # the default level, so the comparison also spans code generation.
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={LOCAL_DEVICES} "
                        "--xla_backend_optimization_level=0"}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.multihost_worker", str(port),
                                 str(pid), str(PROCESSES), str(tmp_path)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
               for pid in range(PROCESSES)]
    try:
        reference = _reference()
        outputs = [w.communicate(timeout=100)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for pid, (w, out) in enumerate(zip(workers, outputs)):
        assert w.returncode == 0, f"process {pid} failed:\n{out[-4000:]}"

    for pid in range(PROCESSES):
        seen = json.loads((tmp_path / f"process{pid}.json").read_text())
        assert seen.pop("process0_local_ok", pid != 0), "process 0 alone could not read its replica"
        assert seen == {
            "process_index": pid, "process_count": PROCESSES,
            "device_count": PROCESSES * LOCAL_DEVICES, "local_device_count": LOCAL_DEVICES,
            "step": ROUNDS, "params_global": True, "batch_global_rows": GLOBAL_BATCH,
            "batch_local_rows": [GLOBAL_BATCH // (PROCESSES * LOCAL_DEVICES)],
            "broadcast_ok": True,
        }, seen
    results = [dict(np.load(tmp_path / f"process{pid}.npz")) for pid in range(PROCESSES)]
    assert results[0].keys() == results[1].keys() == reference.keys()
    assert any(k.startswith("['metrics']['critic_loss']") for k in reference)
    for name, expected in reference.items():
        # Both hosts run the same replicated update on the same all-reduced gradients.
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
        np.testing.assert_allclose(results[0][name], expected, rtol=1e-5, atol=1e-5,
                                   err_msg=name)
