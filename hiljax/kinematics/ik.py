"""Damped-least-squares IK for a serial arm, batched over starts: numpy only.

Private to ``hiljax.kinematics``, which supplies the pose and Jacobian of the frame being solved.
The solver works in radians; each sample in a batch stops on its own (converged, stalled, or out
of iterations) and the batch stops when all have. The loop is written for few numpy calls per
iteration: a single solve is dominated by call overhead, not arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .se3 import rotation_vector

# A joint this close to a limit counts as sitting on it (radians).
_AT_LIMIT = 1e-9
# Past this, no step is larger than min_step_deg anyway; the cap keeps the numbers tame.
_MAX_DAMPING = 1e4
_EYES = {3: np.eye(3), 6: np.eye(6)}  # position-only and full-pose systems


@dataclass(frozen=True)
class IKOptions:
    """Stopping rules and step control of ``RobotKinematics.solve_ik``."""

    position_tolerance: float = 1e-4  # metres: converged when the frame is this close
    rotation_tolerance: float = 1e-3  # radians: and (full pose) this well aligned
    max_iterations: int = 100
    # A controller sends one IK solution per tick: capping each joint's move per iteration keeps
    # a linearisation far from the truth (near a singularity) from throwing the arm around.
    max_step_deg: float = 20.0
    # DLS damping lambda (metres per radian): bounds the step where the Jacobian loses rank.
    # Small enough that near a solution the step is almost Gauss-Newton (fast convergence).
    damping: float = 5e-3
    # Metres of position error that one radian of orientation error is worth (full pose):
    # roughly the gripper's size, so neither part swamps the other on unreachable targets.
    rotation_weight: float = 0.1
    # Stop when no joint would move more than this (stuck on a limit, or at the closest point),
    # or when a step brings the frame less than min_progress metres closer (weighted error):
    # an out-of-reach target is approached ever more slowly and would use every iteration.
    min_step_deg: float = 1e-5
    min_progress: float = 1e-6
    # Off by default: a controller wants the solution reached from the current joints, not a
    # far-away one. When > 0, a failed solve is retried from this many random joint vectors
    # (within the limits, fixed seed) and the best result kept - for offline use.
    restarts: int = 0
    restart_seed: int = 0

    def __post_init__(self):
        if min(self.position_tolerance, self.rotation_tolerance, self.max_step_deg,
               self.damping, self.rotation_weight) <= 0:
            raise ValueError(f"IKOptions need positive tolerances, step, damping, weight: {self}")
        if self.max_iterations < 0 or self.restarts < 0:
            raise ValueError(f"IKOptions need max_iterations >= 0 and restarts >= 0: {self}")


@dataclass(frozen=True)
class IKResult:
    """What IK found: joints in degrees (the input's shape), and how good they are.

    Arrays of shape (N,) for a batch, Python scalars for one solve. ``rotation_error`` is the
    angle to the target orientation (radians), also reported (not enforced) for a position-only
    solve of a pose; 0.0 when only a position was given.
    """

    joints: np.ndarray
    converged: bool | np.ndarray
    position_error: float | np.ndarray
    rotation_error: float | np.ndarray
    iterations: int | np.ndarray


@dataclass
class Solution:
    """The solver's raw answer: (N, J) radians and per-sample (N,) figures."""

    joints_rad: np.ndarray
    converged: np.ndarray
    position_error: np.ndarray
    rotation_error: np.ndarray
    iterations: np.ndarray
    cost: np.ndarray  # squared position error + squared weighted rotation error (if enforced)
    rotation: np.ndarray  # (N, 3, 3) orientation reached


PoseAndJacobians = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def solve_damped_least_squares(pose_and_jacobians: PoseAndJacobians, start_rad: np.ndarray,
                               limits_rad: np.ndarray, target_pos: np.ndarray,
                               target_rot: np.ndarray | None, position_only: bool,
                               options: IKOptions) -> Solution:
    """Iterate DLS steps from ``start_rad`` (N, J) until each sample converges or stops.

    ``pose_and_jacobians(q)`` -> pose (N, 4, 4), world joint axes (N, J, 3), and velocity of the
    frame origin per joint (N, J, 3). Only steps that lower the error are taken, so a target out
    of reach ends at the closest pose the descent finds, with ``converged`` False.
    """
    enforced_rot = None if position_only else target_rot
    solution = _descend(pose_and_jacobians, start_rad, limits_rad, target_pos, enforced_rot,
                        options)
    if options.restarts:
        _retry_failures(solution, pose_and_jacobians, limits_rad, target_pos, enforced_rot,
                        options)
    if target_rot is not None:
        rot_err = rotation_vector(target_rot @ np.swapaxes(solution.rotation, 1, 2))
        solution.rotation_error = np.sqrt(np.einsum("ij,ij->i", rot_err, rot_err))
    return solution


def _descend(pose_and_jacobians, start, limits, target_pos, target_rot, options) -> Solution:
    """Levenberg-Marquardt style DLS: a step that does not lower the cost is rejected and the
    damping raised, so far from the target (where the linearisation is poor) steps shrink
    toward gradient descent instead of oscillating; an accepted step lowers the damping again."""
    low, high = limits[:, 0], limits[:, 1]
    q = np.minimum(np.maximum(start, low), high)
    state = _State.evaluate(pose_and_jacobians(q), target_pos, target_rot, options)
    damping = np.full(len(q), options.damping)
    iterations = np.zeros(len(q), dtype=np.int64)
    active = ~state.converged
    max_step, min_step = np.deg2rad(options.max_step_deg), np.deg2rad(options.min_step_deg)
    for _ in range(options.max_iterations):
        if not active.any():
            break
        jac, err = _weighted_system(state, options.rotation_weight)
        dq = _limited_step(jac, err, q, low, high, damping, max_step)
        active &= np.abs(dq).max(axis=1) >= min_step  # stalled: on a limit, or at a minimum
        iterations += active
        trial_q = np.minimum(np.maximum(q + dq, low), high)
        trial = _State.evaluate(pose_and_jacobians(trial_q), target_pos, target_rot, options)
        accept = active & ((trial.cost < state.cost) | trial.converged)
        progress = np.sqrt(state.cost) - np.sqrt(trial.cost)
        active &= ~accept | (progress >= options.min_progress) | trial.converged
        state.take(trial, accept)
        np.copyto(q, trial_q, where=accept[:, None])
        damping = np.where(accept, np.maximum(0.1 * damping, options.damping),
                           np.minimum(10.0 * damping, _MAX_DAMPING))
        active &= ~state.converged
    return Solution(q, state.converged, np.sqrt(state.pos_sq), np.zeros(len(q)), iterations,
                    state.cost, state.rotation)


@dataclass
class _State:
    """Errors and Jacobians at the current joints of every sample."""

    rotation: np.ndarray  # (N, 3, 3)
    axis_w: np.ndarray  # (N, J, 3)
    linear: np.ndarray  # (N, J, 3)
    pos_err: np.ndarray  # (N, 3)
    rot_err: np.ndarray | None  # (N, 3); None when the orientation is not enforced
    pos_sq: np.ndarray  # (N,)
    cost: np.ndarray  # (N,) squared position error + squared weighted rotation error
    converged: np.ndarray  # (N,) bool

    @classmethod
    def evaluate(cls, pose_and_jacobians, target_pos, target_rot, options: IKOptions) -> _State:
        pose, axis_w, linear = pose_and_jacobians
        rotation = pose[:, :3, :3]
        pos_err = target_pos - pose[:, :3, 3]
        pos_sq = np.einsum("ij,ij->i", pos_err, pos_err)
        converged = pos_sq <= options.position_tolerance**2
        cost, rot_err = pos_sq, None
        if target_rot is not None:
            rot_err = rotation_vector(target_rot @ np.swapaxes(rotation, 1, 2))
            rot_sq = np.einsum("ij,ij->i", rot_err, rot_err)
            converged &= rot_sq <= options.rotation_tolerance**2
            cost = pos_sq + options.rotation_weight**2 * rot_sq
        return cls(rotation, axis_w, linear, pos_err, rot_err, pos_sq, cost, converged)

    def take(self, other: _State, where: np.ndarray) -> None:
        """Overwrite the samples selected by ``where`` with ``other``'s."""
        for name, mine in vars(self).items():
            if mine is not None:
                mask = where.reshape(where.shape + (1,) * (mine.ndim - 1))
                np.copyto(mine, getattr(other, name), where=mask)


def _retry_failures(solution: Solution, pose_and_jacobians, limits, target_pos, target_rot,
                    options: IKOptions) -> None:
    """Re-solve failed samples from random starts; keep whichever result is better."""
    rng = np.random.default_rng(options.restart_seed)
    for _ in range(options.restarts):
        failed = np.flatnonzero(~solution.converged)
        if not len(failed):
            return
        starts = rng.uniform(limits[:, 0], limits[:, 1], size=(len(failed), len(limits)))
        retry = _descend(pose_and_jacobians, starts, limits, target_pos[failed],
                         None if target_rot is None else target_rot[failed], options)
        solution.iterations[failed] += retry.iterations
        take = retry.converged | (retry.cost < solution.cost[failed])
        for name in ("joints_rad", "converged", "position_error", "cost", "rotation"):
            getattr(solution, name)[failed[take]] = getattr(retry, name)[take]


def _weighted_system(state: _State, rotation_weight: float):
    """The linear system J dq = e of one step: (N, 3|6, J) and (N, 3|6)."""
    if state.rot_err is None:
        return np.swapaxes(state.linear, 1, 2), state.pos_err
    jac = np.concatenate([state.linear, rotation_weight * state.axis_w], axis=2)
    err = np.concatenate([state.pos_err, rotation_weight * state.rot_err], axis=1)
    return np.swapaxes(jac, 1, 2), err


def _damped_solve(jac: np.ndarray, err: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """dq = J^T (J J^T + lambda^2 I)^-1 e: positive definite, so finite at any singularity."""
    jac_t = np.swapaxes(jac, 1, 2)
    gram = jac @ jac_t
    gram += (damping**2)[:, None, None] * _EYES[jac.shape[1]]
    return (jac_t @ np.linalg.solve(gram, err[..., None]))[..., 0]


def _limited_step(jac, err, q, low, high, damping: np.ndarray, max_step: float) -> np.ndarray:
    """One DLS step that respects the joint limits and the per-iteration step cap."""
    dq = _damped_solve(jac, err, damping)
    # A joint on a limit that the step pushes outward would be clipped to no motion while the
    # rest of the step assumed it moved: take it out of the solve and let the others make up.
    blocked = ((q <= low + _AT_LIMIT) & (dq < 0)) | ((q >= high - _AT_LIMIT) & (dq > 0))
    if blocked.any():
        dq = _damped_solve(jac * ~blocked[:, None, :], err, damping)
    largest = np.abs(dq).max(axis=1, keepdims=True)
    # Scale the whole step (not each joint) so its direction is kept.
    return dq * np.minimum(1.0, max_step / np.maximum(largest, 1e-300))
