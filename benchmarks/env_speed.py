"""Env steps per second of the full make_robot_env stack (configs/env_sim.json), state-only and
with both cameras. Falls back to the fake robot, with a note, when the MuJoCo sim is missing.

    python benchmarks/env_speed.py [--steps 1000] [--image-size 128]

Goals on 2 cores: >= 300 steps/s state-only, >= 50 with two 128x128 cameras (a real arm runs at
10). Prints the figures, then ONE line of JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "env_sim.json"
GOALS = {"state_only": 300.0, "two_cameras": 50.0}


def sim_available() -> bool:
    try:
        import hiljax.envs.sim  # noqa: F401
    except ImportError:
        return False
    return True


def configure(robot_type: str, cameras: tuple[str, ...], image_size: int):
    cfg = load_env_config(CONFIG)
    robot = dataclasses.replace(cfg.robot, type=robot_type, cameras=cameras, image_size=image_size)
    return dataclasses.replace(cfg, robot=robot)


def steps_per_second(cfg, steps: int, seed: int = 0) -> dict:
    """Random EE actions through the whole stack; resets (timed apart) when episodes end."""
    env = make_robot_env(cfg)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(env.action_space.low, env.action_space.high,
                          (steps, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=seed)
    step_time = reset_time = 0.0
    resets = 0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        step_time += time.perf_counter() - start
        if terminated or truncated:
            start = time.perf_counter()
            env.reset()
            reset_time += time.perf_counter() - start
            resets += 1
    env.close()
    return {"steps_per_s": steps / step_time,
            "reset_ms": 1e3 * reset_time / resets if resets else None, "resets": resets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    robot_type = "sim_so100" if sim_available() else "fake"
    if robot_type == "fake":
        print("NOTE: hiljax.envs.sim is not importable; measuring the fake robot instead")
    results = {}
    for name, cameras in (("state_only", ()), ("two_cameras", ("front", "wrist"))):
        cfg = configure(robot_type, cameras, args.image_size)
        results[name] = steps_per_second(cfg, args.steps)
        figure = results[name]
        print(f"{name:12s} {figure['steps_per_s']:8.1f} steps/s (goal >= {GOALS[name]:.0f})  "
              f"reset {figure['reset_ms'] or 0:.1f} ms x {figure['resets']}")
    print(json.dumps({
        "benchmark": "env_speed", "robot": robot_type, "steps": args.steps,
        "image_size": args.image_size, "cpu_count": os.cpu_count(),
        **{f"{k}_steps_per_s": round(v["steps_per_s"], 1) for k, v in results.items()},
        **{f"{k}_reset_ms": v["reset_ms"] and round(v["reset_ms"], 1) for k, v in results.items()},
        "goals_met": all(results[k]["steps_per_s"] >= g for k, g in GOALS.items()),
    }))


if __name__ == "__main__":
    main()
