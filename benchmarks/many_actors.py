"""One learner, many actors: what N robots feeding one learner cost it (N = 1, 2, 4, 8, 16).

    .venv/bin/python benchmarks/many_actors.py              # grpc and zmq, 1..16 actors: ~5.5 min
    .venv/bin/python benchmarks/many_actors.py --quick      # 2 and 16 actors, 5 s windows: ~1.5 min
    .venv/bin/python benchmarks/many_actors.py --replot LOG # table and PNG again from its output
    .venv/bin/python benchmarks/many_actors.py --actors 1,4 --transport zmq --seconds 30
    .venv/bin/python benchmarks/many_actors.py --fps 0      # actors send flat out: the ceiling

The learner is the real one: `hiljax.learner.Learner` with the state policy of
configs/sim_pick_lift.json, its real gRPC or ZeroMQ transport on 127.0.0.1 (made as
`python -m hiljax.learner` makes it), trained by `hiljax.learner.run` on a thread of this
process, exactly as the learner process loops. Its replay buffers are pre-filled with 1,000
random transitions and the first round compiled before anything is measured, and checkpoints
are off (`save_freq`) so that no save falls into a window.

Each simulated actor is a separate process (multiprocessing, spawn; numpy and the transport
only, no JAX) that behaves like a robot at its control rate: `--fps` steps per second (10 by
default, like a real arm; 0 = as fast as it can, blocking on back-pressure), observations of the
config's shapes (9-d state + 3-d environment state), 4-d actions, 100-step episodes (the sim's
10 s at 10 Hz) with intervention bursts, each episode sent as one payload through the real
actor transport (`transport.factory.make_actor_transport`) in hiljax's codec
(`hiljax.wire.encode_episode`), followed by its episode statistics
(`hiljax.wire.encode_interactions`, LeRobot's key names). It reads the newest parameters every
step and decodes each new version, as `hiljax.actor.Actor` does. Actors start at random points of
their first episode, as if the robots had been running, so their sends are spread in time; a
measuring window of a whole number of episode periods (20 s = 2 at 10 Hz) then holds exactly
2 episodes per actor.

Per N, over one window: transitions/s offered (sent by the actors) and ingested (into the
learner's replay buffer, from its own counters), UTD rounds/s the learner sustained meanwhile
(and with no actor connected, for comparison), parameter versions each actor received, latency
from `send_transitions` to the end of the episode's insertion (p50 / p95 / max, CLOCK_MONOTONIC
is shared by the processes), the learner's RSS, and the cores used by the learner, by the
actors and by other processes (the machine may be shared: > 0.2 means depressed figures).
It prints a table, writes a PNG (docs/many_actors.png; --quick: outputs/) and ends with ONE
line of JSON. About 35 s of any run is building the learner and compiling its first round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Nothing heavy (JAX, the learner) at the top: it is imported when the learner is built.
from benchmarks._many_actors_fleet import ActorPool, Episode, observation_layout
from benchmarks._many_actors_report import plot, print_table
from hiljax import wire
from transport import codec
from transport.errors import PayloadError
from transport.factory import NETWORK_KINDS, check_kind

DEFAULT_CONFIG = ROOT / "configs" / "sim_pick_lift.json"
DEFAULT_PLOT = ROOT / "docs" / "many_actors.png"
QUICK_PLOT = ROOT / "outputs" / "many_actors_quick.png"
PREFILL_TRANSITIONS = 1000


# ============================================================================ the learner side


class TimedTransport:
    """The learner's transport, unchanged, plus a note of when each episode was inserted.

    `Learner.ingest` polls transitions, inserts each into the buffers, then polls interactions:
    so at that second poll (or at the next transitions poll, whichever comes first) every
    episode of the first poll is in the replay buffer."""

    def __init__(self, inner):
        self._inner = inner
        self._lock = threading.Lock()
        self._pending: list[tuple[str, int]] = []
        self.inserted: dict[tuple[str, int], float] = {}

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _stamp(self) -> None:
        if self._pending:
            now = time.monotonic()
            with self._lock:
                for key in self._pending:
                    self.inserted[key] = now
            self._pending = []

    def poll_transitions(self, *args, **kwargs):
        self._stamp()
        items = self._inner.poll_transitions(*args, **kwargs)
        for item in items:
            with contextlib.suppress(PayloadError):  # not ours to judge: the learner rejects it
                header = codec.read_header(item.payload)
                self._pending.append((header.sender, header.seq))
        return items

    def poll_interactions(self, *args, **kwargs):
        self._stamp()
        return self._inner.poll_interactions(*args, **kwargs)

    def insertion_times(self) -> dict:
        with self._lock:
            return dict(self.inserted)


def random_episode_payload(layout: dict, action_dim: int, steps: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    episode = Episode(layout, action_dim, rng)
    episode.plan(steps)
    for index in range(steps):
        episode.step(last=index == steps - 1)
    return episode.payload("prefill", seed)


class LearnerUnderTest:
    """The real learner on its real transport, trained by hiljax.learner.run on a thread."""

    def __init__(self, kind: str, config_path: str, episode_steps: int):
        import logging

        from hiljax.learner import Learner, run
        from hiljax.run.train_config import load_train_config
        from transport.factory import make_learner_transport

        logging.getLogger("hiljax").setLevel(logging.WARNING)
        logging.getLogger("transport").setLevel(logging.WARNING)
        self.kind = kind
        self.directory = tempfile.mkdtemp(prefix=f"many_actors_{kind}_")
        overrides = [f"output_dir={self.directory}/run", f"transport={kind}",
                     "learner.save_freq=100000000"]
        config = load_train_config(config_path, overrides).learner_config()
        network = config.actor_learner_config
        # As hiljax.learner.main makes it (on a free port of 127.0.0.1).
        self.raw_transport = make_learner_transport(
            kind, host="127.0.0.1", port=0,
            push_frequency_s=network.policy_parameters_push_frequency,
            max_payload_bytes=int(config.max_payload_mb * 2**20))
        self.transport = TimedTransport(self.raw_transport)
        self.config = config
        self.learner = Learner.create(config, self.transport)
        layout, action_dim = observation_layout(config_path)
        for index in range(-(-PREFILL_TRANSITIONS // episode_steps)):
            batch = wire.decode_episode(random_episode_payload(layout, action_dim, episode_steps,
                                                               index))
            self.learner.online.add_batch(**batch.as_kwargs())
            interventions = batch["is_intervention"]
            if interventions.any():
                self.learner.offline.add_batch(**batch.select(interventions).as_kwargs())
        self.raw_transport.start()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []

        def loop():
            try:
                run(self.learner, self._stop)
            except BaseException as error:  # noqa: BLE001 - re-raised by check()
                self._errors.append(error)

        self._thread = threading.Thread(target=loop, name="learner-run", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return self.raw_transport.address

    def rounds(self) -> int:
        learner = self.learner
        return learner.step_count if hasattr(learner, "step_count") else int(learner.agent.step)

    def check(self) -> None:
        if self._errors:
            raise RuntimeError("the learner's loop failed") from self._errors[0]
        if not self._thread.is_alive():
            raise RuntimeError("the learner's loop stopped")

    def wait_rounds(self, count: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.rounds() < count:
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the learner did not reach {count} rounds in {timeout:.0f} s")
            time.sleep(0.05)

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Until the learner stops ingesting (what the actors had acknowledged is inserted)."""
        deadline, last, still = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline and still < 4:
            now = self.learner.counters["transition_payloads"]
            still = still + 1 if now == last else 0
            last = now
            time.sleep(0.25)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.learner.close()
        self.raw_transport.stop(grace=0)
        shutil.rmtree(self.directory, ignore_errors=True)


