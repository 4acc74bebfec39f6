#!/usr/bin/env python
"""Learner throughput: SAC UTD rounds per second on whatever device JAX has, and where the time
of a round goes.

    python benchmarks/learner_throughput.py                      # every config (~6-8 min on CPU)
    python benchmarks/learner_throughput.py --quick --configs state,cached64
    python benchmarks/learner_throughput.py --device gpu --configs state,image256
    python benchmarks/learner_throughput.py --reference-python ../lrenv/bin/python  # + LeRobot
    python benchmarks/learner_throughput.py --json-only | tail -1 | jq .state.learner_loop

For each config it prints the device, the compile time, steady-state UTD rounds/s ("steps/s",
the unit of the reference's figures) and critic gradient updates/s (rounds/s * utd_ratio), each
the median of several windows, measured three ways:
  * learner loop: hiljax.learner.Learner's own loop (`train_round`: the next batch sampled by
    `sample_mixed` and put on the device by the prefetch thread while the round runs, the
    round's agent buffers donated, no sync per round, the loop's bookkeeping) - the real figure;
    the speed-ups and goals are judged on it.
  * sample+update: the serial loop - `ReplayBuffer.sample` (numpy, host) then `agent.update`
    on the numpy batch (the transfer inside the call), one after the other.
  * update-only: `agent.update` on one fixed batch already on the device (the ceiling).
LeRobot's learner is measured IN THE SAME RUN when `--reference-python` names an interpreter
that imports lerobot (a separate environment: never a hiljax dependency; see
benchmarks/lerobot_reference.py); otherwise the figures recorded on this machine class are shown,
labelled "recorded".
plus peak RSS, the replay buffer's bytes per transition (capacity 2000, 100-step episodes,
wrapped once: the steady state), a breakdown of one round from separately jitted pieces, XLA's
FLOP count and the achieved GFLOP/s (against a measured f32 matmul rate of this machine).

Each config runs in its own subprocess so that peak RSS and compile caches are per config
(`--in-process` turns that off). The LAST line printed is one line of JSON keyed by config name.
Figures are noisy when other work shares the two cores: the cores used by other processes
during each measurement are recorded (`other_cpu_cores`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import jax
import jax.monitoring
import numpy as np
from _learner_cases import (
    BUFFER_CAPACITY,
    CASES,
    EPISODE_LENGTH,
    IMAGE_SHAPE,
    UTD_RATIO,
    Case,
    fill_buffer,
    make_config,
    naive_bytes_per_transition,
    observation_spec,
)
from _learner_report import print_report
from _timing import (
    CompileWatch,
    OtherCpu,
    block,
    flops_of,
    matmul_gflops,
    matmul_gflops_at,
    peak_rss_mb,
    rss_mb,
    time_calls,
)
from tqdm import tqdm

from hiljax.agents import sac
from hiljax.config import ActorLearnerConfig, LearnerConfig, SACConfig
from hiljax.learner import Learner as HiljaxLearner
from hiljax.networks.augment import random_shift_nd
from hiljax.run.device import describe, select_learner_device
from hiljax.storage.buffer import ReplayBuffer
from transport.factory import make_learner_transport

log = logging.getLogger("learner_throughput")

# ---------------------------------------------------------------------------------------------
# The loops.


class Learner:
    """Holds the evolving agent; runs rounds the three ways above."""

    def __init__(self, agent, buffer: ReplayBuffer, device_batch: dict, rng):
        self.agent, self.buffer, self.device_batch, self.rng = agent, buffer, device_batch, rng
        self.metrics: dict = {}
        self.batch_size = agent.config.batch_size
        self.real: dict[str, HiljaxLearner] = {}

    def start_real_loop(self, run_dir: str, storage: str) -> None:
        """hiljax's Learner on a copy of the agent (its rounds donate their buffers) and the
        same filled buffer (`storage` "device": sampled from its copy on the device), its
        pipeline running (prefetch thread, ingest thread)."""
        config = dataclasses.replace(self.agent.config, storage_device=storage)
        learner_config = LearnerConfig(
            policy=config, output_dir=os.path.join(run_dir, storage), transport="inproc",
            log_freq=10**9,
            save_freq=10**9, actor_learner_config=ActorLearnerConfig(
                policy_parameters_push_frequency=10**9))
        transport = make_learner_transport("inproc").start()
        offline = ReplayBuffer(16, self.buffer.observation_spec, self.buffer.action_dim)
        real = HiljaxLearner(learner_config, transport, jax.tree.map(lambda x: x.copy(),
                             self.agent), self.buffer, offline, np.random.default_rng(1))
        real.start_pipeline(prefetch=2)
        self.real[storage] = real
        self.learner_loop(2, storage)  # compiles the donated round (and the device gather)

    def stop_real_loops(self) -> None:
        for real in self.real.values():
            real.close()
            real.transport.stop()

    def learner_loop(self, rounds: int, storage: str = "cpu") -> None:
        real = self.real[storage]
        for _ in range(rounds):
            real.train_round()
        block(real.agent)

    def update_only(self, rounds: int) -> None:
        for _ in range(rounds):
            self.agent, self.metrics = self.agent.update(self.device_batch)
        block((self.agent, self.metrics))

    def sample_update(self, rounds: int) -> None:
        for _ in range(rounds):
            batch = self.buffer.sample(self.batch_size, self.rng, num_batches=UTD_RATIO)
            self.agent, self.metrics = self.agent.update(batch)
        block((self.agent, self.metrics))


def measure_rates(runs: dict[str, tuple[Callable[[int], None], int]], window_s: float,
                  round_s: float, label: str, show_bar: bool) -> dict:
    """Median rounds/s per mode over windows of a fixed number of rounds (~window_s each).

    `runs`: mode -> (run(rounds), number of windows). The modes' windows alternate, so a burst
    of load from other processes hits both alike rather than one.
    """
    rounds = max(1, round(window_s / max(round_s, 1e-6)))
    rates = {mode: [] for mode in runs}
    busy = {mode: [0.0, 0.0] for mode in runs}  # other processes' core-seconds, wall seconds
    order = [mode for i in range(max(n for _, n in runs.values()))
             for mode, (_, n) in runs.items() if i < n]
    for mode in tqdm(order, desc=label, leave=False, disable=None if show_bar else True):
        others, t0 = OtherCpu(), time.perf_counter()
        runs[mode][0](rounds)
        elapsed = time.perf_counter() - t0
        rates[mode].append(rounds / elapsed)
        busy[mode][0] += others.cores() * elapsed
        busy[mode][1] += elapsed
    out = {}
    for mode, mode_rates in rates.items():
        median = statistics.median(mode_rates)
        out[mode] = {"steps_per_s": median, "grad_updates_per_s": median * UTD_RATIO,
                     "windows_steps_per_s": mode_rates, "rounds_per_window": rounds,
                     "other_cpu_cores": busy[mode][0] / busy[mode][1]}
    return out


def estimate_round_s(learner: Learner, first_call_s: float, compile_s: float) -> float:
    """Seconds per round, from a short warm-up (skipped for slow rounds: the first call says)."""
    guess = first_call_s - compile_s
    if guess > 1.0:
        return guess
    rounds = 1
    while True:
        t0 = time.perf_counter()
        learner.update_only(rounds)
        elapsed = time.perf_counter() - t0
        if elapsed > 0.3 or rounds >= 256:
            return elapsed / rounds
        rounds *= 4


# ---------------------------------------------------------------------------------------------
# Where the time goes.


def augment_only(agent, batch: dict, key: jax.Array) -> dict:
    """The random-shift part of prepare_images alone (no backbone)."""
    config = agent.config
    out = {}
    for field, field_key in zip(("observations", "next_observations"), jax.random.split(key)):
        keys = jax.random.split(field_key, len(config.image_keys))
        out[field] = {k: random_shift_nd(batch[field][k], kk, config.image_augmentation_pad)
                      for k, kk in zip(config.image_keys, keys)}
    return out


def breakdown(learner: Learner, budget_s: float, watch: CompileWatch) -> dict:
    """Time the pieces of a round, jitted separately on the same batch, next to a whole round."""
    agent, device_batch = learner.agent, learner.device_batch
    key_images, key_critic, key_policy = jax.random.split(jax.random.key(1), 3)
    prepare = jax.jit(sac.prepare_images)
    prepared = prepare(agent, device_batch, key_images)
    block(prepared)
    minibatch = jax.tree.map(lambda x: x[0], prepared)
    pieces = {
        "round": (None, ()),
        "prepare_images": (prepare, (agent, device_batch, key_images)),
        "critic_step": (jax.jit(sac._critic_step), (agent, minibatch, key_critic)),
        "policy_step": (jax.jit(sac._policy_step), (agent, minibatch, key_policy)),
    }
    config = agent.config
    if config.image_keys and not config.cache_backbone_features:
        pieces["augmentation"] = (jax.jit(augment_only), (agent, device_batch, key_images))
    out: dict = {}
    for name, (fn, args) in pieces.items():
        if fn is None:  # the whole round, timed now so that it shares the pieces' conditions
            times = time_calls(lambda: learner.update_only(1), budget_s)
            out[name] = {"ms": 1e3 * statistics.median(times), "calls": len(times)}
            continue
        if name != "prepare_images":  # that one has run (and compiled) above
            block(fn(*args))
        mark = watch.mark()
        times = time_calls(lambda fn=fn, args=args: fn(*args), budget_s)
        cost = flops_of(fn, *args)
        out[name] = {"ms": 1e3 * statistics.median(times), "calls": len(times),
                     "gflop": cost.get("flops", 0.0) / 1e9,
                     "recompiled": watch.since(mark)["num_compiles"] > 0}
    num_critic_steps = device_batch["rewards"].shape[0]
    out["critic_steps_per_round"] = num_critic_steps
    out["sum_ms"] = (out["prepare_images"]["ms"] + num_critic_steps * out["critic_step"]["ms"]
                     + out["policy_step"]["ms"])
    out["sum_gflop"] = (out["prepare_images"]["gflop"]
                        + num_critic_steps * out["critic_step"]["gflop"]
                        + out["policy_step"]["gflop"])
    return out


def feature_extraction(config: SACConfig, params: dict, budget_s: float,
                       rng: np.random.Generator) -> dict:
    """frames/s of `backbone_features`: once per env step (1 frame per camera) and batched."""
    out = {}
    for label, per_camera in (("per_step", 1), ("batched", 32)):
        frames = {k: rng.integers(0, 256, (per_camera, *IMAGE_SHAPE), dtype=np.uint8)
                  for k in config.image_keys}
        call = functools.partial(sac.backbone_features, config, params, frames)
        block(call())  # compile
        seconds = statistics.median(time_calls(call, budget_s))
        num_frames = per_camera * len(config.image_keys)
        out[label] = {"frames_per_call": num_frames, "ms_per_call": 1e3 * seconds,
                      "frames_per_s": num_frames / seconds}
    return out


# ---------------------------------------------------------------------------------------------
# One config, start to finish.


def run_case(case: Case, args: argparse.Namespace) -> dict:
    show_bar = args.verbose or not args.json_only
    watch = CompileWatch()
    others = OtherCpu()
    result: dict = {"batch_size": case.batch_size, "utd_ratio": UTD_RATIO,
                    "images": case.images, "cache_backbone_features": case.cached,
                    "device": describe(jax.devices()[0]), "jax": jax.__version__,
                    "machine_matmul_gflops": matmul_gflops()}
    config = make_config(case)
    # The critics' hidden layer: (batch x width) @ (width x width), the round's typical matmul.
    width = config.critic_network_kwargs.hidden_dims[0]
    result["layer_matmul_gflops"] = matmul_gflops_at(case.batch_size, width)
    agent = sac.SACAgent.create(config, jax.random.key(0))
    rng = np.random.default_rng(0)

    buffer = ReplayBuffer(BUFFER_CAPACITY, observation_spec(config, agent.params),
                          config.action_dim)
    fill_buffer(buffer, BUFFER_CAPACITY // EPISODE_LENGTH + 2, rng)  # wraps: steady state
    result["buffer"] = {
        "capacity": BUFFER_CAPACITY, "episode_length": EPISODE_LENGTH,
        "bytes_per_transition": buffer.bytes_per_transition(),
        "naive_bytes_per_transition": naive_bytes_per_transition(buffer),
        "final_frames": buffer.num_final_frames, "mb": buffer.nbytes / 2**20,
        "spec": {k: [list(s), np.dtype(d).name] for k, (s, d) in buffer.observation_spec.items()},
    }
    result["rss_after_fill_mb"] = rss_mb()
    sample = functools.partial(buffer.sample, case.batch_size, rng, num_batches=UTD_RATIO)
    result["sample_ms"] = 1e3 * statistics.median(time_calls(sample, 0.5, max_calls=20))
    device_batch = jax.device_put(sample())
    block(device_batch)

    mark = watch.mark()
    t0 = time.perf_counter()
    agent, metrics = agent.update(device_batch)
    block((agent, metrics))
    first_call_s = time.perf_counter() - t0
    compiled = watch.since(mark)
    result.update(first_call_s=first_call_s, compile_s=compiled["backend_compile_s"],
                  trace_lower_s=compiled["trace_lower_s"])
    log.info("%-9s first update %.1f s (XLA compile %.1f s, trace+lower %.1f s)", case.name,
             first_call_s, compiled["backend_compile_s"], compiled["trace_lower_s"])
    cost = flops_of(sac.update_round, agent, device_batch)
    result["xla_round"] = {"gflop": cost.get("flops", 0.0) / 1e9,
                           "gb_accessed": cost.get("bytes_accessed", 0.0) / 1e9}

    learner = Learner(agent, buffer, device_batch, rng)
    round_s = estimate_round_s(learner, first_call_s, compiled["backend_compile_s"]
                               + compiled["trace_lower_s"])
    if round_s <= 1.0:
        learner.sample_update(1)  # first call with numpy inputs (no recompile expected)
    run_dir = tempfile.mkdtemp(prefix="hiljax_bench_")
    modes = {"update_only": (learner.update_only, case.windows),
             "sample_update": (learner.sample_update, case.sample_windows)}
    for storage in args.storage:
        learner.start_real_loop(run_dir, storage)
        mode = "learner_loop" if storage == "cpu" else "learner_loop_device_buffer"
        modes[mode] = (functools.partial(learner.learner_loop, storage=storage),
                       case.sample_windows)
    mark = watch.mark()
    try:
        result.update(measure_rates(modes, case.window_seconds, round_s, case.name, show_bar))
    finally:
        learner.stop_real_loops()
    for mode in modes:
        log.info("%-9s %-13s %8.3f steps/s", case.name, mode, result[mode]["steps_per_s"])
    result["recompiles_during_timing"] = watch.since(mark)["num_compiles"]
    result["metrics_finite"] = bool(all(np.isfinite(np.asarray(v)).all()
                                        for v in learner.metrics.values()))

    if args.trace:
        trace_dir = os.path.join(args.trace, case.name)
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            learner.update_only(3)
        result["trace_dir"] = trace_dir

    try:
        result["breakdown"] = breakdown(learner, case.piece_seconds, watch)
    except Exception as exc:  # noqa: BLE001 - private pieces of sac.py may move; keep the headline figures
        log.warning("breakdown failed: %r", exc)
        result["breakdown"] = {"error": repr(exc)}
    if case.cached:
        result["feature_extraction"] = feature_extraction(config, agent.params,
                                                          case.piece_seconds, rng)
    finish(result, case)
    result["other_cpu_cores"] = others.cores()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def finish(result: dict, case: Case) -> None:
    """Derived figures: achieved GFLOP/s and the share of the measured matmul rate, goals. The
    speed-ups against LeRobot are added by `compare` (measured or recorded)."""
    loop = result["learner_loop"]["steps_per_s"]
    upd = result["update_only"]["steps_per_s"]
    result["goal_steps_per_s"] = case.goal
    result["goal_met"] = None if case.goal is None else bool(loop >= case.goal)
    pieces = result.get("breakdown", {})
    gflop = pieces.get("sum_gflop") or result["xla_round"]["gflop"]
    result["gflop_per_round"] = gflop
    result["achieved_gflops"] = gflop * upd
    result["achieved_gflops_loop"] = gflop * loop
    peak = result["machine_matmul_gflops"]
    result["peak_fraction"] = result["achieved_gflops"] / peak
    result["peak_fraction_loop"] = result["achieved_gflops_loop"] / peak
    # The same against what a matmul of the round's own layer shape reaches on this device.
    result["layer_matmul_fraction"] = result["achieved_gflops"] / result["layer_matmul_gflops"]
    result["layer_matmul_of_peak"] = result["layer_matmul_gflops"] / peak


def compare(results: dict, reference: dict | None) -> None:
    """Speed-ups against LeRobot: measured in this run when `reference` has the config, else
    against the recorded figure, and the result says which."""
    for name, result in results.items():
        if "error" in result:
            continue
        measured = (reference or {}).get(name, {}).get("steps_per_s")
        if measured:
            ref, source = measured, f"measured in this run ({reference[name]['label']})"
        else:
            ref, source = CASES[name].reference, ("recorded (LeRobot 0.4 on this machine class, "
                                                  "2 threads; not measured in this run)")
        result["reference_steps_per_s"] = ref
        result["reference_source"] = source
        result["speedup"] = result["learner_loop"]["steps_per_s"] / ref if ref else None
        result["speedup_update_only"] = result["update_only"]["steps_per_s"] / ref if ref else None


def measure_reference(python: str, names: list[str], args: argparse.Namespace) -> dict:
    """LeRobot's learner, run by benchmarks/lerobot_reference.py under `python` (its own
    environment), for the configs it supports; {} when it cannot run."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lerobot_reference.py")
    command = [python, script, "--configs", ",".join(names), "--device", args.reference_device]
    command += ["--quick"] if args.quick else []
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        log.warning("LeRobot reference did not run (exit %s): recorded figures are shown",
                    proc.returncode)
        return {}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# Entry point.


