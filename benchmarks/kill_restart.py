"""Exactly-once delivery across faults: SIGKILL the learner mid-stream (and actors), restart it
with --resume, and count every transition in its final replay buffer.

    .venv/bin/python benchmarks/kill_restart.py                       # grpc and zmq, 5 cycles each
    .venv/bin/python benchmarks/kill_restart.py --transport zmq --cycles 10
    .venv/bin/python benchmarks/kill_restart.py --no-journal          # no learner journal: the gap
    .venv/bin/python benchmarks/kill_restart.py --no-spool            # actors keep memory only

Real processes on 127.0.0.1: the learner is `hiljax.learner.main` (a tiny state policy, a
checkpoint every `--save-freq` rounds) with the write-ahead journal of hiljax.run.durability
attached as its one-line hook would (`--no-journal`: the learner as it is); two script actors
(numpy + the real actor transport, no JAX) send numbered 10-step episodes through
`transport.factory.make_actor_transport`, each episode's number written into every frame of its
`observation.state` (column 0), and log which episodes the transport acknowledged.

A cycle: stream for a random 1-3 s, SIGKILL the learner, restart it with --resume on the same
port (the actors queue meanwhile and resend after reconnecting); every other cycle one actor is
SIGKILLed too and replaced by a new actor process. At the end the actors flush, the learner
stops with SIGTERM (final checkpoint), and the final checkpoint's online buffer is counted:

- acknowledged episodes must each be there exactly once (10 rows): otherwise lost / duplicated;
- episodes a killed actor had queued but not seen acknowledged: with the actors' spool
  (transport.spool; the replacement takes over the killed actor's spool directory and resends
  them) each must be there exactly once too; with `--no-spool` they die with its memory, and
  each may be there once (the learner took it, the ack was lost) or not at all, never twice.

Prints the figures and ends with ONE line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EPISODE_STEPS = 10
STATE_DIM = 18  # the learner config below: 18-d state, 3 continuous + 1 discrete action
MARKER_BASE = 100_000  # marker = actor uid * MARKER_BASE + episode number (exact in float32)


# ---------------------------------------------------------------------------------------------
# The learner process (this file run as `_learner`: the real main, with the journal attached).


def _learner_process(argv: list[str]) -> int:
    journal = argv[0] == "--journal"
    from hiljax import learner as learner_module

    if journal:
        from hiljax.run.durability import attach_journal

        create = learner_module.Learner.create.__func__

        def create_with_journal(cls, config, transport):
            learner = create(cls, config, transport)
            attach_journal(learner, transport)  # the hook learner.main would call
            return learner

        learner_module.Learner.create = classmethod(create_with_journal)
    return learner_module.main(argv[1:])


def write_learner_config(path: Path, run_dir: Path, kind: str, port: int,
                         save_freq: int, learn: bool = True) -> Path:
    """A tiny state policy; `learn=False`: it never starts training (no round to compile: a
    learner that only receives, checkpoints and restarts, for a quick test)."""
    from hiljax.config import (
        ActorLearnerConfig,
        ActorNetworkConfig,
        CriticNetworkConfig,
        LearnerConfig,
        SACConfig,
        save_config,
    )

    policy = SACConfig(input_features={"observation.state": (STATE_DIM,)}, continuous_action_dim=3,
                       num_discrete_actions=3, latent_dim=16, batch_size=8, utd_ratio=1,
                       online_step_before_learning=20 if learn else 10**9,
                       online_buffer_capacity=200_000,
                       offline_buffer_capacity=1000,
                       critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16, 16)),
                       actor_network_kwargs=ActorNetworkConfig(hidden_dims=(16, 16)),
                       discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16,)))
    network = ActorLearnerConfig(learner_host="127.0.0.1", learner_port=port,
                                 policy_parameters_push_frequency=1.0)
    save_config(LearnerConfig(policy=policy, output_dir=str(run_dir), transport=kind,
                              save_freq=save_freq, log_freq=50, keep_checkpoints=3,
                              actor_learner_config=network, prefetch_batches=0), path)
    return path


class LearnerProcess:
    """Starts (and restarts) `python kill_restart.py _learner` on a fixed port."""

    def __init__(self, config: Path, run_dir: Path, kind: str, journal: bool, logs: Path):
        self.config, self.run_dir, self.kind, self.journal, self.logs = (
            config, run_dir, kind, journal, logs)
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, resume: bool, timeout: float = 120.0) -> float:
        """Start it and wait until it serves; returns the seconds that took."""
        address = self.run_dir / "learner_address"
        address.unlink(missing_ok=True)
        command = [sys.executable, __file__, "_learner",
                   "--journal" if self.journal else "--no-journal", "--config", str(self.config),
                   "--transport", self.kind, *(["--resume"] if resume else [])]
        log_file = open(self.logs / f"learner_{self.starts}.log", "w")  # noqa: SIM115
        # A restart reuses the first start's compiled round (the persistent compilation cache):
        # a restarted learner is back in seconds, as it would be on a machine with a warm cache.
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
               "JAX_COMPILATION_CACHE_DIR": str(self.run_dir.parent / "jax_cache"),
               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
        started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file,
                                        stderr=subprocess.STDOUT)
        self.starts += 1
        while not (address.exists() and address.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() - started > timeout:
                self.process.kill()
                raise RuntimeError(f"the learner did not start; see {log_file.name}:\n"
                                   + Path(log_file.name).read_text()[-3000:])
            time.sleep(0.05)
        return time.monotonic() - started

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


# ---------------------------------------------------------------------------------------------
# The script actor (this file run as `_actor`): numbered episodes, acknowledgements logged.


def make_episode(marker: int, rng: np.random.Generator) -> tuple[dict, dict]:
    frames = {"observation.state": rng.normal(size=(EPISODE_STEPS + 1, STATE_DIM))
              .astype(np.float32)}
    frames["observation.state"][:, 0] = marker  # every row of this episode says which it is
    actions = rng.uniform(-1, 1, (EPISODE_STEPS, 4)).astype(np.float32)
    actions[:, -1] = rng.integers(0, 3, EPISODE_STEPS)
    steps = {"actions": actions,
             "rewards": rng.normal(size=EPISODE_STEPS).astype(np.float32),
             "dones": np.eye(EPISODE_STEPS, dtype=bool)[-1],
             "truncateds": np.zeros(EPISODE_STEPS, bool),
             "is_intervention": np.zeros(EPISODE_STEPS, bool),
             "discrete_penalty": np.zeros(EPISODE_STEPS, np.float32)}
    return frames, steps


def _actor_process(argv: list[str]) -> int:
    """kind address uid log interval_s spool_dir|-: send episodes until SIGTERM, then flush."""
    from hiljax import wire
    from transport.errors import TransportFull
    from transport.factory import make_actor_transport

    kind, address, uid, log_path, interval = argv[0], argv[1], int(argv[2]), argv[3], float(argv[4])
    spool_dir = None if argv[5] == "-" else argv[5]
    transport = make_actor_transport(kind, address, client_id=f"bench-{uid}-{os.getpid()}",
                                     spool_dir=spool_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - line-buffered: a kill loses no line
    lock = threading.Lock()
    # transport seq -> marker, until acknowledged; first what a killed actor left in the spool
    # (those acknowledged before this snapshot are judged by the killed actor's log alone).
    sent: dict[int, int] = {entry.seq: _marker(wire, entry.payload)
                            for entry in transport._outgoing.snapshot()}

    def log_acks() -> None:
        with lock:  # the snapshot under the lock: a seq being put is not yet "not pending"
            pending = {entry.seq for entry in transport._outgoing.snapshot()}
            for seq in [s for s in sent if s not in pending]:
                log.write(f"acked {sent.pop(seq)}\n")

    def ack_loop() -> None:
        while not stop.wait(0.02):
            log_acks()

    threading.Thread(target=ack_loop, daemon=True).start()
    rng = np.random.default_rng(uid)
    seq, number = transport.recovered(), 0
    while not stop.is_set():
        marker = uid * MARKER_BASE + number
        payload = wire.encode_episode(*make_episode(marker, rng), sender=transport.client_id,
                                      seq=number)
        with lock:  # the transport's k-th put gets seq k: record it before the ack can come
            sent[seq] = marker
            try:
                transport.send_transitions(payload, timeout=0.5)
            except TransportFull:  # the learner is away and the queue is full: try again
                del sent[seq]
                continue
            log.write(f"sent {marker}\n")
        seq, number = seq + 1, number + 1
        stop.wait(interval)
    flushed = transport.flush(timeout=60)
    log_acks()
    log.write(f"flushed {int(flushed)}\n")
    transport.close()
    return 0 if flushed else 1


def _marker(wire, payload) -> int:
    return int(wire.decode_episode(payload).observations["observation.state"][0, 0])


class ActorProcess:
    def __init__(self, kind: str, address: str, uid: int, logs: Path, interval: float,
                 spool_dir: Path | None):
        self.uid, self.log, self.spool_dir = uid, logs / f"actor_{uid}.log", spool_dir
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "_actor", kind, address, str(uid), str(self.log),
             str(interval), str(spool_dir or "-")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=open(logs / f"actor_{uid}.err", "w"))  # noqa: SIM115
        self.killed = False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.killed = True

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)

    def outcome(self) -> tuple[set[int], set[int]]:
        """(markers sent, markers acknowledged) from the actor's log."""
        sent, acked = set(), set()
        text = self.log.read_text() if self.log.exists() else ""  # killed before its first send
        for line in text.splitlines():
            what, _, value = line.partition(" ")
            if what == "sent":
                sent.add(int(value))
            elif what == "acked":
                acked.add(int(value))
        return sent, acked


