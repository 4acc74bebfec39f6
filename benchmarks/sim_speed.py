"""Raw SimRobot speed: control steps per second, without and with cameras.

    MUJOCO_GL=egl python benchmarks/sim_speed.py [--quick] [--steps N]

One control step = `send_joint_targets` (0.1 s of physics: 50 MuJoCo steps at the default
physics_dt 0.002) + reading joints, currents and the cube; "with cameras" adds `read_cameras`
for `front` and `wrist` at 128x128 (one reused offscreen renderer, no shadows / reflections /
multisampling). Scenarios:
  (a) "free": small random joint targets around the rest pose (the arm in free air);
  (b) "pick": the scripted pick-and-lift, repeated (finger/cube/table contacts active);
  (c) the same with physics_dt 0.004 (25 MuJoCo steps per control step), a speed option;
  (d) render only: milliseconds per 128x128 frame.
Context: the env-level goal (issue 5) is >= 300 steps/s state-only and >= 50 steps/s with two
cameras for the WHOLE wrapper stack on 2 cores, so the raw robot must be comfortably faster.
Each rate is the median of 3 rounds (the 2 cores are shared; single rounds are noisy).
The last line printed is one JSON object holding every figure.
"""

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from hiljax.envs.sim import HOME_JOINT_POSITIONS, SimRobot
from hiljax.envs.sim.scripted_pick import pick_and_lift_targets

ENV_GOAL_STATE_ONLY = 300.0
ENV_GOAL_TWO_CAMERAS = 50.0


def free_targets(rng, count: int) -> np.ndarray:
    """Targets wandering +-10 degrees around the rest pose, gripper half open."""
    targets = np.tile(HOME_JOINT_POSITIONS, (count, 1)).astype(np.float64)
    targets[:, :5] += rng.uniform(-10, 10, size=(count, 5))
    targets[:, 5] = 50.0
    return targets


def one_control_step(robot, targets, cameras: bool) -> None:
    robot.send_joint_targets(targets)
    robot.read_joint_positions()
    robot.read_joint_currents()
    robot.environment_state()
    if cameras:
        robot.read_cameras()


def free_rate(robot, steps: int, cameras: bool) -> float:
    rng = np.random.default_rng(0)
    targets = free_targets(rng, steps)
    robot.set_joint_positions(HOME_JOINT_POSITIONS)
    one_control_step(robot, targets[0], cameras)  # warm-up (first render makes GL buffers)
    start = time.perf_counter()
    for target in targets:
        one_control_step(robot, target, cameras)
    return steps / (time.perf_counter() - start)


def pick_rate(robot, steps: int, cameras: bool) -> tuple[float, float]:
    """Control steps/s over repeated scripted picks, and the fraction of picks that succeeded."""
    rng = np.random.default_rng(1)
    done, successes, picks, elapsed = 0, 0, 0, 0.0
    while done < steps:
        robot.set_joint_positions(HOME_JOINT_POSITIONS)
        robot.reset_scene(rng)
        plan = list(pick_and_lift_targets(robot))  # IK outside the timed loop
        start = time.perf_counter()
        for target in plan:
            one_control_step(robot, target, cameras)
        elapsed += time.perf_counter() - start
        done += len(plan)
        successes += robot.task_success()
        picks += 1
    return done / elapsed, successes / picks


def render_ms(robot, frames: int) -> float:
    robot.read_cameras()
    start = time.perf_counter()
    for _ in range(frames):
        robot.read_cameras()
    return (time.perf_counter() - start) / (frames * len(robot.camera_names)) * 1e3


def median_of_rounds(measure_once, rounds: int = 3):
    results = [measure_once() for _ in range(rounds)]
    if isinstance(results[0], tuple):
        return tuple(statistics.median(column) for column in zip(*results))
    return statistics.median(results)


def measure(steps: int) -> dict:
    figures = {}
    for physics_dt in (0.002, 0.004):
        tag = f"dt{physics_dt}"
        state = SimRobot(render=False, physics_dt=physics_dt)
        camera = SimRobot(cameras=("front", "wrist"), image_size=128, physics_dt=physics_dt)
        camera.connect()
        few = max(steps // 4, 20)
        figures[f"free_state_only_{tag}"] = median_of_rounds(
            partial(free_rate, state, steps, cameras=False))
        figures[f"free_two_cameras_{tag}"] = median_of_rounds(
            partial(free_rate, camera, few, cameras=True))
        figures[f"pick_state_only_{tag}"], figures[f"pick_success_{tag}"] = median_of_rounds(
            partial(pick_rate, state, steps, cameras=False))
        figures[f"pick_two_cameras_{tag}"], _ = median_of_rounds(
            partial(pick_rate, camera, few, cameras=True))
        if physics_dt == 0.002:
            figures["render_ms_per_frame"] = median_of_rounds(partial(render_ms, camera, few))
        camera.disconnect()
    return {key: round(value, 3) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="control steps per figure")
    args = parser.parse_args()
    steps = args.steps or (100 if args.quick else 1000)
    print(f"SimRobot control steps/s (MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
          f"{os.cpu_count()} CPUs, {steps} steps per state-only round, 3 rounds)")
    figures = measure(steps)
    for key, value in figures.items():
        print(f"  {key:32s} {value:10.3f}")
    figures["env_goal_state_only"] = ENV_GOAL_STATE_ONLY
    figures["env_goal_two_cameras"] = ENV_GOAL_TWO_CAMERAS
    figures["mujoco_gl"] = os.environ.get("MUJOCO_GL")
    figures["steps"] = steps
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
