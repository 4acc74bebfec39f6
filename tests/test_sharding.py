"""Data-parallel UTD rounds (hiljax.agents.sharding): one device and four give the same agent.

The test process has one CPU device (conftest), and XLA fixes the device count when JAX starts,
so the comparison runs in a subprocess with four host devices: from the same agent and the same
batches, three rounds on a 1-device mesh and three on a 4-device mesh (batch rows split 2 per
device) must agree to float tolerance - parameters, target parameters, optimiser states, metrics
- and come back replicated.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from hiljax.agents.sac import SACAgent
from hiljax.agents.sharding import make_mesh, replicate, shard_batch
from tests.sac_helpers import fill_buffer, tiny_config

ROOT = Path(__file__).resolve().parents[1]
ROUNDS, BATCH, DEVICES = 3, 8, 4
IMAGE_FEATURES = {"observation.state": (4,), "observation.images.front": (16, 16, 3),
                  "observation.images.wrist": (16, 16, 3)}
CASES = {
    # Keys used inside the round: actor sampling noise (both), REDQ critic subsampling (state),
    # DrQ shifts and encoder dropout (images, with the frozen small CNN).
    "state": {"utd_ratio": 2, "num_discrete_actions": 3, "num_critics": 3,
              "num_subsample_critics": 2},
    "images": {"input_features": IMAGE_FEATURES, "utd_ratio": 2, "image_augmentation_pad": 2},
}


def _batches(config):
    buffer = fill_buffer(config, 40)
    rng = np.random.default_rng(0)
    return [buffer.sample(BATCH, rng, num_batches=config.utd_ratio) for _ in range(ROUNDS)]


TOLERANCE = 1e-5  # |one - four| <= TOLERANCE * (1 + |one|), elementwise (numpy's allclose)


def _worst(a, b) -> dict:
    """Over two pytrees: the largest absolute difference and the largest difference in units of
    TOLERANCE * (1 + |a|) (at most 1 when they agree), with where it is."""
    worst = {"abs": 0.0, "ratio": 0.0, "where": ""}
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if not x.size:
            continue
        diff = np.where(np.isnan(x) & np.isnan(y), 0.0, np.abs(x - y))
        diff = np.nan_to_num(diff, nan=np.inf)
        ratio = float((diff / (TOLERANCE * (1.0 + np.abs(np.nan_to_num(x))))).max())
        if ratio > worst["ratio"]:
            worst["ratio"], worst["where"] = ratio, jax.tree_util.keystr(path)
        worst["abs"] = max(worst["abs"], float(diff.max()))
    return worst


def _state(agent):
    return {"params": agent.params, "target_params": agent.target_params,
            "opt_states": agent.opt_states}


def four_device_report(case: str) -> dict:
    """Run in a subprocess (4 CPU devices): differences and shardings, as JSON-able data."""
    assert jax.device_count() == DEVICES, jax.devices()
    config = tiny_config(**CASES[case])
    batches = _batches(config)
    start = SACAgent.create(config, jax.random.key(0))
    runs = {}
    for label, devices in (("one", jax.devices()[:1]), ("four", jax.devices())):
        mesh = make_mesh(devices)
        agent, metrics = replicate(start, mesh), []
        for batch in batches:
            sharded = shard_batch(batch, mesh)
            agent, m = agent.update(sharded)
            metrics.append(m)
        runs[label] = (agent, metrics, sharded)
    (one, m_one, _), (four, m_four, sharded) = runs["one"], runs["four"]
    outputs = jax.tree.leaves((_state(four), four.step, four.key, m_four[-1]))
    report = {
        "state": _worst(jax.device_get(_state(one)), jax.device_get(_state(four))),
        "metrics": _worst(jax.device_get(m_one), jax.device_get(m_four)),
        "metric_names": sorted(m_four[-1]),
        "steps": [int(one.step), int(four.step)],
        "keys_equal": bool(np.array_equal(jax.random.key_data(one.key),
                                          jax.random.key_data(four.key))),
        "outputs_spec_empty": all(x.sharding.spec == P() for x in outputs),
        "outputs_replicated": all(x.is_fully_replicated and len(x.sharding.device_set)
                                  == DEVICES for x in outputs),
        "batch_spec_data": all(x.sharding.spec == P(None, "data")
                               for x in jax.tree.leaves(sharded)),
        "batch_shard_rows": sorted({s.data.shape[1] for x in jax.tree.leaves(sharded)
                                    for s in x.addressable_shards}),
        "batch_devices": sorted({len(x.sharding.device_set) for x in jax.tree.leaves(sharded)}),
    }
    try:
        shard_batch(jax.tree.map(lambda x: x[:, :6], batches[0]), make_mesh())
        report["indivisible_error"] = None
    except ValueError as error:
        report["indivisible_error"] = str(error)
    return report


@pytest.fixture(scope="module")
def report() -> dict:
    """{case: four_device_report(case)}, the cases in concurrent subprocesses (XLA compiles
    on one core)."""
    # LLVM optimisation level 0: a third of the compile time (both runs use the same code
    # generation; the partitioning under test happens in XLA's HLO passes either way).
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES} "
                        "--xla_backend_optimization_level=0"}
    processes = {}
    for case in CASES:
        code = ("import json; from tests.test_sharding import four_device_report; "
                f"print('REPORT' + json.dumps(four_device_report({case!r})))")
        processes[case] = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True)
    reports = {}
    try:
        for case, process in processes.items():
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, f"{case}:\n{err[-4000:]}"
            line = [x for x in out.splitlines() if x.startswith("REPORT")][-1]
            reports[case] = json.loads(line.removeprefix("REPORT"))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return reports


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", sorted(CASES))
def test_four_devices_match_one_device(report, case):
    r = report[case]
    assert r["steps"] == [ROUNDS, ROUNDS] and r["keys_equal"]
    assert r["state"]["ratio"] <= 1.0, r["state"]
    assert r["metrics"]["ratio"] <= 1.0, r["metrics"]
    assert "critic_loss" in r["metric_names"] and "actor_loss" in r["metric_names"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_outputs_are_replicated_and_batch_sharded(report, case):
    r = report[case]
    assert r["outputs_spec_empty"] and r["outputs_replicated"]
    assert r["batch_spec_data"]
    assert r["batch_devices"] == [DEVICES] and r["batch_shard_rows"] == [BATCH // DEVICES]


@pytest.mark.timeout(300)
def test_indivisible_batch_is_a_clear_error(report):
    error = report["state"]["indivisible_error"]
    assert error and "divisible" in error and "6 rows over 4 devices" in error


def test_mesh_and_batch_without_round_axes():
    """In this (1-device) process: the mesh, and a clear error for arrays that lack the
    (utd_ratio, batch_size) axes (no compilation here: the rounds run in the subprocess)."""
    mesh = make_mesh()
    assert mesh.axis_names == ("data",) and mesh.devices.size == jax.device_count() == 1
    with pytest.raises(ValueError, match="utd_ratio, batch_size"):
        shard_batch({"rewards": np.zeros(4, np.float32)}, mesh)
    with pytest.raises(ValueError, match="utd_ratio, batch_size"):
        shard_batch({"rewards": np.zeros((1, 4), np.float32),
                     "dones": np.zeros((1, 5), np.float32)}, mesh)
