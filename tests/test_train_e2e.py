"""`python -m hiljax.train` end to end on the MuJoCo simulator: real processes, real sockets."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["policy.online_step_before_learning=100", "policy.batch_size=32",
         "policy.critic_network_kwargs.hidden_dims=[32,32]",
         "policy.actor_network_kwargs.hidden_dims=[32,32]",
         "policy.discrete_critic_network_kwargs.hidden_dims=[32]",
         "actor_learner_config.policy_parameters_push_frequency=0.5",
         "learner.save_freq=100", "learner.log_freq=10", "env.wrapper.control_time_s=3.0"]


def _train(tmp_path, *args, timeout=240) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MUJOCO_GL": "egl", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hiljax.train", f"output_dir={tmp_path / 'run'}",
                             "--status-every", "2", *SMALL, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _finish(process, timeout=240) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # the supervisor stops its children on SIGTERM
            process.terminate()
            process.wait(timeout=90)
    assert process.returncode == 0, output
    return output


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_actors_over_grpc_survive_a_killed_actor_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    process = _train(tmp_path, "--num-actors", "2", "--max-env-steps", "900")
    try:
        deadline = time.monotonic() + 180
        while not _records_ready(run_dir, "actor", 2) and time.monotonic() < deadline:
            time.sleep(0.5)
        victim = _actor_pid(run_dir)
        os.kill(victim, signal.SIGKILL)  # the supervisor must restart it; the learner carries on
    finally:
        output = _finish(process)
    assert "restarting it" in output
    actors = _records(run_dir, "actor")
    assert len({r["client"] for r in actors}) >= 2  # several actors fed one learner
    train = _records(run_dir, "train")
    assert train and train[-1]["step"] >= 10
    # The buffer as the final checkpoint holds it (the last metrics line may predate the last
    # episodes ingested before the stop).
    final = sorted((run_dir / "checkpoints").glob("step_*/learner.json"))[-1]
    assert json.loads(final.read_text())["counters"]["transitions"] >= 900
    assert all(r["Episodic reward"] >= 0 for r in actors)
    latest = json.loads((run_dir / "checkpoints" / "LATEST").read_text())["checkpoint"]
    first_step = int(latest.split("_")[1])

    resumed = _train(tmp_path, "--resume", "--max-env-steps", str(train[-1]["buffer_online"] + 300))
    _finish(resumed)
    latest = json.loads((run_dir / "checkpoints" / "LATEST").read_text())["checkpoint"]
    assert int(latest.split("_")[1]) > first_step  # continued from the checkpoint, not afresh
    assert "checkpoint restored" in (run_dir / "logs" / "learner.log").read_text()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_actor_over_zeromq(tmp_path):
    run_dir = tmp_path / "run"
    _finish(_train(tmp_path, "--transport", "zmq", "--max-env-steps", "500"))
    assert _records(run_dir, "train") and _records(run_dir, "actor")
    assert (run_dir / "tensorboard").exists() and (run_dir / "checkpoints" / "LATEST").exists()


def test_existing_run_is_not_overwritten(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    process = _train(tmp_path, "--max-env-steps", "10")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "already holds a run" in output


def _records_ready(run_dir: Path, kind: str, count: int) -> bool:
    try:
        return len(_records(run_dir, kind)) >= count
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def _actor_pid(run_dir: Path) -> int:
    """The pid of actor 0, from the client id it reports (actor-<index>-<pid>)."""
    clients = {r["client"] for r in _records(run_dir, "actor")}
    return int(sorted(c for c in clients if c.startswith("actor-0-"))[0].rsplit("-", 1)[1])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(module: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MUJOCO_GL": "egl", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_actor_survives_a_learner_crash_and_restart(tmp_path):
    from hiljax.run.train_config import load_train_config, save_train_config

    port = _free_port()
    run_dir = tmp_path / "run"
    config = load_train_config(None, [*SMALL, f"output_dir={run_dir}", "learner.save_freq=20",
                                      # LeRobot's spelling (inside the policy) still works
                                      f"policy.actor_learner_config.learner_port={port}"])
    save_train_config(config, tmp_path / "train.json")
    learner = _spawn("hiljax.learner", "--config", str(tmp_path / "train.json"))
    actor = _spawn("hiljax.actor", "--config", str(tmp_path / "train.json"),
                   "--learner-address", f"127.0.0.1:{port}")
    try:
        _wait(lambda: (run_dir / "checkpoints" / "LATEST").exists(), 200, "a checkpoint")
        learner.kill()  # a crash: no goodbye, no final checkpoint
        learner.wait(timeout=30)
        before = len(_records(run_dir, "actor"))
        learner = _spawn("hiljax.learner", "--config", str(tmp_path / "train.json"), "--resume")
        _wait(lambda: len(_records(run_dir, "actor")) >= before + 3, 200,
              "episodes after the restart")
        assert actor.poll() is None  # the same actor process carried on
        clients = {r["client"] for r in _records(run_dir, "actor")}
        assert len(clients) == 1
    finally:
        for process in (actor, learner):
            process.send_signal(signal.SIGTERM)
        for process in (actor, learner):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
