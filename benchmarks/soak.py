"""Soak: 4 actors on the MuJoCo simulator + 1 learner for a while; is memory flat and does every
transition sent arrive?

    .venv/bin/python benchmarks/soak.py --minutes 20          # the README figure
    .venv/bin/python benchmarks/soak.py --short               # CI: 1.5 minutes
    .venv/bin/python benchmarks/soak.py --minutes 5 --transport zmq --actors 2

Runs the real thing, `python -m hiljax.train --config configs/sim_pick_lift.json
--num-actors 4 --max-minutes M` (learner + actor processes, real transport, simulator with the
scripted operator), in a temporary run directory, and samples the RSS of every one of its
processes (psutil) every `--every` seconds. When train stops (actors first: they finish their
episode and flush; then the learner: final checkpoint), it reports

- RSS per process at the end of the warm-up (default: half the run, at most 5 minutes: the
  learner compiles, buffers and allocator pools fill) and at the end, and the growth after the
  warm-up (goal: < 5 %);
- transitions sent (each actor's last "Interaction step" in metrics.jsonl, i.e. steps of
  episodes it finished and sent) = transitions stored (the learner's final checkpoint counter);
- UTD rounds/s of the learner after the warm-up.

Writes a PNG of RSS over time (docs/soak_rss.png; --short: outputs/soak_rss_short.png) and ends
with ONE line of JSON. The figures are only as quiet as the machine: a shared one is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def _role(process: psutil.Process) -> str | None:
    """"learner" or "actor-<i>" for a process train started, None for anything else."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return None
    if "hiljax.learner" in command:
        return "learner"
    if "hiljax.actor" in command and "--actor-index" in command:
        return f"actor-{command[command.index('--actor-index') + 1]}"
    return None


def sample_rss(train: psutil.Process) -> dict[str, float]:
    """MiB of resident memory per role (train itself included)."""
    rss = {}
    try:
        rss["train"] = train.memory_info().rss / 2**20
        for child in train.children(recursive=True):
            role = _role(child)
            if role is not None:
                rss[role] = child.memory_info().rss / 2**20
    except psutil.Error:
        pass  # a process ended between listing and reading: the next sample has it right
    return rss


def read_metrics(run_dir: Path) -> tuple[dict[str, int], list[dict]]:
    """(client -> its last Interaction step, the learner's train lines)."""
    sent, train = {}, []
    path = run_dir / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if record.get("kind") == "actor" and "Interaction step" in record:
            sent[record["client"]] = max(sent.get(record["client"], 0),
                                         int(record["Interaction step"]))
        elif record.get("kind") == "train":
            train.append(record)
    return sent, train


def stored_transitions(run_dir: Path) -> int | None:
    """The learner's transition counter in its newest complete checkpoint."""
    sys.path.insert(0, str(ROOT))
    from hiljax.run.checkpoint_dir import latest_checkpoint

    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        return None
    return int(json.loads((checkpoint / "learner.json").read_text())["counters"]["transitions"])


def growth(samples: list[tuple[float, dict]], role: str, warm_s: float) -> dict:
    """RSS at the end of the warm-up and at the end (medians of 3 samples: one noisy reading
    is not a trend) and the growth between them."""
    series = [(t, rss[role]) for t, rss in samples if role in rss]
    after = [value for t, value in series if t >= warm_s]
    if len(after) < 2:
        return {"warm_mib": None, "end_mib": None, "growth_pct": None}
    warm, end = _median(after[:3]), _median(after[-3:])
    return {"warm_mib": round(warm, 1), "end_mib": round(end, 1),
            "growth_pct": round(100 * (end - warm) / warm, 2)}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def rounds_per_s(train_lines: list[dict], start_time: float, warm_s: float) -> float | None:
    """UTD rounds per second between the first and the last train line after the warm-up."""
    after = [r for r in train_lines if r["time"] - start_time >= warm_s]
    if len(after) < 2:
        return None
    return (after[-1]["step"] - after[0]["step"]) / max(after[-1]["time"] - after[0]["time"], 1e-9)


