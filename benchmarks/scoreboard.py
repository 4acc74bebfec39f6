"""The scoreboard: HIL-SERL on one task over several training seeds, judged by the policy alone.

    .venv/bin/python benchmarks/scoreboard.py --task gym_hil_state [--seeds 0 1 2]
        [--minutes 15] [--eval-every 2] [--eval-episodes 20] [--output-dir DIR] [overrides...]
    .venv/bin/python benchmarks/scoreboard.py --task gym_hil_state --report-only --output-dir DIR

For every seed it runs `python -m hiljax.train` (learner + actor processes, the scripted person
as the human) for a wall-clock budget. Beside it, in a separate process, the
newest checkpoint is evaluated every `--eval-every` minutes with `python -m hiljax.eval`: the
deterministic policy, NO person, new scene seeds. The figures:

- no-person success (the one that counts) per evaluation, and the minutes and env steps at
  which each seed first reached >= 80 %; the final checkpoint on `--final-episodes` episodes;
- the training-time success rate, separately: over all episodes (the person's corrections
  included) and over the episodes the person never touched;
- the intervention rate as the share of episodes with any intervention and of steps.

Mean and spread over the seeds; a PNG per task (<output_dir>/<task>_scoreboard.png) with every
seed; <output_dir>/scoreboard.json. Ends with ONE line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    "gym_hil_state": "configs/gym_hil_pick_cube.json",
    "gym_hil_random": "configs/gym_hil_pick_cube_random.json",
    "gym_hil_images": "configs/gym_hil_pick_cube_images.json",
    "sim_state": "configs/sim_pick_lift.json",
    "sim_images": "configs/sim_pick_lift_images.json",
    "sim_hard": "configs/sim_pick_lift_hard.json",
}
GOAL = 0.8
WINDOW = 50  # training-time rates: the last 50 episodes
EVAL_SEED = 100_000  # evaluation scenes: far from every training seed's


# ------------------------------------------------------------------------------ metrics


def actor_episodes(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("kind") == "actor"]


def env_steps_at(episodes: list[dict], when: float) -> int:
    """Env steps all actors had taken by wall time `when` (each actor's latest counter)."""
    latest: dict[str, int] = {}
    for record in episodes:
        if record["time"] <= when:
            latest[record.get("client", "")] = int(record["step"])
    return sum(latest.values())


def training_rates(episodes: list[dict], window: int = WINDOW) -> dict:
    """Training-time success and intervention rates over the last `window` episodes."""
    if not episodes:
        return {}
    lengths = episode_lengths(episodes)[-window:]
    last = episodes[-window:]
    success = np.array([r.get("Episodic reward", 0.0) > 0.5 for r in last])
    rate = np.array([r.get("Intervention rate", 0.0) for r in last])
    touched = rate > 0
    return {
        "episodes": len(episodes),
        "training_success_all": float(success.mean()),
        # episodes the person never touched: the policy's own training-time record
        "training_success_untouched": float(success[~touched].mean()) if (~touched).any()
        else None,
        "intervention_episode_share": float(touched.mean()),
        "intervention_step_share": float((rate * lengths).sum() / lengths.sum()),
    }


def episode_lengths(episodes: list[dict]) -> np.ndarray:
    """Steps per episode: the difference of each actor's "Interaction step" counter."""
    previous: dict[str, int] = {}
    lengths = []
    for record in episodes:
        client, step = record.get("client", ""), int(record["step"])
        lengths.append(max(1, step - previous.get(client, 0)))
        previous[client] = step
    return np.asarray(lengths, dtype=np.float64)


# ------------------------------------------------------------------------------ evaluation


def newest_checkpoint(run_dir: Path) -> Path | None:
    complete = sorted(p.parent for p in (run_dir / "checkpoints").glob("step_*/COMPLETE"))
    return complete[-1] if complete else None


def snapshot(checkpoint: Path, into: Path) -> Path:
    """A copy of the checkpoint's agent (not its buffers), safe from the learner's clean-up."""
    target = into / checkpoint.name
    if not target.exists():
        staging = into / f".{checkpoint.name}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("agent.arrays", "learner.json", "COMPLETE"):
            shutil.copy2(checkpoint / name, staging / name)
        staging.rename(target)
    return target


def start_eval(checkpoint: Path, run_dir: Path, episodes: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "hiljax.eval",
               "--checkpoint", str(checkpoint), "--episodes", str(episodes),
               "--seed", str(EVAL_SEED), "--config", str(run_dir / "train_config.json")]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})


