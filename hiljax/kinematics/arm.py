"""Forward / inverse kinematics of the 5-DoF hobby arms (so100, koch, moss): numpy only.

The model is LeRobot's hand-written one (reference_facts section 5): a product of exponentials
``T(q) = exp([S1] q1) ... exp([S5] q5) M_frame`` whose screw axes come from a table of link origins
measured at the zero pose (arm stretched along +x). Joint angles are in DEGREES, as in the
reference; a 6th value (the gripper jaw) may be passed and is carried through untouched.

Frames. Poses are in the world frame, whose origin is the ``base`` entry of the table (the
reference's ``X_WoBo``); the other link origins are relative to it. ``fk_shoulder`` ...
``fk_gripper`` report the reference's frames, which sit at link *centroids* (the reference's
constant offsets ``X_SoSc``, ``X_HoHc``, ...; see ``REFERENCE_FRAME_OFFSETS``), and
``fk_gripper_tip`` is the gripper origin + ``tip_length`` (0.12 m) along the gripper x axis: the
point LeRobot's end-effector env controls.

Twists and Jacobians. Screw axes and twists are ordered ``[w, v]`` (angular first, as the
reference's tables). ``space_jacobian`` / ``body_jacobian`` are the analytic 6x5 Jacobians in that
ordering, per RADIAN, in the world frame / the chosen frame. ``compute_jacobian`` keeps the
reference's meaning - rows ``[d position; d rotation vector]`` per DEGREE - computed analytically.

IK is damped least squares from the current joints, with joint limits (an active set: a joint at
a limit that the step would push further out is taken out of the solve), a per-iteration step
limit, tolerances and an iteration cap. It returns the best pose it found, says whether it
converged, and never returns NaN (the damping keeps every solve well posed at singularities).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .ik import IKOptions, IKResult, Solution, solve_damped_least_squares
from .se3 import (
    translation_matrix,
    twist_exp_coefficients,
)

logger = logging.getLogger(__name__)

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
NUM_JOINTS = len(JOINT_NAMES)
# Every frame the reference names, and how many joints (from the base) move it.
FRAMES = ("base", "shoulder", "humerus", "forearm", "wrist", "gripper", "gripper_tip")
_JOINTS_MOVING = {"base": 0, "shoulder": 1, "humerus": 2, "forearm": 3, "wrist": 4,
                  "gripper": 5, "gripper_tip": 5}
# Each joint turns about a fixed world direction at the zero pose, through the origin of the
# link it moves (reference_facts section 5: v = q x w reproduces the table's screw axes).
_JOINT_AXES = np.array([[0, 0, -1], [0, -1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float64)
_AXIS_POINTS = ("shoulder", "humerus", "forearm", "wrist", "gripper")

# Link origins at the zero pose, metres (reference_facts section 5).
ROBOT_LINK_ORIGINS: dict[str, dict[str, tuple[float, float, float]]] = {
    "koch": {"base": (0, 0, 0.02), "shoulder": (0, 0, 0), "humerus": (0, 0, 0.036),
             "forearm": (0.108, 0, 0.02), "wrist": (0.209, 0, 0.024),
             "gripper": (0.239, -0.001, 0.024)},
    "so100": {"base": (0, 0, 0.02), "shoulder": (0, 0, 0), "humerus": (0.031, 0, 0.072),
              "forearm": (0.143, 0, 0.044), "wrist": (0.278, 0, 0.050),
              "gripper": (0.320, 0, 0.050)},
    "moss": {"base": (0, 0, 0.02), "shoulder": (0, 0, 0), "humerus": (0.001, 0.001, 0.063),
             "forearm": (0.122, 0, 0.064), "wrist": (0.245, 0.002, 0.064),
             "gripper": (0.246, 0.013, 0.111)},
}

# Chosen, not measured (the tables give none): the servos turn 360 degrees, so these only keep
# the arm out of its own base and mount in the reference's zero-pose convention (arm stretched
# forward; +lift raises the upper arm, +elbow lowers the forearm, +wrist flex tilts the gripper
# down). Pan: the front half-space and the sides, not behind the base (cables, mount). Lift:
# from just below horizontal-forward to past horizontal-backward (the folded rest pose). Elbow:
# folded almost flat onto the upper arm, or bent up to 90 degrees. Wrist flex: +-110 before the
# gripper meets the forearm. Roll: a full turn. Same for the three arms; override per arm.
DEFAULT_JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "shoulder_pan": (-120.0, 120.0),
    "shoulder_lift": (-20.0, 190.0),
    "elbow_flex": (-90.0, 170.0),
    "wrist_flex": (-110.0, 110.0),
    "wrist_roll": (-180.0, 180.0),
}

# The reference's frames are link centroids: constant offsets (metres, zero-pose base axes)
# from each link origin, and constant frame rotations; the same for every arm.
REFERENCE_FRAME_OFFSETS: dict[str, tuple[float, float, float]] = {
    "base": (0.0, 0.015, 0.0), "shoulder": (-0.017, 0.0, 0.0235), "humerus": (0.0475, 0.0, 0.0),
    "forearm": (0.036, 0.0, 0.0), "wrist": (0.0035, -0.002, 0.0), "gripper": (0.07, 0.0, 0.0),
}
_FRAME_ROTATIONS = {
    "base": np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float64),
    "wrist": np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float64),
    "gripper": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64),
}
_FRAME_ROTATIONS["gripper_tip"] = _FRAME_ROTATIONS["gripper"]
_EYE4 = np.eye(4)


@dataclass(frozen=True)
class ArmGeometry:
    """Everything that defines an arm: a new arm is a new instance, no code.

    ``link_origins`` maps base, shoulder (optional, default 0), humerus, forearm, wrist and
    gripper to (x, y, z) metres at the zero pose; ``base`` is in the world frame, the others are
    relative to the base. ``joint_signs`` flips a joint whose servo counts the other way (LeRobot
    later negated shoulder_lift for every arm: ``(1, -1, 1, 1, 1)``).
    """

    link_origins: Mapping[str, Sequence[float]]
    name: str = "custom"
    tip_length: float = 0.12  # gripper origin -> tip, along the gripper x axis (metres)
    joint_signs: tuple[float, ...] = (1.0,) * NUM_JOINTS
    joint_limits_deg: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_JOINT_LIMITS_DEG))
    frame_offsets: Mapping[str, Sequence[float]] = field(
        default_factory=lambda: dict(REFERENCE_FRAME_OFFSETS))

    def __post_init__(self):
        missing = {"base", "humerus", "forearm", "wrist", "gripper"} - set(self.link_origins)
        if missing:
            raise ValueError(f"link_origins lacks {sorted(missing)}; needs base, humerus, "
                             "forearm, wrist, gripper (shoulder optional)")
        for key, xyz in self.link_origins.items():
            if np.shape(xyz) != (3,) or not np.all(np.isfinite(xyz)):
                raise ValueError(f"link_origins[{key!r}] must be 3 finite numbers, got {xyz!r}")
        if len(self.joint_signs) != NUM_JOINTS or any(abs(s) != 1 for s in self.joint_signs):
            raise ValueError(f"joint_signs must be {NUM_JOINTS} values of +1 or -1")

    def origin(self, link: str) -> np.ndarray:
        return np.asarray(self.link_origins.get(link, (0.0, 0.0, 0.0)), dtype=np.float64)


def _limits_array(limits: Mapping[str, tuple[float, float]] | np.ndarray) -> np.ndarray:
    """(5, 2) degrees from a full or partial {joint: (low, high)} map or a (5, 2) array."""
    if isinstance(limits, Mapping):
        unknown = set(limits) - set(JOINT_NAMES)
        if unknown:
            raise ValueError(f"unknown joints in joint limits: {sorted(unknown)}")
        merged = {**DEFAULT_JOINT_LIMITS_DEG, **limits}
        limits = [merged[name] for name in JOINT_NAMES]
    out = np.array(limits, dtype=np.float64)
    if out.shape != (NUM_JOINTS, 2) or not np.all(out[:, 0] < out[:, 1]):
        raise ValueError(f"joint limits must be {NUM_JOINTS} (low, high) pairs with low < high")
    return out


class RobotKinematics:
    """FK, Jacobians and IK of one arm. ``RobotKinematics("so100")`` or from an ``ArmGeometry``.

    Joint arguments: degrees, shape ``(5,)``/``(6,)`` or batched ``(N, 5|6)``; poses come back
    as ``(4, 4)`` or ``(N, 4, 4)``.
    """

    def __init__(self, robot_type: str | ArmGeometry = "so100",
                 joint_limits: Mapping[str, tuple[float, float]] | np.ndarray | None = None):
        if isinstance(robot_type, str):
            if robot_type not in ROBOT_LINK_ORIGINS:
                raise ValueError(f"Unknown robot type: {robot_type}. Available types: "
                                 f"{sorted(ROBOT_LINK_ORIGINS)} (or pass an ArmGeometry)")
            geometry = ArmGeometry(ROBOT_LINK_ORIGINS[robot_type], name=robot_type)
        else:
            geometry = robot_type
        self.geometry = geometry
        self.robot_type = geometry.name
        self.joint_limits_deg = _limits_array(
            geometry.joint_limits_deg if joint_limits is None else joint_limits)
        self._limits_rad = np.deg2rad(self.joint_limits_deg)
        self._build_chain(geometry)

    @classmethod
    def from_link_origins(cls, link_origins: Mapping[str, Sequence[float]], *,
                          name: str = "custom", **geometry_fields) -> RobotKinematics:
        """An arm from a table like ``ROBOT_LINK_ORIGINS["so100"]`` (see ``ArmGeometry``)."""
        return cls(ArmGeometry(dict(link_origins), name=name, **geometry_fields))

    def _build_chain(self, geometry: ArmGeometry) -> None:
        # Everything in the world frame: S_world = Ad(X_WoBo) S_base, M_world = X_WoBo M_base,
        # so that T(q) = exp([S1] q1) ... exp([Sn] qn) M with no leading base transform.
        # (``screw_axes`` are therefore the reference's table shifted by the base offset.)
        base = geometry.origin("base")
        directions = _JOINT_AXES * np.asarray(geometry.joint_signs, dtype=np.float64)[:, None]
        points = np.stack([geometry.origin(link) for link in _AXIS_POINTS]) + base
        self.screw_axes = np.concatenate([directions, np.cross(points, directions)], axis=1)
        self._exp_coefficients = np.stack(twist_exp_coefficients(self.screw_axes))  # (3, 5, 4, 4)
        # Per joint, the homogeneous axis direction (w, 0) and axis point (q, 1): (5, 4, 2).
        self._axis_columns = np.stack([np.c_[directions, np.zeros(5)],
                                       np.c_[points, np.ones(5)]], axis=-1)
        self.home_poses = {frame: self._home_pose(geometry, frame) for frame in FRAMES}

    @staticmethod
    def _home_pose(geometry: ArmGeometry, frame: str) -> np.ndarray:
        if frame == "gripper_tip":
            offset = np.array([geometry.tip_length, 0.0, 0.0])
            link = "gripper"
        else:
            offset = np.asarray(geometry.frame_offsets.get(frame, (0.0, 0.0, 0.0)), np.float64)
            link = frame
        position = geometry.origin("base") + offset
        if link != "base":
            position = position + geometry.origin(link)
        pose = translation_matrix(position)
        pose[:3, :3] = _FRAME_ROTATIONS.get(frame, np.eye(3))
        return pose

    # ----------------------------------------------------------------------------- inputs

    def _joints_rad(self, joints_deg) -> tuple[np.ndarray, bool]:
        """(N, 5) radians and whether the input was a single vector."""
        q = np.asarray(joints_deg, dtype=np.float64)
        single = q.ndim == 1
        q = np.atleast_2d(q)
        if q.ndim != 2 or q.shape[1] not in (NUM_JOINTS, NUM_JOINTS + 1):
            raise ValueError(
                f"joints must have shape (5|6,) or (N, 5|6), got {np.shape(joints_deg)}")
        if not np.all(np.isfinite(q[:, :NUM_JOINTS])):
            raise ValueError("joint angles must be finite")
        return np.deg2rad(q[:, :NUM_JOINTS]), single

    def _frame_of(self, fk_func: Callable | str | None, default: str) -> str:
        """Accept a frame name or one of this object's ``fk_*`` methods (the reference's API)."""
        if fk_func is None:
            return default
        if isinstance(fk_func, str):
            if fk_func not in FRAMES:
                raise ValueError(f"unknown frame {fk_func!r}; frames: {FRAMES}")
            return fk_func
        frame = getattr(fk_func, "__name__", "").removeprefix("fk_")
        if getattr(fk_func, "__self__", None) is self and frame in FRAMES:
            return frame
        raise ValueError("fk_func must be a frame name or one of this instance's fk_* methods")

    # ----------------------------------------------------------------------------- FK

    def _joint_transforms(self, q_rad: np.ndarray) -> np.ndarray:
        """exp([S_i] q_i) for the first k joints: (N, k) -> (N, k, 4, 4)."""
        a, b, c = self._exp_coefficients[:, : q_rad.shape[1]]
        q = q_rad[..., None, None]
        return _EYE4 + np.sin(q) * a + (1.0 - np.cos(q)) * b + q * c

    def _prefix_products(self, q_rad: np.ndarray, count: int) -> np.ndarray:
        """``[I, E1, E1 E2, ...]`` up to ``count`` joints: (N, count + 1, 4, 4)."""
        out = np.empty((len(q_rad), count + 1, 4, 4))
        out[:, 0] = _EYE4
        if count:
            transforms = self._joint_transforms(q_rad[:, :count])
            out[:, 1] = transforms[:, 0]
            for i in range(1, count):
                np.matmul(out[:, i], transforms[:, i], out=out[:, i + 1])
        return out

    def fk(self, joints_deg, frame: str = "gripper_tip") -> np.ndarray:
        """Pose of ``frame`` (one of ``FRAMES``) in the world frame; batched."""
        frame = self._frame_of(frame, frame)
        q, single = self._joints_rad(joints_deg)
        pose = self._prefix_products(q, _JOINTS_MOVING[frame])[:, -1] @ self.home_poses[frame]
        return pose[0] if single else pose

    def fk_all(self, joints_deg) -> dict[str, np.ndarray]:
        """Every frame's pose from one product of exponentials."""
        q, single = self._joints_rad(joints_deg)
        prefixes = self._prefix_products(q, NUM_JOINTS)
        poses = {f: prefixes[:, _JOINTS_MOVING[f]] @ self.home_poses[f] for f in FRAMES}
        return {f: p[0] for f, p in poses.items()} if single else poses

    def fk_base(self, robot_pos_deg=None) -> np.ndarray:
        return self.home_poses["base"].copy()

    def fk_shoulder(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "shoulder")

    def fk_humerus(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "humerus")

    def fk_forearm(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "forearm")

    def fk_wrist(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "wrist")

    def fk_gripper(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "gripper")

    def fk_gripper_tip(self, robot_pos_deg) -> np.ndarray:
        return self.fk(robot_pos_deg, "gripper_tip")

    # ----------------------------------------------------------------------------- Jacobians

    def _pose_and_jacobians(self, q_rad: np.ndarray, frame: str):
        """Pose (N, 4, 4), world axes w (N, 5, 3) and linear velocity of the frame origin
        dp/dq (N, 5, 3), per radian. Columns of joints that do not move the frame are zero."""
        count = _JOINTS_MOVING[frame]
        prefixes = self._prefix_products(q_rad, count)
        pose = prefixes[:, -1] @ self.home_poses[frame]
        # Joint i's axis is moved by the joints before it, prefixes[:, i] (I for the first).
        moved = np.einsum("nkij,kjm->nkim", prefixes[:, :count],
                          self._axis_columns[:count])  # (N, count, 4, 2): directions, points
        axis_w = moved[..., :3, 0]
        linear = _cross(axis_w, pose[:, None, :3, 3] - moved[..., :3, 1])
        if count < NUM_JOINTS:  # joints after the frame do not move it
            pad = ((0, 0), (0, NUM_JOINTS - count), (0, 0))
            axis_w, linear = np.pad(axis_w, pad), np.pad(linear, pad)
        return pose, axis_w, linear

    def space_jacobian(self, joints_deg, frame: str = "gripper_tip") -> np.ndarray:
        """6x5 space Jacobian, rows ``[w; v]``, per radian, world frame: ``V_s = J_s dq``."""
        q, single = self._joints_rad(joints_deg)
        pose, axis_w, linear = self._pose_and_jacobians(q, self._frame_of(frame, frame))
        # v_s = (velocity of the point at the world origin) = dp/dq - w x p
        v_s = linear - _cross(axis_w, np.broadcast_to(pose[:, None, :3, 3], linear.shape))
        jac = np.swapaxes(np.concatenate([axis_w, v_s], axis=-1), -1, -2)
        return jac[0] if single else jac

    def body_jacobian(self, joints_deg, frame: str = "gripper_tip") -> np.ndarray:
        """6x5 body Jacobian, rows ``[w; v]``, per radian, in ``frame``: ``V_b = J_b dq``."""
        q, single = self._joints_rad(joints_deg)
        pose, axis_w, linear = self._pose_and_jacobians(q, self._frame_of(frame, frame))
        rot_t = np.swapaxes(pose[:, :3, :3], -1, -2)
        # Ad(T^-1): w_b = R^T w_s and v_b = R^T (origin velocity).
        jac = np.concatenate([np.einsum("nij,nkj->nik", rot_t, axis_w),
                              np.einsum("nij,nkj->nik", rot_t, linear)], axis=1)
        return jac[0] if single else jac

    def compute_jacobian(self, robot_pos_deg, fk_func=None) -> np.ndarray:
        """Reference meaning: rows ``[d position; d rotation vector]`` per DEGREE (6x5).

        Analytic, where the reference used finite differences; and a 5-value input keeps the
        wrist roll (the reference always dropped the last value).
        """
        q, single = self._joints_rad(robot_pos_deg)
        _, axis_w, linear = self._pose_and_jacobians(q, self._frame_of(fk_func, "gripper"))
        jac = np.deg2rad(np.swapaxes(np.concatenate([linear, axis_w], axis=-1), -1, -2))
        return jac[0] if single else jac

    def compute_positional_jacobian(self, robot_pos_deg, fk_func=None) -> np.ndarray:
        """Reference meaning: d position / d joint per DEGREE (3x5)."""
        return self.compute_jacobian(robot_pos_deg, fk_func)[..., :3, :]

    # ----------------------------------------------------------------------------- IK

    def solve_ik(self, current_joints_deg, target, *, position_only: bool = True,
                 frame: str = "gripper_tip", options: IKOptions | None = None) -> IKResult:
        """Joints that put ``frame`` at ``target``, starting from ``current_joints_deg``.

        ``target``: a pose (4, 4) or, for position-only, a position (3,); or a batch of either.
        Starts and targets batch together (N each, or one of them single). The joints come back
        like the start (a 6th value, the gripper jaw, is passed through); a start outside the
        joint limits is clipped into them. ``iterations`` counts steps tried, rejected ones too.
        """
        frame = self._frame_of(frame, frame)
        if _JOINTS_MOVING[frame] == 0:
            raise ValueError("the base frame does not move; pick a frame after a joint")
        q, single_start = self._joints_rad(current_joints_deg)
        target_pos, target_rot, single_target = _split_target(target, position_only)
        n = max(len(q), len(target_pos))
        if {len(q), len(target_pos)} - {1, n}:
            raise ValueError(f"{len(q)} starts and {len(target_pos)} targets: batch sizes differ")
        target_rot = None if target_rot is None else np.broadcast_to(target_rot, (n, 3, 3))
        solution = solve_damped_least_squares(
            lambda qq: self._pose_and_jacobians(qq, frame), np.broadcast_to(q, (n, NUM_JOINTS)),
            self._limits_rad, np.broadcast_to(target_pos, (n, 3)), target_rot, position_only,
            options or IKOptions())
        start = np.atleast_2d(np.asarray(current_joints_deg, dtype=np.float64))
        joints = np.array(np.broadcast_to(start, (n, start.shape[1])))
        joints[:, :NUM_JOINTS] = np.rad2deg(solution.joints_rad)
        single = single_start and single_target
        if not np.all(solution.converged):
            logger.debug("IK did not converge for %d of %d targets (frame %s)",
                         np.sum(~solution.converged), len(q), frame)
        return _to_result(joints, solution, single)

    def ik(self, current_joint_pos, desired_ee_pose, position_only: bool = True,
           fk_func=None) -> np.ndarray:
        """The reference's call: joint angles (degrees) for ``desired_ee_pose`` (4x4).

        As the reference, ``fk_func`` defaults to ``fk_gripper``. Use ``solve_ik`` to learn
        whether it converged.
        """
        frame = self._frame_of(fk_func, "gripper")
        return self.solve_ik(current_joint_pos, desired_ee_pose, position_only=position_only,
                             frame=frame).joints

    def clip_to_limits(self, joints_deg) -> np.ndarray:
        """Joints clipped into the joint limits (the jaw value, if any, untouched)."""
        out = np.array(joints_deg, dtype=np.float64, copy=True)
        out[..., :NUM_JOINTS] = np.clip(out[..., :NUM_JOINTS], *self.joint_limits_deg.T)
        return out