def plot(samples: list[tuple[float, dict]], warm_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = sorted({role for _, rss in samples for role in rss})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for role in roles:
        points = [(t / 60, rss[role]) for t, rss in samples if role in rss]
        ax.plot(*zip(*points), label=role)
    ax.axvline(warm_s / 60, color="grey", linestyle="--", label="end of warm-up")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("hiljax soak: RSS of every process (learner + actors on the simulator)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_soak(minutes: float, *, actors: int = 4, transport: str = "grpc",
             warmup_minutes: float | None = None, every_s: float = 5.0,
             config: str = "configs/sim_pick_lift.json", png: Path | None = None,
             keep: bool = False) -> dict:
    warm_s = 60 * (warmup_minutes if warmup_minutes is not None else min(5.0, minutes / 2))
    run_dir = Path(tempfile.mkdtemp(prefix="soak_")) / "run"
    command = [sys.executable, "-m", "hiljax.train", "--config", config, "--num-actors",
               str(actors), "--transport", transport, "--max-minutes", str(minutes),
               "--status-every", "60", f"output_dir={json.dumps(str(run_dir))}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started, run_start = time.monotonic(), time.time()
    train = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    watched = psutil.Process(train.pid)
    samples: list[tuple[float, dict]] = []
    try:
        while train.poll() is None:
            samples.append((time.monotonic() - started, sample_rss(watched)))
            time.sleep(every_s)
    finally:
        if train.poll() is None:
            train.terminate()
            train.wait(timeout=120)
    wall_s = time.monotonic() - started
    sent, train_lines = read_metrics(run_dir)
    stored = stored_transitions(run_dir)
    warm_s = max(warm_s, _all_running_s(run_dir, run_start) + 10.0)
    roles = sorted({role for _, rss in samples for role in rss})
    per_process = {role: growth(samples, role, warm_s) for role in roles}
    worst = max((g["growth_pct"] for g in per_process.values() if g["growth_pct"] is not None),
                default=None)
    if png is not None:
        plot(samples, warm_s, png)
    result = {"benchmark": "soak", "minutes": minutes, "warmup_minutes": warm_s / 60,
              "actors": actors, "transport": transport, "train_exit": train.returncode,
              "wall_s": round(wall_s, 1), "samples": len(samples), "rss": per_process,
              "worst_growth_pct": worst, "growth_goal_pct": 5.0,
              "transitions_sent": sum(sent.values()), "transitions_stored": stored,
              "sent_equals_stored": stored is not None and sum(sent.values()) == stored,
              "actor_clients": len(sent),
              "rounds_per_s": _round(rounds_per_s(train_lines, run_start, warm_s)),
              "png": str(png) if png else None}
    if keep:
        result["run_dir"] = str(run_dir)
    else:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    return result


def _all_running_s(run_dir: Path, run_start: float) -> float:
    """Seconds from the start until every process was at work: each actor had sent an episode
    and the learner had logged a training line (as far as either happened). Start-up (booting
    interpreters, compiling the first round) is not warm-up."""
    firsts: dict[str, float] = {}
    path = run_dir / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if record.get("kind") in ("actor", "train"):
            who = record.get("client", "?") if record["kind"] == "actor" else "learner"
            firsts.setdefault(who, record["time"])
    return max(firsts.values(), default=run_start) - run_start


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--short", action="store_true", help="1.5 minutes (CI)")
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--transport", choices=("grpc", "zmq"), default="grpc")
    parser.add_argument("--warmup-minutes", type=float)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args(argv)
    minutes = 1.5 if args.short else args.minutes
    png = args.png or ROOT / ("outputs/soak_rss_short.png" if args.short else "docs/soak_rss.png")
    result = run_soak(minutes, actors=args.actors, transport=args.transport,
                      warmup_minutes=args.warmup_minutes, every_s=2.0 if args.short
                      else args.every, png=png, keep=args.keep)
    print(f"soak: {result['actors']} actors + 1 learner over {args.transport} for "
          f"{minutes:g} min (warm-up {result['warmup_minutes']:.1f} min, "
          f"{result['samples']} RSS samples)")
    for role, g in result["rss"].items():
        print(f"  {role:10s} RSS {g['warm_mib']} MiB after warm-up -> {g['end_mib']} MiB at the "
              f"end: {g['growth_pct']} %")
    print(f"  worst growth {result['worst_growth_pct']} % (goal < 5 %); transitions sent "
          f"{result['transitions_sent']} by {result['actor_clients']} actors, stored "
          f"{result['transitions_stored']} ({'equal' if result['sent_equals_stored'] else 'DIFFER'})"
          f"; {result['rounds_per_s']} rounds/s after warm-up; PNG {result['png']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