def eval_result(process: subprocess.Popen) -> dict | None:
    out, _ = process.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if process.returncode == 0 and lines else None


class Evaluator:
    """Evaluates the newest checkpoint of a run, one evaluation at a time, in a subprocess."""

    def __init__(self, run_dir: Path, started: float, every_s: float, episodes: int):
        self.run_dir, self.started = run_dir, started
        self.every_s, self.episodes = every_s, episodes
        self.points: list[dict] = []
        self._running: tuple[subprocess.Popen, Path, float] | None = None
        self._last_start = -np.inf
        self._done: set[str] = set()

    def poll(self) -> None:
        if self._running is not None and self._running[0].poll() is not None:
            self._collect()
        if self._running is None and time.time() - self._last_start >= self.every_s:
            checkpoint = newest_checkpoint(self.run_dir)
            if checkpoint is not None and checkpoint.name not in self._done:
                self._start(checkpoint)

    def finish(self, final_episodes: int) -> None:
        """Wait for a running evaluation, then evaluate the final checkpoint."""
        if self._running is not None:
            self._collect()
        checkpoint = newest_checkpoint(self.run_dir)
        if checkpoint is not None:
            self.episodes = final_episodes
            self._done.discard(checkpoint.name)
            self.points = [p for p in self.points if p["checkpoint"] != checkpoint.name]
            self._start(checkpoint)
            self._collect()

    def _start(self, checkpoint: Path) -> None:
        saved_at = (checkpoint / "COMPLETE").stat().st_mtime
        copy = snapshot(checkpoint, self.run_dir / "evaluated")
        self._done.add(checkpoint.name)
        self._last_start = time.time()
        self._running = (start_eval(copy, self.run_dir, self.episodes), copy, saved_at)

    def _collect(self) -> None:
        process, copy, saved_at = self._running
        self._running = None
        result = eval_result(process)
        if result is None:
            print(f"  evaluation of {copy.name} failed", flush=True)
            return
        point = {"checkpoint": copy.name, "minutes": (saved_at - self.started) / 60,
                 "env_steps": env_steps_at(actor_episodes(self.run_dir), saved_at),
                 "optimisation_steps": result["checkpoint_step"],
                 "success_rate": result["success_rate"], "episodes": result["episodes"],
                 "mean_episode_length": result["mean_episode_length"]}
        self.points.append(point)
        print(f"  eval {copy.name}: no-person success {point['success_rate']:.0%} at "
              f"{point['minutes']:.1f} min, {point['env_steps']} env steps", flush=True)


# ------------------------------------------------------------------------------ one seed


def train_seed(config: str, seed: int, run_dir: Path, args, overrides: list[str]) -> dict:
    command = [sys.executable, "-m", "hiljax.train", "--config", config,
               "--max-minutes", str(args.minutes), f"output_dir={run_dir}",
               f"policy.seed={seed}", f"env.robot.seed={1000 * seed}",
               f"env.wrapper.sim_operator.seed={seed}", f"actor.seed={seed}",
               f"learner.save_freq={args.save_freq}", *overrides]
    print(f"seed {seed}: {' '.join(command[1:])}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(run_dir / "scoreboard_train.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        evaluator = Evaluator(run_dir, started, 60 * args.eval_every, args.eval_episodes)
        while process.poll() is None:
            evaluator.poll()
            time.sleep(2.0)
    if process.returncode != 0:
        raise SystemExit(f"training seed {seed} failed (exit {process.returncode}); see "
                         f"{run_dir / 'scoreboard_train.log'}")
    evaluator.finish(args.final_episodes)
    result = {"seed": seed, "run_dir": str(run_dir), "evaluations": evaluator.points,
              **training_rates(actor_episodes(run_dir))}
    (run_dir / "scoreboard_seed.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


# ------------------------------------------------------------------------------ the board


def first_reaching(points: list[dict], goal: float = GOAL) -> dict | None:
    for point in points:
        if point["success_rate"] >= goal:
            return {"minutes": point["minutes"], "env_steps": point["env_steps"]}
    return None


def spread(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values)),
            "min": float(np.min(values)), "max": float(np.max(values)), "n": len(values)}


