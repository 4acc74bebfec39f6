"""Evaluate a trained checkpoint: the deterministic policy, no human, N episodes.

    python -m hiljax.eval --checkpoint outputs/sim_pick_lift [--episodes 20] [--config CONFIG]

`--checkpoint` is a run directory, its `checkpoints/` directory or one `step_*` directory. The
env comes from the run's `train_config.json` (or --config), with interventions switched off
unless --with-operator. Prints success rate, mean return and mean episode length, and which
checkpoint step was evaluated (LeRobot's eval once evaluated an untrained policy: #2051).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from hiljax.agents.sac import SACAgent
from hiljax.policy import Policy, make_policy
from hiljax.run.checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger("hiljax.eval")


def find_checkpoint(path: Path) -> tuple[Path, Path]:
    """(checkpoint path for load_checkpoint, run directory)."""
    if (path / "checkpoints").is_dir():
        return path / "checkpoints", path
    if path.name == "checkpoints":
        return path, path.parent
    if path.name.startswith("step_"):
        return path, path.parent.parent
    raise CheckpointError(f"{path} is not a run, checkpoints or step_* directory")


def checkpoint_policy(agent: SACAgent, seed: int = 0, deterministic: bool = True) -> Policy:
    """The checkpoint's policy, exactly as an actor acts with it."""
    return make_policy(agent.config, agent.actor_parameters(), agent.frozen_backbone_parameters(),
                       seed=seed, deterministic=deterministic)


def evaluate(env, policy: Policy, episodes: int, seed: int = 0) -> dict:
    returns, lengths, successes = [], [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, steps, done, info = 0.0, 0, False, {}
        while not done:
            observation, reward, terminated, truncated, info = env.step(policy(observation))
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
        successes.append(bool(info.get("next.success", total > 0.5)))
    return {"episodes": episodes, "success_rate": float(np.mean(successes)),
            "mean_return": float(np.mean(returns)), "mean_episode_length": float(np.mean(lengths))}


def main(argv: list[str] | None = None) -> int:
    from hiljax.envs.configs import without_interventions
    from hiljax.run.env import make_env
    from hiljax.run.train_config import check_env_matches_policy, load_train_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--config", help="TrainConfig JSON (default: the run's train_config.json)")
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--with-operator", action="store_true", help="keep interventions on")
    parser.add_argument("--stochastic", action="store_true", help="sample instead of the mean")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    checkpoint_path, run_dir = find_checkpoint(Path(args.checkpoint))
    state = load_checkpoint(checkpoint_path, with_buffers=False)
    config_path = args.config or run_dir / "train_config.json"
    train = load_train_config(config_path, overrides)
    env_config = train.env if args.with_operator else without_interventions(train.env)
    env = make_env(env_config)
    check_env_matches_policy(env.observation_space, env.action_space, state.agent.config)
    step = int(state.agent.step)
    log.info("evaluating %s (trained for %d optimisation steps) on %d episodes", state.path, step,
             args.episodes)
    results = {"checkpoint": str(state.path), "checkpoint_step": step,
               **evaluate(env, checkpoint_policy(state.agent, args.seed, not args.stochastic),
                          args.episodes, args.seed)}
    env.close()
    for key, value in results.items():
        print(f"{key:24s} {value}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
