"""The learner's pipelined loop (ingest thread, prefetched device batches, donated rounds, no
per-round sync), the device choice and the trace. Nothing here asserts a time."""

import json
import threading

import jax
import numpy as np
import pytest

from hiljax.config import ConfigError
from hiljax.learner import run
from hiljax.run.device import process_env, select_learner_device
from hiljax.run.pipeline import BatchPrefetcher, Tracer
from tests.test_learner import episode, open_pair

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["cpu", "device"])
def pair(tmp_path, request):
    yield from open_pair(tmp_path, storage_device=request.param)


def test_pipelined_loop_ingests_trains_and_pushes(pair):
    learner, actor = pair
    rng = np.random.default_rng(0)
    learner.start_pipeline(prefetch=2)
    for _ in range(4):
        actor.send_transitions(episode(rng))
    first = learner.agent.step
    metrics = None
    for _ in range(2000):  # the ingest thread fills the buffer, then rounds run
        metrics = learner.step() or metrics
        if learner.step_count >= 12:
            break
    learner.stop_pipeline()
    assert learner.step_count == int(learner.agent.step) == 12  # the host mirror is exact
    assert first.is_deleted()  # the first agent's buffers were donated to a round
    assert learner.counters["transitions"] == 40 and len(learner.online) == 40
    assert np.isfinite(float(metrics["critic_loss"]))
    assert actor.latest_parameters()[0] >= 1
    lines = [json.loads(x) for x in (learner.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in lines if x["kind"] == "train"]
    assert train and all(x["steps_per_s"] > 0 and x["batch_wait_ms"] >= 0 for x in train[1:])
    learner.save()  # the pipeline is stopped: a consistent checkpoint


def test_run_loop_stops_cleanly_and_writes_a_trace(pair, tmp_path):
    learner, actor = pair
    if learner.config.policy.storage_device == "device":
        pytest.skip("one storage is enough for the trace")
    rng = np.random.default_rng(1)
    for _ in range(3):
        actor.send_transitions(episode(rng))
    stop = threading.Event()
    trace = Tracer(str(tmp_path / "trace"), after=2, rounds=3)
    run(learner, stop, max_steps=8, trace=trace)
    assert learner.step_count == 8
    assert list((tmp_path / "trace").rglob("*.trace.json.gz"))
    assert (learner.run_dir / "checkpoints" / "LATEST").exists()


def test_prefetch_thread_errors_reach_the_loop():
    def broken():
        raise ValueError("buffer gone")

    prefetch = BatchPrefetcher(broken, depth=1)
    with pytest.raises(RuntimeError, match="prefetching failed"):
        prefetch.next(timeout=5)
    prefetch.close()


def test_prefetched_batches_are_on_the_device_in_order():
    counter = iter(range(100))
    prefetch = BatchPrefetcher(lambda: {"x": np.full(3, next(counter), np.float32)}, depth=2)
    batches = [prefetch.next() for _ in range(5)]
    prefetch.close()
    assert all(isinstance(b["x"], jax.Array) for b in batches)
    assert [float(b["x"][0]) for b in batches] == [0, 1, 2, 3, 4]


def test_actors_stay_off_the_gpu_and_learners_do_not_preallocate():
    base = {"PATH": "/bin"}
    assert process_env("actor", "gpu", base)["JAX_PLATFORMS"] == "cpu"
    learner = process_env("learner", "auto", base)
    assert "JAX_PLATFORMS" not in learner  # JAX picks the accelerator when it has one
    assert learner["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert process_env("learner", "cpu", base)["JAX_PLATFORMS"] == "cpu"
    assert process_env("learner", "gpu", base)["JAX_PLATFORMS"] == "cuda"


def test_gpu_without_a_gpu_is_a_clear_error():
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no GPU"):
        select_learner_device("gpu")
    assert select_learner_device("auto").platform == "cpu"
