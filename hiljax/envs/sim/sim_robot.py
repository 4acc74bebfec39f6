"""SimRobot: the MuJoCo so100 behind the `Robot` and `SimulatedTask` protocols.

Units as `hiljax.envs.robot`: arm joints in degrees (kinematics order), gripper last in
[0, 100] (0 closed, 100 open). One `send_joint_targets` = one control period of physics.
"""

from __future__ import annotations

import contextlib
import logging

import mujoco
import numpy as np

from hiljax.envs.robot import GRIPPER_CLOSED, GRIPPER_OPEN
from hiljax.envs.sim.rendering import CameraRenderer
from hiljax.envs.sim.scene import FINGER_TRAVEL, build_scene_xml
from hiljax.envs.sim.task import CubeSpawn, GraspDetector, cube_lift, yaw_of_quaternion
from hiljax.kinematics import JOINT_NAMES, RobotKinematics

logger = logging.getLogger(__name__)

NUM_ARM_JOINTS = len(JOINT_NAMES)
# Rest pose (degrees, gripper open): gripper pointing straight down with its tip at
# (0.19, 0, 0.08), over the middle of the cube's start region. (Higher, pointing down, runs the
# wrist flex into its 110 degree limit: the so100 is a small arm.)
HOME_JOINT_POSITIONS = np.array([0.0, 89.0, 75.0, 104.0, 0.0, GRIPPER_OPEN], dtype=np.float32)
DEFAULT_LIFT_HEIGHT = 0.05  # metres of cube bottom above the table for success