# ---------------------------------------------------------------------------------------------
# The experiment.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_checkpoint(run_dir: Path, step: int, learner: LearnerProcess,
                         timeout: float = 300.0) -> float:
    """Wait until a checkpoint of at least `step` rounds is complete; returns the seconds."""
    from hiljax.run.checkpoint_dir import complete_checkpoints

    started = time.monotonic()
    while not any(s >= step for s, _ in complete_checkpoints(run_dir / "checkpoints")):
        if learner.process.poll() is not None or time.monotonic() - started > timeout:
            raise RuntimeError(f"the learner saved no checkpoint of step {step}")
        time.sleep(0.1)
    return time.monotonic() - started


def _count_saves(logs: Path) -> int:
    return sum(p.read_text().count("checkpoint saved") for p in logs.glob("learner_*.log"))


def buffer_markers(run_dir: Path) -> dict[int, int]:
    """marker -> rows in the online buffer of the run's newest complete checkpoint."""
    from hiljax.run.checkpoint_dir import latest_checkpoint
    from hiljax.storage.array_file import read_array_file
    from hiljax.storage.buffer import FILE_FORMAT, FILE_VERSION

    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    _, arrays = read_array_file(checkpoint / "buffer_online.arrays", FILE_FORMAT, FILE_VERSION)
    markers, counts = np.unique(arrays["obs/observation.state"][:, 0], return_counts=True)
    return {int(m): int(c) for m, c in zip(markers, counts)}