class Snapshot:
    def __init__(self, bench: LearnerUnderTest, pool: ActorPool):
        own = psutil.Process().cpu_times()
        machine = psutil.cpu_times()
        self.time = time.monotonic()
        self.rounds = bench.rounds()
        self.counters = dict(bench.learner.counters)
        self.learner_cpu = own.user + own.system
        self.actors_cpu = pool.cpu_seconds()
        self.machine_busy = (sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
                             - getattr(machine, "guest", 0.0) - getattr(machine, "guest_nice", 0.0))


def window_figures(bench: LearnerUnderTest, start: Snapshot, end: Snapshot) -> dict:
    seconds = end.time - start.time
    learner_cores = (end.learner_cpu - start.learner_cpu) / seconds
    actor_cores = (end.actors_cpu - start.actors_cpu) / seconds
    busy = (end.machine_busy - start.machine_busy) / seconds
    rounds = (end.rounds - start.rounds) / seconds
    delta = {key: end.counters[key] - start.counters[key] for key in end.counters}
    return {
        "seconds": seconds,
        "rounds_per_s": rounds,
        # the learner's own efficiency, whatever share of the cores others leave it
        "rounds_per_learner_core_s": rounds / max(learner_cores, 1e-9),
        "grad_updates_per_s": rounds * bench.config.policy.utd_ratio,
        "ingested_transitions_per_s": delta["transitions"] / seconds,
        "ingested_payloads_per_s": delta["transition_payloads"] / seconds,
        "episode_statistics_per_s": delta["episodes"] / seconds,
        "rejected_payloads": delta["rejected_payloads"],
        "learner_rss_mb": psutil.Process().memory_info().rss / 2**20,
        "learner_cores": learner_cores,
        "actor_cores": actor_cores,
        "other_cores": max(0.0, busy - learner_cores - actor_cores),
    }


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def measure_point(bench: LearnerUnderTest, pool: ActorPool, actors: int, args, point: int) -> dict:
    pool.start(actors, kind=bench.kind, address=bench.address, config=args.config, fps=args.fps,
               episode_steps=args.episode_steps, point=point)
    time.sleep(args.settle)  # parameter streams subscribed, first sends under way
    bench.check()
    start = Snapshot(bench, pool)
    time.sleep(args.seconds)
    end = Snapshot(bench, pool)
    bench.check()
    reports = pool.stop(actors)
    bench.wait_drained()
    figures = window_figures(bench, start, end)

    inserted = bench.transport.insertion_times()
    latencies, offered, missing = [], 0, 0
    pushes, late, ticks = [], 0, 0
    for report in reports:
        for sent_at, seq, steps in report["sends"]:
            if not start.time <= sent_at < end.time:
                continue
            offered += steps
            done = inserted.get((report["client_id"], seq))
            if done is None:
                missing += 1
            else:
                latencies.append(1000.0 * (done - sent_at))
        pushes.append(sum(start.time <= t < end.time for t, _ in report["params"]))
        late += report["late_ticks"]
        ticks += report["ticks"]
    figures.update({
        "actors": actors,
        "offered_transitions_per_s": offered / figures["seconds"],
        "sent_in_window_not_ingested": missing,
        "dropped_full_queue": sum(r["dropped"] for r in reports),
        "unflushed_actors": sum(not r["flushed"] for r in reports),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "latency_ms_max": max(latencies) if latencies else None,
        "latency_samples": len(latencies),
        "pushes_per_actor_mean": statistics.fmean(pushes),
        "pushes_per_actor_min": min(pushes),
        "late_tick_fraction": late / max(1, ticks) if args.fps > 0 else None,
        "actor_rss_mb_mean": statistics.fmean(r["rss_mb"] for r in reports),
    })
    return figures


