"""The supervisor restarts an actor that crashed, but not one that cannot run its config."""

import subprocess
import sys

from hiljax.run.train_config import TrainConfig
from hiljax.train import CONFIG_ERROR_EXIT, Supervisor


def _exited(code: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    process.wait()
    return process


def _supervisor(tmp_path, actor_code: int) -> tuple[Supervisor, list[int]]:
    config = TrainConfig(output_dir=str(tmp_path / "run"))
    supervisor = Supervisor(config, tmp_path / "run.json", resume=False)
    supervisor.learner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    supervisor.actors[0] = _exited(actor_code)
    started: list[int] = []
    supervisor.start_actor = started.append  # record restarts instead of spawning an actor
    return supervisor, started


def test_a_crashed_actor_is_restarted(tmp_path):
    supervisor, started = _supervisor(tmp_path, actor_code=1)
    try:
        assert supervisor.check()
        assert started == [0] and supervisor.restarts == 1
    finally:
        supervisor.learner.kill()


def test_an_actor_with_a_config_it_cannot_run_stops_the_run(tmp_path, caplog):
    supervisor, started = _supervisor(tmp_path, actor_code=CONFIG_ERROR_EXIT)
    try:
        assert not supervisor.check()
        assert started == []
        assert "cannot run with this config" in caplog.text
    finally:
        supervisor.learner.kill()