def _to_result(joints: np.ndarray, solution: Solution, single: bool) -> IKResult:
    if not single:
        return IKResult(joints, solution.converged, solution.position_error,
                        solution.rotation_error, solution.iterations)
    return IKResult(joints[0], bool(solution.converged[0]), float(solution.position_error[0]),
                    float(solution.rotation_error[0]), int(solution.iterations[0]))


def _split_target(target, position_only: bool):
    """(M, 3) positions, (M, 3, 3) rotations (None for bare positions), and whether single."""
    target = np.asarray(target, dtype=np.float64)
    if not np.all(np.isfinite(target)):
        raise ValueError("target must be finite")
    if target.ndim in (2, 3) and target.shape[-2:] == (4, 4):
        return (target[..., :3, 3].reshape(-1, 3), target[..., :3, :3].reshape(-1, 3, 3),
                target.ndim == 2)
    if target.ndim in (1, 2) and target.shape[-1] == 3 and position_only:
        return target.reshape(-1, 3), None, target.ndim == 1
    raise ValueError(f"target must be a (4, 4) pose (or a (3,) position when position_only), "
                     f"or a batch (N, ...) of them; got shape {target.shape}")


_LEVI_CIVITA = np.zeros((3, 3, 3))
_LEVI_CIVITA[0, 1, 2] = _LEVI_CIVITA[1, 2, 0] = _LEVI_CIVITA[2, 0, 1] = 1.0
_LEVI_CIVITA[0, 2, 1] = _LEVI_CIVITA[2, 1, 0] = _LEVI_CIVITA[1, 0, 2] = -1.0


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis; one einsum (np.cross costs ~8x more on tiny arrays)."""
    return np.einsum("ijk,...j,...k->...i", _LEVI_CIVITA, a, b)