def run_worker(name: str, args: argparse.Namespace) -> dict:
    case = CASES[name].quick() if args.quick else CASES[name]
    return run_case(case, args)


def run_subprocess(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--json-only",
               "--device", args.device]
    command += ["--quick"] if args.quick else []
    command += ["--storage", ",".join(args.storage)]
    command += ["--trace", args.trace] if args.trace else []
    command += ["--verbose"] if not args.json_only else []
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"worker exited with {proc.returncode}"}
    try:
        return json.loads(lines[-1])[name]
    except (json.JSONDecodeError, KeyError) as exc:
        return {"error": f"unreadable worker output: {exc!r}"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter windows (smoke test)")
    parser.add_argument("--json-only", action="store_true",
                        help="print only the final JSON line")
    parser.add_argument("--trace", metavar="DIR",
                        help="write a jax.profiler trace of 3 rounds per config to DIR/<config>")
    parser.add_argument("--in-process", action="store_true",
                        help="run every config in this process (peak RSS is then cumulative)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"),
                        help="where JAX computes (auto: the accelerator when there is one)")
    parser.add_argument("--storage", default="cpu,device",
                        help="replay-buffer places for the learner-loop figure: cpu (host "
                             "memory), device (a copy on the device), or both")
    parser.add_argument("--reference-python", metavar="PYTHON",
                        help="an interpreter that imports lerobot: measure LeRobot's learner in "
                             "this run (else recorded figures are shown, labelled)")
    parser.add_argument("--reference-device", default="cpu",
                        help="torch device for the LeRobot reference (cpu, cuda)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        parser.error(f"unknown config(s) {unknown}; choose from {','.join(CASES)}")
    args.names = names
    args.storage = [x.strip() for x in args.storage.split(",") if x.strip()]
    if "cpu" not in args.storage or set(args.storage) - {"cpu", "device"}:
        parser.error("--storage: cpu, or cpu,device")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet = args.json_only and not args.verbose
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    select_learner_device(args.device)
    if args.worker:
        print(json.dumps({args.worker: run_worker(args.worker, args)}))
        return 0
    results = {}
    for name in args.names:
        log.info("running %s%s", name, " (quick)" if args.quick else "")
        results[name] = (run_worker(name, args) if args.in_process
                         else run_subprocess(name, args))
    reference = (measure_reference(args.reference_python, args.names, args)
                 if args.reference_python else None)
    compare(results, reference)
    if not args.json_only:
        print_report(results)
    print(json.dumps(results))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
