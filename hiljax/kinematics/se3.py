"""Rigid-body maths for the kinematics module: SO(3) / SE(3) in numpy, batched over leading axes.

Conventions (the reference's):
- A twist or screw axis is ordered ``[w, v]``: angular part first, then linear, as in
  "Modern Robotics" and LeRobot's hand-written kinematics (shoulder ``[0, 0, -1, 0, 0, 0]``).
- A pose *error* is ordered ``[translation, rotation]`` (LeRobot's ``se3_error`` and
  ``pose_difference_se3``); it is a difference of poses, not a twist.
- Every function accepts leading batch axes: ``(..., 3)`` vectors, ``(..., 4, 4)`` poses.

Private to ``hiljax.kinematics`` (which re-exports the reference's public names).
"""

from __future__ import annotations

import numpy as np

# Above this angle the axis is read off the symmetric part of R: sin(angle) is too small there.
_NEAR_PI = np.pi - 1e-2
_SMALL_ANGLE = 1e-6


def skew_symmetric(w: np.ndarray) -> np.ndarray:
    """The matrix ``[w]`` with ``[w] @ x == cross(w, x)``; ``(..., 3) -> (..., 3, 3)``."""
    w = np.asarray(w, dtype=np.float64)
    out = np.zeros(w.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -w[..., 2], w[..., 1]
    out[..., 1, 0], out[..., 1, 2] = w[..., 2], -w[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -w[..., 1], w[..., 0]
    return out


def rodrigues_rotation(w: np.ndarray, theta: np.ndarray | float) -> np.ndarray:
    """Rotation by t radians about the unit axis w: ``I + sin t [w] + (1 - cos t) [w]^2``."""
    w_hat = skew_symmetric(w)
    theta = np.asarray(theta, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(theta) * w_hat + (1.0 - np.cos(theta)) * (w_hat @ w_hat)


def twist_exp_coefficients(screw_axes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constant 4x4 matrices ``(A, B, C)`` with ``exp([S] t) = I + sin t A + (1 - cos t) B + t C``.

    Expanding the twist exponential once per axis turns a batch of exponentials into three
    broadcast multiply-adds, which is what makes batched FK and a sub-millisecond IK possible
    in numpy. Valid for unit rotation axes (``|w| = 1``) and pure translations (``w = 0``).
    """
    screw_axes = np.asarray(screw_axes, dtype=np.float64)
    _check_screw_axes(screw_axes)
    w, v = screw_axes[..., :3], screw_axes[..., 3:]
    w_hat = skew_symmetric(w)
    w_hat2 = w_hat @ w_hat
    shape = screw_axes.shape[:-1] + (4, 4)
    a, b, c = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    # p(t) = (I t + (1 - cos t)[w] + (t - sin t)[w]^2) v, split by coefficient.
    a[..., :3, :3], a[..., :3, 3] = w_hat, -np.einsum("...ij,...j->...i", w_hat2, v)
    b[..., :3, :3], b[..., :3, 3] = w_hat2, np.einsum("...ij,...j->...i", w_hat, v)
    c[..., :3, 3] = v + np.einsum("...ij,...j->...i", w_hat2, v)
    return a, b, c


def _check_screw_axes(screw_axes: np.ndarray) -> None:
    w_norm = np.linalg.norm(screw_axes[..., :3], axis=-1)
    v_norm = np.linalg.norm(screw_axes[..., 3:], axis=-1)
    revolute = np.isclose(w_norm, 1.0)
    prismatic = np.isclose(w_norm, 0.0) & np.isclose(v_norm, 1.0)
    if not np.all(revolute | prismatic):
        raise ValueError("a screw axis needs a unit rotation axis, or w = 0 and a unit v")


def screw_axis_to_transform(screw_axis: np.ndarray, theta: np.ndarray | float) -> np.ndarray:
    """The twist exponential ``exp([S] theta)`` as a 4x4 pose; batched over ``theta``."""
    a, b, c = twist_exp_coefficients(screw_axis)
    theta = np.asarray(theta, dtype=np.float64)[..., None, None]
    return np.eye(4) + np.sin(theta) * a + (1.0 - np.cos(theta)) * b + theta * c


def invert_transform(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform without a general matrix inverse: ``(R^T, -R^T p)``."""
    pose = np.asarray(pose, dtype=np.float64)
    rot_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    out = np.zeros(pose.shape)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, pose[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def adjoint(pose: np.ndarray) -> np.ndarray:
    """The 6x6 adjoint map of a pose for ``[w, v]`` twists: ``[[R, 0], [[p] R, R]]``."""
    pose = np.asarray(pose, dtype=np.float64)
    rot, pos = pose[..., :3, :3], pose[..., :3, 3]
    out = np.zeros(pose.shape[:-2] + (6, 6))
    out[..., :3, :3] = rot
    out[..., 3:, 3:] = rot
    out[..., 3:, :3] = skew_symmetric(pos) @ rot
    return out


def rotation_vector(rot: np.ndarray) -> np.ndarray:
    """Log map of SO(3): the rotation vector (axis * angle, angle in [0, pi]) of ``(..., 3, 3)``.

    Uses atan2 for the angle (accurate at every angle, unlike arccos near 0 and pi) and the
    symmetric part of R near pi, where the antisymmetric part vanishes. Never NaN for a
    rotation matrix; tolerates the rounding error of a long product of rotations.
    """
    rot = np.asarray(rot, dtype=np.float64)
    vee = np.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0],
                    rot[..., 1, 0] - rot[..., 0, 1]], axis=-1)  # = 2 sin(angle) axis
    cos_angle = 0.5 * (np.trace(rot, axis1=-2, axis2=-1) - 1.0)
    sin_angle = 0.5 * np.linalg.norm(vee, axis=-1)
    angle = np.arctan2(sin_angle, cos_angle)
    # angle / (2 sin angle), with its Taylor series where sin(angle) ~ 0 near zero.
    safe_sin = np.where(sin_angle > _SMALL_ANGLE, sin_angle, 1.0)
    scale = np.where(sin_angle > _SMALL_ANGLE, angle / (2.0 * safe_sin), 0.5 + angle**2 / 12.0)
    out = scale[..., None] * vee
    near_pi = angle > _NEAR_PI
    if np.any(near_pi):
        near_pi_value = _rotation_vector_near_pi(rot, vee, angle, cos_angle)
        out = np.where(near_pi[..., None], near_pi_value, out)
    return out


def _rotation_vector_near_pi(rot, vee, angle, cos_angle):
    # sym(R) = cos(a) I + (1 - cos(a)) w w^T holds at every angle; near pi, 1 - cos(a) ~ 2.
    sym = 0.5 * (rot + np.swapaxes(rot, -1, -2))
    outer = (sym - cos_angle[..., None, None] * np.eye(3)) / np.maximum(1.0 - cos_angle, 1.0)[
        ..., None, None]
    diag = np.diagonal(outer, axis1=-2, axis2=-1)
    k = np.argmax(diag, axis=-1)
    column = np.take_along_axis(outer, k[..., None, None], axis=-1)[..., 0]
    axis = column / np.sqrt(np.maximum(np.take_along_axis(diag, k[..., None], -1), 1e-12))
    # w and -w are both axes of sym(R); the antisymmetric part (2 sin(a) w) picks the sign.
    sign = np.where(np.einsum("...i,...i->...", axis, vee) < 0.0, -1.0, 1.0)
    return (sign * angle)[..., None] * axis


def se3_error(target_pose: np.ndarray, current_pose: np.ndarray) -> np.ndarray:
    """``[p_target - p_current, rotvec(R_target R_current^T)]``: the error an IK step removes.

    The rotation part is in the world frame (left-multiplied), matching the reference.
    """
    target_pose = np.asarray(target_pose, dtype=np.float64)
    current_pose = np.asarray(current_pose, dtype=np.float64)
    position = target_pose[..., :3, 3] - current_pose[..., :3, 3]
    rot_error = target_pose[..., :3, :3] @ np.swapaxes(current_pose[..., :3, :3], -1, -2)
    return np.concatenate([position, rotation_vector(rot_error)], axis=-1)


def pose_difference_se3(pose1: np.ndarray, pose2: np.ndarray) -> np.ndarray:
    """``pose1 - pose2`` as ``[translation, rotation vector of R1 R2^T]`` (reference name)."""
    return se3_error(pose1, pose2)


def translation_matrix(xyz) -> np.ndarray:
    """A 4x4 pure translation."""
    out = np.eye(4)
    out[:3, 3] = np.asarray(xyz, dtype=np.float64)
    return out
