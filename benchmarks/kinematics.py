"""Kinematics speed and IK success rates (numpy, one thread).

    python benchmarks/kinematics.py [--quick] [--robot so100]

Figures:
  (a) FK of the gripper tip: one call (one joint vector), and batched (per pose, N = 10,000);
  (b) IK time per solve, one target per call as a controller does, position-only and full pose,
      median and p99, for three starts:
        - "step": the env's end-effector action - the target is the current tip moved by up to
          2 cm per axis (the reference's step size), from the current joints; position only (a
          5-DoF arm cannot in general move while keeping all three orientation angles), and a
          few such targets lie past the workspace's edge or a joint limit;
        - "near": random reachable targets from joints within +-25 degrees of a solution;
        - "zero": the same targets from the zero pose (the reference's self-test start);
  (c) batched IK per solve (N = 1,000 near targets in one call);
  (d) success rates (position error < 1 mm) on 1,000 random reachable targets for every arm,
      from near starts, from zero, and from zero with 4 random restarts.
Goal: IK median under 1 ms from the current joints (the controller's case: "step" and "near").
The last line printed is one JSON object holding every figure.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiljax.kinematics import IKOptions, RobotKinematics

GOAL_IK_MEDIAN_MS = 1.0
STEP_M = 0.02  # the reference's end-effector step size (reference_facts section 4)


def per_call_us(fn, repeats: int) -> float:
    """Median of 5 rounds of ``repeats`` calls, microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - start) / repeats * 1e6)
    return statistics.median(rounds)


def fk_figures(kin, rng, quick: bool) -> dict:
    joints = random_joints(kin, rng, 10_000)
    one = joints[0]
    single_us = per_call_us(lambda: kin.fk_gripper_tip(one), 500 if quick else 3000)
    batch_us = per_call_us(lambda: kin.fk_gripper_tip(joints), 2 if quick else 10) / len(joints)
    return {"fk_single_us": round(single_us, 2), "fk_batched_per_pose_us": round(batch_us, 3)}


def random_joints(kin, rng, n):
    low, high = kin.joint_limits_deg.T
    return rng.uniform(low, high, size=(n, 5))


def near_problems(kin, rng, n):
    """Targets reached by random joints, and starts within +-25 degrees of those joints."""
    truth = random_joints(kin, rng, n)
    low, high = kin.joint_limits_deg.T
    return np.clip(truth + rng.uniform(-25, 25, truth.shape), low, high), kin.fk_gripper_tip(truth)


def step_problems(kin, rng, n):
    """The env's case: from the current joints, move the tip by an action of up to 2 cm/axis."""
    current = random_joints(kin, rng, n)
    targets = kin.fk_gripper_tip(current)
    targets[:, :3, 3] += rng.uniform(-STEP_M, STEP_M, size=(n, 3))
    return current, targets


def time_solves(kin, starts, targets, position_only: bool, options=None) -> dict:
    """Solve one target per call; return median / p99 ms and the success rate."""
    times, errors = [], []
    for start, target in zip(starts, targets):
        begin = time.perf_counter()
        result = kin.solve_ik(start, target, position_only=position_only, options=options)
        times.append(time.perf_counter() - begin)
        errors.append(result.position_error)
    times_ms = np.array(times) * 1e3
    return {"median_ms": round(float(np.median(times_ms)), 3),
            "p99_ms": round(float(np.percentile(times_ms, 99)), 3),
            "success": round(float(np.mean(np.array(errors) < 1e-3)), 4)}


def ik_figures(kin, rng, quick: bool) -> dict:
    n = 200 if quick else 1000
    problems = {"step": step_problems(kin, rng, n), "near": near_problems(kin, rng, n)}
    problems["zero"] = (np.zeros((n, 5)), problems["near"][1])
    out = {}
    for start_kind, (starts, targets) in problems.items():
        modes = (("position", True),) if start_kind == "step" else (("position", True),
                                                                    ("pose", False))
        for mode, position_only in modes:
            figures = time_solves(kin, starts, targets, position_only)
            out[f"ik_{mode}_{start_kind}"] = figures
            print(f"  IK {mode:8s} from {start_kind:4s}: median {figures['median_ms']:.3f} ms, "
                  f"p99 {figures['p99_ms']:.3f} ms, success {figures['success']:.1%}")
    starts, targets = near_problems(kin, rng, 1000)
    for mode, position_only in (("position", True), ("pose", False)):
        begin = time.perf_counter()
        kin.solve_ik(starts, targets, position_only=position_only)
        per_solve = (time.perf_counter() - begin) / len(starts) * 1e3
        out[f"ik_{mode}_batched_per_solve_ms"] = round(per_solve, 4)
        print(f"  IK {mode:8s} batched (N=1000, near): {per_solve:.4f} ms per solve")
    return out


def success_rates(rng) -> dict:
    """Position IK within 1 mm on 1,000 random reachable targets, per arm and start."""
    out = {}
    for robot in ("so100", "koch", "moss"):
        kin = RobotKinematics(robot)
        starts, targets = near_problems(kin, rng, 1000)
        zeros = np.zeros_like(starts)
        rates = {}
        for name, begin, options in (("near", starts, None), ("zero", zeros, None),
                                     ("zero_restarts4", zeros, IKOptions(restarts=4))):
            result = kin.solve_ik(begin, targets, options=options)
            rates[name] = round(float(np.mean(result.position_error < 1e-3)), 4)
        out[robot] = rates
        print(f"  {robot}: success near {rates['near']:.1%}, zero {rates['zero']:.1%}, "
              f"zero + 4 restarts {rates['zero_restarts4']:.1%}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--robot", default="so100", choices=("so100", "koch", "moss"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    kin = RobotKinematics(args.robot)

    print(f"Kinematics benchmark ({args.robot}, numpy {np.__version__})")
    fk = fk_figures(kin, rng, args.quick)
    print(f"  FK single call: {fk['fk_single_us']:.1f} us; "
          f"batched: {fk['fk_batched_per_pose_us']:.3f} us per pose")
    ik = ik_figures(kin, rng, args.quick)
    print("IK success (position error < 1 mm, 1,000 random reachable targets):")
    rates = success_rates(rng)
    controller = [v["median_ms"] for k, v in ik.items()
                  if isinstance(v, dict) and not k.endswith("_zero")]
    goal_met = max(controller) < GOAL_IK_MEDIAN_MS
    print(f"Goal IK median < {GOAL_IK_MEDIAN_MS} ms from the current joints: "
          f"{'met' if goal_met else 'NOT met'} (worst median {max(controller):.3f} ms)")
    print(json.dumps({"benchmark": "kinematics", "robot": args.robot, "quick": args.quick,
                      **fk, **ik, "success_rates": rates,
                      "goal_ik_median_ms": GOAL_IK_MEDIAN_MS, "goal_met": goal_met}))


if __name__ == "__main__":
    main()