def tally(actors: list[ActorProcess], counts: dict[int, int]) -> dict:
    """Compare what the actors logged with what the buffer holds.

    Unknown: in the buffer but logged as sent by nobody. With a spool, a killed actor can die
    between spooling an episode and logging it (its replacement then delivers it): those are
    counted apart, as `dead_actor_spooled_unlogged`, and must still be there exactly once."""
    acked, unacked_dead, sent_all = set(), set(), set()
    killed_spooled_uids = {actor.uid for actor in actors if actor.killed and actor.spool_dir}
    for actor in actors:
        sent, ok = actor.outcome()
        acked |= ok
        sent_all |= sent
        if actor.killed:
            unacked_dead |= sent - ok
    lost = sum(EPISODE_STEPS - min(counts.get(m, 0), EPISODE_STEPS) for m in acked)
    duplicated = sum(max(0, c - EPISODE_STEPS) for c in counts.values())
    partial = sum(1 for m in sent_all if 0 < counts.get(m, 0) < EPISODE_STEPS)
    unlogged = {m for m in counts if m not in sent_all}
    spooled_unlogged = {m for m in unlogged if m // MARKER_BASE in killed_spooled_uids}
    unknown = len(unlogged - spooled_unlogged)
    return {"episodes_acknowledged": len(acked),
            "transitions_acknowledged": len(acked) * EPISODE_STEPS,
            "transitions_in_buffer": sum(counts.values()),
            "transitions_lost": lost, "transitions_duplicated": duplicated,
            "episodes_partial": partial, "episodes_unknown": unknown,
            "dead_actor_unacked_episodes": len(unacked_dead),
            "dead_actor_unacked_delivered": sum(1 for m in unacked_dead if counts.get(m)),
            "dead_actor_unacked_lost": sum(1 for m in unacked_dead if not counts.get(m)),
            "dead_actor_spooled_unlogged": len(spooled_unlogged)}


def run_kill_cycles(transport: str, cycles: int, *, journal: bool = True, spool: bool = True,
                    num_actors: int = 2,
                    replace_actor_every: int = 2, stream_s: tuple[float, float] = (1.0, 3.0),
                    final_stream_s: float = 1.5, save_freq: int = 20, interval_s: float = 0.03,
                    warm: bool = True, learn: bool = True, seed: int = 0,
                    workdir: str | os.PathLike | None = None) -> dict:
    """Kill/restart the learner `cycles` times (replacing an actor every `replace_actor_every`
    cycles) while actors stream; returns the tally and timings. `warm`: first let the learner
    compile its round and save a periodic checkpoint (the kills then hit a learner that trains
    and checkpoints, and restarts reuse the compiled round); without the journal a learner
    killed before its first checkpoint cannot be resumed at all, so it must be warm.
    `learn=False`: the learner never trains (see write_learner_config); implies not warm.
    `spool`: each actor keeps its episodes on disk until acknowledged, and a replacement takes
    over the spool directory of the actor it replaces."""
    if not (journal or learn):
        raise ValueError("without the journal the learner must learn: its only checkpoints are "
                         "the periodic ones")
    warm = warm and learn
    rng = np.random.default_rng(seed)
    root = Path(workdir or tempfile.mkdtemp(prefix="kill_restart_"))
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    run_dir = root / "run"
    config = write_learner_config(root / "learner.json", run_dir, transport, _free_port(),
                                  save_freq, learn)
    learner = LearnerProcess(config, run_dir, transport, journal, logs)
    actors: list[ActorProcess] = []
    started = time.monotonic()
    restart_s = []
    try:
        first_start_s = learner.start(resume=False)
        address = (run_dir / "learner_address").read_text().strip()
        spools = [root / "spool" / f"actor-{n}" if spool else None for n in range(num_actors)]
        actors = [ActorProcess(transport, address, uid + 1, logs, interval_s, spools[uid])
                  for uid in range(num_actors)]
        live = list(actors)
        warm_s = (_wait_for_checkpoint(run_dir, save_freq, learner) if warm or not journal
                  else 0.0)
        for cycle in range(cycles):
            time.sleep(rng.uniform(*stream_s))
            learner.kill()
            if replace_actor_every and cycle % replace_actor_every == replace_actor_every - 1:
                victim = live.pop(int(rng.integers(len(live))))
                victim.kill()
                replacement = ActorProcess(transport, address, len(actors) + 1, logs,
                                           interval_s, victim.spool_dir)
                actors.append(replacement)
                live.append(replacement)
            time.sleep(rng.uniform(0.0, 0.5))  # the actors keep queueing meanwhile
            restart_s.append(learner.start(resume=True))
        time.sleep(final_stream_s)
        actor_codes = [actor.stop() for actor in live]
        learner_code = learner.stop()
    finally:
        for actor in actors:
            if actor.process.poll() is None:
                actor.process.kill()
        if learner.process is not None and learner.process.poll() is None:
            learner.process.kill()
    result = tally(actors, buffer_markers(run_dir))
    result.update({"transport": transport, "journal": journal, "spool": spool,
                   "cycles": cycles,
                   "actors_replaced": len(actors) - num_actors,
                   "actors_flushed": all(code == 0 for code in actor_codes),
                   "learner_exit": learner_code,
                   "first_start_s": round(first_start_s, 1), "warm_up_s": round(warm_s, 1),
                   "checkpoints_saved": _count_saves(logs),
                   "restart_s_mean": round(float(np.mean(restart_s)), 1) if restart_s else None,
                   "wall_s": round(time.monotonic() - started, 1), "workdir": str(root)})
    intact = (result["transitions_lost"] == 0 and result["transitions_duplicated"] == 0
              and (not spool or result["dead_actor_unacked_lost"] == 0))
    result["cycles_survived"] = cycles if intact else None
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_learner"]:
        return _learner_process(argv[1:])
    if argv[:1] == ["_actor"]:
        return _actor_process(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=("grpc", "zmq", "both"), default="both")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--no-journal", action="store_true", help="no learner journal")
    parser.add_argument("--no-spool", action="store_true",
                        help="actors keep unacknowledged episodes in memory only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    kinds = ("grpc", "zmq") if args.transport == "both" else (args.transport,)
    results = []
    for kind in kinds:
        result = run_kill_cycles(kind, args.cycles, journal=not args.no_journal,
                                 spool=not args.no_spool, seed=args.seed)
        if not args.keep:
            shutil.rmtree(result.pop("workdir"), ignore_errors=True)
        results.append(result)
        print(f"{kind}: {args.cycles} learner SIGKILL/restart cycles "
              f"({result['actors_replaced']} actors SIGKILLed and replaced), journal "
              f"{'on' if result['journal'] else 'off'}, actor spool "
              f"{'on' if result['spool'] else 'off'}: "
              f"{result['transitions_acknowledged']} transitions acknowledged, "
              f"{result['transitions_in_buffer']} in the buffer, "
              f"lost {result['transitions_lost']}, duplicated {result['transitions_duplicated']}"
              f"; dead actors' unacknowledged episodes: {result['dead_actor_unacked_episodes']} "
              f"({result['dead_actor_unacked_delivered']} delivered once, "
              f"{result['dead_actor_unacked_lost']} lost with the actor; "
              f"{result['dead_actor_spooled_unlogged']} more spooled before the actor could log "
              f"them, delivered by its replacement); learner restart "
              f"{result['restart_s_mean']} s; {result['wall_s']} s in all", flush=True)
    print(json.dumps({"benchmark": "kill_restart", "results": results}))
    return 0 if all(r["cycles_survived"] is not None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
