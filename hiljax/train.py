"""Train locally: start a learner and N actors as processes, supervise them, report progress.

    python -m hiljax.train [--config configs/sim_pick_lift.json] [--transport grpc|zmq]
                           [--num-actors N] [--resume] [--max-minutes M] [overrides...]

Without --config it trains on the MuJoCo simulator's pick-and-lift task (state observations,
scripted operator as the human). Logs go to <output_dir>/logs/; metrics to metrics.jsonl and
TensorBoard under <output_dir>. A crashed actor is restarted; Ctrl-C stops everything cleanly
(the learner writes a checkpoint on the way out; `--resume` continues from it).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from hiljax.run.device import process_env
from hiljax.run.train_config import TrainConfig, load_train_config, save_train_config
from transport.factory import NETWORK_KINDS

log = logging.getLogger("hiljax.train")
CONFIG_ERROR_EXIT = 2  # what the processes return for a config they cannot run
MAX_ACTOR_RESTARTS = 5


class Progress:
    """Reads new lines of metrics.jsonl: success and intervention rates over the last episodes."""

    def __init__(self, metrics_path: Path, window: int = 50):
        self.path, self.offset = metrics_path, 0
        self.episodes: deque = deque(maxlen=window)
        self.env_steps = self.learner_step = 0
        self.rounds_per_s = 0.0

    def update(self) -> None:
        if not self.path.exists():
            return
        with open(self.path) as f:
            f.seek(self.offset)
            lines = f.readlines()
            self.offset = f.tell()
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written; it is read whole next time
            if record.get("kind") == "actor":
                self.episodes.append((record.get("Episodic reward", 0.0) > 0.5,
                                      record.get("Intervention rate", 0.0)))
                self.env_steps = max(self.env_steps, int(record.get("step", 0)))
            elif record.get("kind") == "train":
                self.learner_step = int(record.get("step", 0))
                self.rounds_per_s = float(record.get("steps_per_s", 0.0))

    @property
    def success_rate(self) -> float:
        return sum(s for s, _ in self.episodes) / max(len(self.episodes), 1)

    @property
    def intervention_rate(self) -> float:
        return sum(i for _, i in self.episodes) / max(len(self.episodes), 1)

    def line(self) -> str:
        return (f"env steps {self.env_steps} | learner step {self.learner_step} "
                f"({self.rounds_per_s:.1f}/s) | last {len(self.episodes)} episodes: success "
                f"{100 * self.success_rate:.0f}%, interventions {100 * self.intervention_rate:.0f}%")


class Supervisor:
    def __init__(self, config: TrainConfig, config_path: Path, resume: bool):
        self.config, self.config_path, self.resume = config, config_path, resume
        self.run_dir = Path(config.output_dir)
        self.logs = self.run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.learner: subprocess.Popen | None = None
        self.actors: dict[int, subprocess.Popen] = {}
        self.restarts = 0
        self.address: str | None = None

    def _spawn(self, module: str, name: str, *args: str) -> subprocess.Popen:
        # The learner on the accelerator when there is one, actors on the CPU (hiljax.run.device)
        role = "learner" if module == "hiljax.learner" else "actor"
        env = process_env(role, self.config.learner.device)
        with open(self.logs / f"{name}.log", "a") as logfile:  # the child keeps its own copy
            return subprocess.Popen([sys.executable, "-m", module, "--config",
                                     str(self.config_path), *args], stdout=logfile,
                                    stderr=subprocess.STDOUT, env=env)

    def start_learner(self, timeout: float = 180.0) -> None:
        address_file = self.run_dir / "learner_address"
        address_file.unlink(missing_ok=True)  # a stale one from an earlier run would mislead
        self.learner = self._spawn("hiljax.learner", "learner", *(["--resume"] if self.resume else []))
        deadline = time.monotonic() + timeout
        while not (address_file.exists() and address_file.read_text().strip()):
            if self.learner.poll() is not None:
                raise RuntimeError(f"the learner exited (code {self.learner.returncode}); see "
                                   f"{self.logs / 'learner.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("the learner did not start in time; see its log")
            time.sleep(0.2)
        self.address = address_file.read_text().strip()
        log.info("learner up at %s (%s); logs in %s", self.address, self.config.transport,
                 self.logs)

    def start_actor(self, index: int) -> None:
        self.actors[index] = self._spawn("hiljax.actor", f"actor-{index}", "--learner-address",
                                         self.address, "--actor-index", str(index))

    def check(self) -> bool:
        """Restart crashed actors; False when the learner is gone."""
        if self.learner.poll() is not None:
            log.error("the learner exited (code %s); see %s", self.learner.returncode,
                      self.logs / "learner.log")
            return False
        for index, process in list(self.actors.items()):
            if process.poll() is not None:
                if process.returncode == CONFIG_ERROR_EXIT:
                    # A bad config or a backbone that differs from the learner's: a restart
                    # would fail the same way, so stop and say where to look.
                    log.error("actor %d cannot run with this config (code %d); see %s", index,
                              CONFIG_ERROR_EXIT, self.logs / f"actor-{index}.log")
                    return False
                if self.restarts >= MAX_ACTOR_RESTARTS:
                    log.error("actor %d keeps failing; see %s", index,
                              self.logs / f"actor-{index}.log")
                    return False
                self.restarts += 1
                log.warning("actor %d exited (code %s); restarting it", index, process.returncode)
                self.start_actor(index)
        return True

    def stop(self) -> None:
        """Actors first (they flush their episodes), then the learner (it checkpoints)."""
        for process in [*self.actors.values(), self.learner]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="TrainConfig JSON (default: the simulator run)")
    parser.add_argument("--transport", choices=NETWORK_KINDS)
    parser.add_argument("--num-actors", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--max-minutes", type=float, help="stop after this much wall-clock time")
    parser.add_argument("--max-env-steps", type=int, help="stop after this many env steps")
    parser.add_argument("--status-every", type=float, default=15.0, help="seconds")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for flag, name in ((args.transport, "transport"), (args.num_actors, "num_actors")):
        if flag is not None:
            overrides.append(f"{name}={json.dumps(flag)}")
    config = load_train_config(args.config, overrides)
    run_dir = Path(config.output_dir)
    if not args.resume and (run_dir / "checkpoints").exists():
        log.error("%s already holds a run: pass --resume, or set output_dir=...", run_dir)
        return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "train_config.json"
    save_train_config(config, config_path)

    supervisor = Supervisor(config, config_path, args.resume)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    progress = Progress(run_dir / "metrics.jsonl")
    started = time.monotonic()
    code = 0
    try:
        supervisor.start_learner()
        for index in range(config.num_actors):
            supervisor.start_actor(index)
        last_status = time.monotonic()
        while not stop.wait(1.0):
            if not supervisor.check():
                code = 1
                break
            progress.update()
            if time.monotonic() - last_status >= args.status_every:
                last_status = time.monotonic()
                log.info("%s | %.1f min", progress.line(), (time.monotonic() - started) / 60)
            if args.max_minutes and time.monotonic() - started > 60 * args.max_minutes:
                break
            if args.max_env_steps and progress.env_steps >= args.max_env_steps:
                break
    except RuntimeError as error:
        log.error("%s", error)
        code = 1
    finally:
        log.info("stopping...")
        supervisor.stop()
        progress.update()
        log.info("final: %s", progress.line())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