class SimRobot:
    """A simulated so100 arm with a parallel gripper, a table, a cube and two cameras.

    ``render=False`` (or ``cameras=()``) never touches OpenGL: state-only training needs no GL.
    Joint "currents" are the actuator forces (N m for the arm joints, N per finger for the
    gripper): the simulator's stand-in for servo current, which is roughly proportional to torque.
    """

    name = "so100_sim"
    motor_names = (*JOINT_NAMES, "gripper")

    def __init__(self, cameras: tuple[str, ...] = ("front", "wrist"), image_size: int = 128,
                 control_dt: float = 0.1, physics_dt: float = 0.002, seed: int = 0,
                 render: bool = True, lift_height: float = DEFAULT_LIFT_HEIGHT,
                 cube_spawn: CubeSpawn | None = None):
        if control_dt <= 0 or physics_dt <= 0 or physics_dt > control_dt:
            raise ValueError(f"need 0 < physics_dt <= control_dt, got {physics_dt}, {control_dt}")
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml(image_size, physics_dt))
        self.data = mujoco.MjData(self.model)
        self.substeps = max(1, round(control_dt / physics_dt))
        self.control_dt = self.substeps * physics_dt
        self.image_size = image_size
        self.camera_names = tuple(cameras) if render else ()
        self.lift_height = lift_height
        self.cube_spawn = cube_spawn or CubeSpawn()
        self.joint_limits_deg = RobotKinematics("so100").joint_limits_deg.copy()  # (5, 2)
        self._index_model()
        self._grasp = GraspDetector(self.model)
        self._cameras: CameraRenderer | None = None
        self._connected = False
        self.reset_scene(np.random.default_rng(seed))
        self.set_joint_positions(HOME_JOINT_POSITIONS)

    def _index_model(self) -> None:
        def addresses(names, field):
            return np.array([getattr(self.model.joint(name), field)[0] for name in names])

        fingers = ("finger_left", "finger_right")
        self._arm_qpos = addresses(JOINT_NAMES, "qposadr")
        self._arm_qvel = addresses(JOINT_NAMES, "dofadr")
        self._finger_qpos = addresses(fingers, "qposadr")
        self._finger_qvel = addresses(fingers, "dofadr")
        self._cube_qpos = int(addresses(["cube"], "qposadr")[0])  # free joint: xyz, quat wxyz
        self._cube_qvel = int(addresses(["cube"], "dofadr")[0])
        self._tip_site = self.model.site("gripper_tip").id
        self._gripper_body = self.model.body("gripper").id
        # Actuators are declared arm joints first, then the two fingers (scene._actuators_xml).
        self._arm_ctrl = np.arange(NUM_ARM_JOINTS)
        self._finger_ctrl = np.arange(NUM_ARM_JOINTS, NUM_ARM_JOINTS + 2)

    # ----------------------------------------------------------------------------- Robot

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Builds the camera renderer now (so a missing OpenGL fails here, with advice)."""
        if self.camera_names and self._cameras is None:
            self._cameras = CameraRenderer(self.model, self.camera_names, self.image_size)
        self._connected = True

    def disconnect(self) -> None:
        if self._cameras is not None:
            self._cameras.close()
            self._cameras = None
        self._connected = False

    def read_joint_positions(self) -> np.ndarray:
        arm = np.rad2deg(self.data.qpos[self._arm_qpos])
        opening = self.data.qpos[self._finger_qpos].mean() / FINGER_TRAVEL * GRIPPER_OPEN
        # A finger pressed past its end stop (soft joint limit) would read a little outside the
        # range; a servo reports its calibrated range, so the reading stays in [0, 100].
        gripper = np.clip(opening, GRIPPER_CLOSED, GRIPPER_OPEN)
        return np.append(arm, gripper).astype(np.float32)

    def read_joint_currents(self) -> np.ndarray:
        force = self.data.actuator_force
        return np.append(force[self._arm_ctrl], force[self._finger_ctrl].mean()).astype(
            np.float32)

    def read_cameras(self) -> dict[str, np.ndarray]:
        """camera -> (H, W, 3) uint8; {} when rendering is off. Renders on first use if
        `connect` was not called (the sim needs no connection for anything else)."""
        if not self.camera_names:
            return {}
        if self._cameras is None:
            self._cameras = CameraRenderer(self.model, self.camera_names, self.image_size)
        return self._cameras.render(self.data)

    def send_joint_targets(self, targets: np.ndarray) -> np.ndarray:
        """Clip to the joint limits and [0, 100], hold them for one control period of physics;
        returns the clipped targets (float32, degrees / gripper percent)."""
        sent = self._clip_targets(targets)
        self._set_controls(sent)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        return sent

    # ----------------------------------------------------------------------------- SimulatedTask

    def environment_state(self) -> np.ndarray:
        """Cube centre xyz (metres, world frame), float32 (3,)."""
        return self.data.qpos[self._cube_qpos:self._cube_qpos + 3].astype(np.float32)

    def task_success(self) -> bool:
        """The cube is held by both pads and its bottom is >= lift_height above the table."""
        return self.cube_lift() >= self.lift_height and self.cube_grasped()

    def reset_scene(self, rng: np.random.Generator) -> None:
        """Put the cube at rest somewhere in `cube_spawn`, drawn from `rng` (the arm stays)."""
        position, quaternion = self.cube_spawn.sample(rng)
        qpos = self._cube_qpos
        self.data.qpos[qpos:qpos + 3] = position
        self.data.qpos[qpos + 3:qpos + 7] = quaternion
        self.data.qvel[self._cube_qvel:self._cube_qvel + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    # ----------------------------------------------------------------------------- sim extras

    def set_joint_positions(self, joints: np.ndarray) -> None:
        """Teleport the arm (5 values) and, if given, the gripper (6th); targets follow, so the
        arm holds the pose. Velocities are zeroed. For resets and tests."""
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape not in ((NUM_ARM_JOINTS,), (NUM_ARM_JOINTS + 1,)):
            raise ValueError(f"expected 5 or 6 joint values, got shape {joints.shape}")
        current = self.read_joint_positions()
        current[: len(joints)] = joints
        pose = self._clip_targets(current)
        self.data.qpos[self._arm_qpos] = np.deg2rad(pose[:NUM_ARM_JOINTS])
        self.data.qpos[self._finger_qpos] = pose[-1] / GRIPPER_OPEN * FINGER_TRAVEL
        self.data.qvel[self._arm_qvel] = 0.0
        self.data.qvel[self._finger_qvel] = 0.0
        self._set_controls(pose)
        mujoco.mj_forward(self.model, self.data)

    def gripper_tip_position(self) -> np.ndarray:
        """World xyz of the `gripper_tip` site: the point `fk_gripper_tip` computes."""
        return self.data.site_xpos[self._tip_site].copy()

    def gripper_rotation(self) -> np.ndarray:
        """(3, 3) world rotation of the gripper body: column 0 is the axis it points along (the
        wrist roll's axis, on which the tip lies), column 1 the axis the fingers close along."""
        return self.data.xmat[self._gripper_body].reshape(3, 3).copy()

    def cube_yaw(self) -> float:
        """The cube's rotation about the vertical (radians, world frame): the heading of one
        face normal (the cube is symmetric, so it matters modulo 90 degrees)."""
        return yaw_of_quaternion(self.data.qpos[self._cube_qpos + 3:self._cube_qpos + 7])

    def cube_grasped(self) -> bool:
        """Both finger pads touch the cube."""
        return self._grasp.grasped(self.data)

    def cube_lift(self) -> float:
        """Height of the cube's bottom above the table (metres)."""
        return cube_lift(self.data.qpos[self._cube_qpos:self._cube_qpos + 3])

    @property
    def sim_time(self) -> float:
        return float(self.data.time)

    # ----------------------------------------------------------------------------- helpers

    def _clip_targets(self, targets) -> np.ndarray:
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (NUM_ARM_JOINTS + 1,) or not np.all(np.isfinite(targets)):
            raise ValueError(f"targets must be {NUM_ARM_JOINTS + 1} finite values "
                             f"(5 joints in degrees, gripper in [0, 100]); got {targets!r}")
        arm = np.clip(targets[:NUM_ARM_JOINTS], *self.joint_limits_deg.T)
        gripper = np.clip(targets[-1], GRIPPER_CLOSED, GRIPPER_OPEN)
        return np.append(arm, gripper).astype(np.float32)

    def _set_controls(self, targets: np.ndarray) -> None:
        self.data.ctrl[self._arm_ctrl] = np.deg2rad(targets[:NUM_ARM_JOINTS])
        self.data.ctrl[self._finger_ctrl] = targets[-1] / GRIPPER_OPEN * FINGER_TRAVEL

    def __del__(self):
        # The GL context must be released while the interpreter can still do it.
        with contextlib.suppress(Exception):  # best effort at interpreter shutdown
            self.disconnect()
