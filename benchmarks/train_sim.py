"""The result that counts: HIL-SERL on the simulator's pick-and-lift task, against the clock.

    .venv/bin/python benchmarks/train_sim.py [--minutes 30] [--output-dir DIR] [overrides...]
    .venv/bin/python benchmarks/train_sim.py --plot-only --output-dir DIR

Runs `python -m hiljax.train` (learner + actor processes, the scripted operator as the human)
for a wall-clock budget, then reads metrics.jsonl and reports the success rate and intervention
rate over the last 50 episodes, against environment steps and minutes, as a PNG
(<output_dir>/training_curves.png) and as figures. Ends with ONE line of JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 50


def episodes_from_metrics(path: Path) -> dict[str, np.ndarray]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    actor = [r for r in records if r.get("kind") == "actor"]
    if not actor:
        raise SystemExit(f"no episodes in {path}")
    start = records[0]["time"]
    return {
        "minutes": np.array([(r["time"] - start) / 60 for r in actor]),
        "env_steps": np.array([r["step"] for r in actor]),
        "success": np.array([r.get("Episodic reward", 0.0) > 0.5 for r in actor], float),
        "intervention": np.array([r.get("Intervention rate", 0.0) for r in actor]),
        "length": np.array([r.get("Interaction step", 0) for r in actor], float),
    }


def rolling(values: np.ndarray, window: int = WINDOW) -> np.ndarray:
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) \
        / counts


def summarise(episodes: dict) -> dict:
    success, intervention = rolling(episodes["success"]), rolling(episodes["intervention"])
    reached = np.nonzero((success >= 0.8) & (np.arange(len(success)) >= WINDOW - 1)
                         & (intervention < 0.1))[0]
    return {
        "episodes": int(len(success)),
        "env_steps": int(episodes["env_steps"][-1]),
        "minutes": float(episodes["minutes"][-1]),
        "final_success_rate_last50": float(success[-1]),
        "final_intervention_rate_last50": float(intervention[-1]),
        "best_success_rate_last50": float(success[WINDOW - 1:].max()) if len(success) >= WINDOW
        else float(success.max()),
        "goal_reached_at_minutes": float(episodes["minutes"][reached[0]]) if len(reached) else None,
        "goal_reached_at_env_steps": int(episodes["env_steps"][reached[0]]) if len(reached)
        else None,
    }


def plot(episodes: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    success, intervention = rolling(episodes["success"]), rolling(episodes["intervention"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, x, label in ((axes[0], episodes["env_steps"], "environment steps"),
                           (axes[1], episodes["minutes"], "wall-clock minutes")):
        axis.plot(x, success, label=f"success rate (last {WINDOW} episodes)")
        axis.plot(x, intervention, label=f"intervention rate (last {WINDOW} episodes)")
        axis.axhline(0.8, color="grey", linestyle=":", linewidth=1)
        axis.axhline(0.1, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("rate")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(loc="center right")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--output-dir", default=f"outputs/train_sim_{int(time.time())}")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--config", help="TrainConfig JSON (default: the sim run)")
    args, overrides = parser.parse_known_args()
    run_dir = Path(args.output_dir)
    if not args.plot_only:
        command = [sys.executable, "-m", "hiljax.train", f"output_dir={run_dir}",
                   "--max-minutes", str(args.minutes), "--status-every", "60", *overrides]
        if args.config:
            command += ["--config", args.config]
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    episodes = episodes_from_metrics(run_dir / "metrics.jsonl")
    figures = summarise(episodes)
    png = run_dir / "training_curves.png"
    plot(episodes, png, f"hiljax on the sim pick-and-lift task ({figures['episodes']} episodes)")
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    print(f"plot: {png}")
    print(json.dumps({"train_sim": {**figures, "plot": str(png), "overrides": overrides}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