def summarise(task: str, seeds: list[dict]) -> dict:
    reached = [first_reaching(s["evaluations"]) for s in seeds]
    finals = [s["evaluations"][-1]["success_rate"] if s["evaluations"] else None for s in seeds]
    return {
        "task": task,
        "seeds": len(seeds),
        "final_no_person_success": spread(finals),
        "seeds_reaching_80": sum(r is not None for r in reached),
        "minutes_to_80": spread([r["minutes"] if r else None for r in reached]),
        "env_steps_to_80": spread([r["env_steps"] if r else None for r in reached]),
        "training_success_all": spread([s.get("training_success_all") for s in seeds]),
        "training_success_untouched": spread([s.get("training_success_untouched")
                                              for s in seeds]),
        "intervention_episode_share": spread([s.get("intervention_episode_share")
                                              for s in seeds]),
        "intervention_step_share": spread([s.get("intervention_step_share") for s in seeds]),
        "per_seed": [{"seed": s["seed"], "final_no_person_success": f, "first_80": r,
                      "training_success_all": s.get("training_success_all"),
                      "intervention_episode_share": s.get("intervention_episode_share"),
                      "intervention_step_share": s.get("intervention_step_share")}
                     for s, f, r in zip(seeds, finals, reached)],
    }


def plot(task: str, seeds: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for result in seeds:
        points = result["evaluations"]
        success = [p["success_rate"] for p in points]
        label = f"seed {result['seed']}"
        axes[0].plot([p["env_steps"] for p in points], success, marker="o", label=label)
        axes[1].plot([p["minutes"] for p in points], success, marker="o", label=label)
    for axis, xlabel in zip(axes, ("env steps", "minutes")):
        axis.axhline(GOAL, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("no-person success (deterministic policy, new seeds)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].legend(loc="lower right")
    figure.suptitle(f"{task}: evaluation of checkpoints during training")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report(task: str, board: dict) -> None:
    def fmt(stat, percent=False, digits=1):
        if stat is None:
            return "-"
        if percent:
            return f"{100 * stat['mean']:.0f} % (min {100 * stat['min']:.0f}, max " \
                   f"{100 * stat['max']:.0f})"
        return f"{stat['mean']:.{digits}f} (min {stat['min']:.{digits}f}, max " \
               f"{stat['max']:.{digits}f}, n={stat['n']})"

    print(f"\n{task}: {board['seeds']} seeds")
    print(f"  no-person success, final checkpoint  {fmt(board['final_no_person_success'], True)}")
    print(f"  seeds reaching >= 80 %               {board['seeds_reaching_80']}/{board['seeds']}")
    print(f"  minutes to 80 %                      {fmt(board['minutes_to_80'])}")
    print(f"  env steps to 80 %                    {fmt(board['env_steps_to_80'], digits=0)}")
    print(f"  training success (all episodes)      {fmt(board['training_success_all'], True)}")
    print(f"  training success (untouched)         "
          f"{fmt(board['training_success_untouched'], True)}")
    print(f"  episodes with an intervention        "
          f"{fmt(board['intervention_episode_share'], True)}")
    print(f"  steps intervened                     {fmt(board['intervention_step_share'], True)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="gym_hil_state")
    parser.add_argument("--config", help="a TrainConfig JSON instead of the task's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=15.0, help="training time per seed")
    parser.add_argument("--eval-every", type=float, default=2.0, help="minutes between evals")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--final-episodes", type=int, default=50)
    parser.add_argument("--save-freq", type=int, default=1500,
                        help="optimisation steps between checkpoints (what can be evaluated)")
    parser.add_argument("--output-dir")
    parser.add_argument("--report-only", action="store_true",
                        help="summarise the seeds already in --output-dir")
    args, overrides = parser.parse_known_args(argv)
    out = Path(args.output_dir or f"outputs/scoreboard/{args.task}")
    config = args.config or TASKS[args.task]
    if args.report_only:
        seeds = [json.loads(p.read_text()) for p in sorted(out.glob("seed_*/scoreboard_seed.json"))]
    else:
        seeds = [train_seed(config, seed, out / f"seed_{seed}", args, overrides)
                 for seed in args.seeds]
    board = summarise(args.task, seeds)
    board.update({"config": config, "minutes_per_seed": args.minutes})
    (out / "scoreboard.json").write_text(json.dumps(board, indent=2) + "\n")
    plot(args.task, seeds, out / f"{args.task}_scoreboard.png")
    report(args.task, board)
    print(f"  plot: {out / f'{args.task}_scoreboard.png'}")
    print(json.dumps({k: board[k] for k in ("task", "seeds", "seeds_reaching_80",
                                             "final_no_person_success", "minutes_to_80",
                                             "env_steps_to_80", "intervention_episode_share",
                                             "intervention_step_share")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