def measure_transport(kind: str, pool: ActorPool, args, counts: list[int]) -> dict:
    began = time.monotonic()
    bench = LearnerUnderTest(kind, args.config, args.episode_steps)
    try:
        bench.wait_rounds(1)  # the first round compiles
        setup_s = time.monotonic() - began
        base = bench.rounds()
        bench.wait_rounds(base + 20)
        start = Snapshot(bench, pool)
        time.sleep(args.alone_seconds)
        alone = window_figures(bench, start, Snapshot(bench, pool))
        print(f"{kind}: learner ready in {setup_s:.0f} s; alone {alone['rounds_per_s']:.1f} "
              f"rounds/s", flush=True)
        points = []
        for actors in counts:
            figures = measure_point(bench, pool, actors, args, point=len(points) + 100 * len(kind))
            points.append(figures)
            print(f"{kind}: {actors:2d} actors: {figures['ingested_transitions_per_s']:8.1f} "
                  f"transitions/s ingested, {figures['rounds_per_s']:5.1f} rounds/s",
                  flush=True)
        return {"setup_s": setup_s, "alone": alone, "points": points,
                "push_period_s": bench.config.actor_learner_config.policy_parameters_push_frequency,
                "utd_ratio": bench.config.policy.utd_ratio,
                "batch_size": bench.config.policy.batch_size}
    finally:
        bench.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actors", default=None, help="comma-separated counts (1,2,4,8,16)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="measuring window per point (20; a whole number of episode periods)")
    parser.add_argument("--transport", default="both", choices=(*NETWORK_KINDS, "both"))
    parser.add_argument("--fps", type=float, default=10.0,
                        help="control rate of each actor; 0 = send as fast as possible")
    parser.add_argument("--episode-steps", type=int, default=None, help="steps per episode (100)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="TrainConfig JSON")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before a window")
    parser.add_argument("--alone-seconds", type=float, default=None,
                        help="window with no actor connected (5)")
    parser.add_argument("--plot", default=None, help="PNG path (docs/many_actors.png)")
    parser.add_argument("--quick", action="store_true", help="2 and 16 actors, short windows")
    parser.add_argument("--replot", metavar="LOG",
                        help="only print the table and plot again from a run's output (its last "
                             "line of JSON)")
    args = parser.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.replot:
        saved = json.loads(Path(args.replot).read_text().strip().splitlines()[-1])["many_actors"]
        args.fps, args.episode_steps = saved["fps"], saved["episode_steps"]
        args.seconds = saved["seconds"]
        print_table(saved["transports"], args)
        plot(saved["transports"], Path(args.plot or saved["plot"]), args)
        return 0

    args.actors = args.actors or ("2,16" if args.quick else "1,2,4,8,16")
    args.episode_steps = args.episode_steps or (50 if args.quick else 100)
    if args.seconds is None:  # two episode periods at 10 Hz (quick: one, of shorter episodes)
        args.seconds = 5.0 if args.quick else 20.0
    args.alone_seconds = args.alone_seconds or (3.0 if args.quick else 5.0)
    args.settle = min(args.settle, 1.0) if args.quick else args.settle
    plot_path = Path(args.plot) if args.plot else (QUICK_PLOT if args.quick else DEFAULT_PLOT)
    counts = sorted({int(n) for n in args.actors.split(",") if n.strip()})
    if not counts or counts[0] < 1:
        parser.error("--actors: positive counts, e.g. 1,2,4")
    kinds = NETWORK_KINDS if args.transport == "both" else (check_kind(args.transport),)
    period = args.episode_steps / args.fps if args.fps > 0 else 0.0
    if period and abs(args.seconds / period - round(args.seconds / period)) > 1e-6:
        print(f"note: a {args.seconds:g} s window is not a whole number of {period:g} s episode "
              "periods: offered and ingested transitions/s will be lumpy", flush=True)

    began = time.monotonic()
    pool = ActorPool(max(counts))  # spawned while the first learner compiles
    try:
        results = {kind: measure_transport(kind, pool, args, counts) for kind in kinds}
    finally:
        pool.close()
    print_table(results, args)
    plot(results, plot_path, args)
    print(f"plot: {plot_path}")
    print(f"total {time.monotonic() - began:.0f} s")
    figures = {"many_actors": {
        "transports": results,
        "fps": args.fps, "episode_steps": args.episode_steps, "seconds": args.seconds,
        "actors": counts, "config": str(args.config), "cpu_count": os.cpu_count(),
        "plot": str(plot_path), "total_s": time.monotonic() - began,
    }}
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
