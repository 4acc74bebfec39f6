"""Summarise a recorded dataset: `python -m hiljax.datasets PATH [--episodes]`.

Prints the format version, fps, counts, tasks and features, then (with --episodes) one line per
episode: length, whether it reached a success, and the share of intervention steps. A dataset
hiljax cannot read prints the reason and exits with code 1.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .format import IS_INTERVENTION, REWARD, DatasetError
from .reader import LeRobotDataset, read_dataset


def summary(dataset: LeRobotDataset) -> list[str]:
    version = dataset.info.get("codebase_version")
    lines = [(f"{dataset.root}: LeRobot {version}, {dataset.num_episodes} episodes, "
              f"{dataset.num_frames} frames at {dataset.fps:g} fps"),
             f"tasks: {dataset.tasks or '(none)'}"]
    for key, spec in dataset.features.items():
        lines.append(f"  {key:<40} {spec['dtype']:<8} {list(spec['shape'])}")
    if REWARD in dataset.features:
        rewards = dataset.column(REWARD)
        lines.append(f"frames with {REWARD} >= 1: {int((rewards >= 1).sum())} of {len(rewards)}")
    return lines


def episode_lines(dataset: LeRobotDataset) -> list[str]:
    rewards = dataset.column(REWARD) if REWARD in dataset.features else None
    interventions = (dataset.column(IS_INTERVENTION).astype(float)
                     if IS_INTERVENTION in dataset.features else None)
    lines = []
    for episode, start, end in dataset.episode_bounds():
        text = f"episode {episode:>5}: {end - start:>4} frames"
        if rewards is not None:
            text += f", success {'yes' if (rewards[start:end] >= 1).any() else 'no '}"
        if interventions is not None:
            text += f", interventions {np.mean(interventions[start:end]):.0%}"
        lines.append(text)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the dataset root (the directory holding meta/info.json)")
    parser.add_argument("--episodes", action="store_true", help="one line per episode")
    args = parser.parse_args(argv)
    try:
        dataset = read_dataset(args.path)
        print("\n".join(summary(dataset) + (episode_lines(dataset) if args.episodes else [])))
    except DatasetError as error:
        print(f"cannot read the dataset: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
