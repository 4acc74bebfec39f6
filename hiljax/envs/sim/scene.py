"""The so100 pick-cube scene as MJCF, generated from the kinematics table (no asset files).

The arm's bodies are built from ``hiljax.kinematics.ROBOT_LINK_ORIGINS["so100"]`` and the joint
limits of ``RobotKinematics("so100")``, so the simulator and the numpy kinematics agree by
construction (a test checks the ``gripper_tip`` site against ``fk_gripper_tip``). Every body frame
is aligned with the world at the zero pose (arm stretched along +x), so each hinge's axis is the
kinematics' world screw direction and MuJoCo's positive angle is the table's positive angle.

World frame: the kinematics' world (the table's ``base`` entry sits at z = 0.02); z = 0 is the
table top, on which the arm's base plate stands.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from hiljax.kinematics import JOINT_NAMES, ROBOT_LINK_ORIGINS, RobotKinematics

ARM = "so100"
# Hinge directions at the zero pose, in the kinematics' joint order (reference_facts section 5).
JOINT_AXES = ((0, 0, -1), (0, -1, 0), (0, 1, 0), (0, 1, 0), (1, 0, 0))
BODY_NAMES = ("shoulder", "upper_arm", "lower_arm", "wrist", "gripper")
_LINK_OF_BODY = ("shoulder", "humerus", "forearm", "wrist", "gripper")

TIP_LENGTH = 0.12  # gripper origin -> tip along the gripper x axis, as hiljax.kinematics
CUBE_HALF_SIZE = 0.0125  # a 2.5 cm cube
CUBE_MASS = 0.015  # kg (~1000 kg/m^3): light enough for the hobby servos' grip
FINGER_TRAVEL = 0.03  # metres per finger: 6 cm between the pads when open (cube: 2.5 cm)
FINGER_HALF_THICKNESS = 0.004
# Pads span 0.08 .. 0.13 m along the gripper: the tip site (0.12) sits 1 cm inside the pad ends,
# so a tip at the cube's centre encloses the cube with the pad ends just above the table.
FINGER_PAD_CENTER_X = 0.105
FINGER_PAD_HALF = (0.025, FINGER_HALF_THICKNESS, 0.012)

# Servo model. Armature stands in for the geared rotor's reflected inertia (large on 1:345
# servos); it dominates the links' own inertia, so one gain set suits every joint. kp / kv give a
# ~25 ms critically damped response: a target is reached well inside one 0.1 s control period.
ARM_ARMATURE = 0.01
ARM_KP = 40.0  # N m / rad
ARM_DAMPING = 1.2  # N m s / rad (joint damping: implicit in the implicitfast integrator)
ARM_FORCE_LIMIT = 10.0  # N m: bounds the snap toward far targets and the push into the table
FINGER_KP = 300.0  # N / m: ~3.7 N squeeze on a 2.5 cm cube, ~25x its weight with friction 1.2
FINGER_DAMPING = 6.0
FINGER_FORCE_LIMIT = 6.0

FRONT_CAMERA_POS = (0.5, 0.0, 0.3)
FRONT_CAMERA_TARGET = (0.17, 0.0, 0.02)


@dataclass(frozen=True)
class ArmLayout:
    """Where each arm body sits relative to its parent (metres), and the joint limits (rad)."""

    base_position: tuple[float, float, float]
    body_offsets: tuple[tuple[float, float, float], ...]  # one per BODY_NAMES entry
    joint_limits_rad: np.ndarray  # (5, 2)


def so100_layout() -> ArmLayout:
    origins = ROBOT_LINK_ORIGINS[ARM]
    points = [np.asarray(origins.get(link, (0.0, 0.0, 0.0)), float) for link in _LINK_OF_BODY]
    offsets = [points[0]] + [b - a for a, b in itertools.pairwise(points)]
    limits = np.deg2rad(RobotKinematics(ARM).joint_limits_deg)
    return ArmLayout(tuple(float(v) for v in origins["base"]),
                     tuple(tuple(float(v) for v in o) for o in offsets), limits)


def _vec(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _look_at_axes(position, target) -> str:
    """MJCF ``xyaxes`` of a camera at ``position`` looking at ``target`` with world z up."""
    forward = np.subtract(target, position, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return _vec(np.concatenate([right, up]))


def _link_geom(offset) -> str:
    """A capsule from the body origin to the next joint: visual and mass only (no contacts;
    the hobby arm's self-collisions are left out, like its cables)."""
    if np.linalg.norm(offset) < 1e-6:
        return ""
    return f'<geom class="link" type="capsule" fromto="0 0 0 {_vec(offset)}"/>'


def _gripper_xml() -> str:
    pad_pos_left = (FINGER_PAD_CENTER_X, FINGER_HALF_THICKNESS, 0.0)
    pad_pos_right = (FINGER_PAD_CENTER_X, -FINGER_HALF_THICKNESS, 0.0)
    return f"""
          <geom class="grip" type="box" pos="0.035 0 0" size="0.035 0.038 0.016"/>
          <site name="gripper_tip" pos="{TIP_LENGTH} 0 0" size="0.004" group="4"/>
          <camera name="wrist" pos="0.06 0 0.03" xyaxes="0 -1 0 0.5 0 0.866" fovy="75"/>
          <body name="finger_left" gravcomp="1">
            <joint name="finger_left" type="slide" axis="0 1 0" class="finger"/>
            <geom name="finger_left" class="pad" pos="{_vec(pad_pos_left)}"/>
          </body>
          <body name="finger_right" gravcomp="1">
            <joint name="finger_right" type="slide" axis="0 -1 0" class="finger"/>
            <geom name="finger_right" class="pad" pos="{_vec(pad_pos_right)}"/>
          </body>"""


def _arm_xml(layout: ArmLayout) -> str:
    """Nested bodies shoulder -> gripper, each with its hinge at its own origin."""
    opening, closing = "", ""
    next_offsets = layout.body_offsets[1:] + ((0.0, 0.0, 0.0),)
    for i, (name, joint) in enumerate(zip(BODY_NAMES, JOINT_NAMES)):
        low, high = layout.joint_limits_rad[i]
        indent = "  " * (i + 3)
        inner = _gripper_xml() if name == "gripper" else _link_geom(next_offsets[i])
        opening += (f'\n{indent}<body name="{name}" pos="{_vec(layout.body_offsets[i])}" '
                    f'gravcomp="1">\n{indent}  <joint name="{joint}" axis="{_vec(JOINT_AXES[i])}"'
                    f' range="{low:.10g} {high:.10g}" class="arm"/>\n{indent}  {inner}')
        closing = f"\n{indent}</body>" + closing
    return opening + closing


def _actuators_xml(layout: ArmLayout) -> str:
    lines = []
    for i, joint in enumerate(JOINT_NAMES):
        low, high = layout.joint_limits_rad[i]
        lines.append(f'<position name="{joint}" joint="{joint}" class="arm" '
                     f'ctrlrange="{low:.10g} {high:.10g}"/>')
    for finger in ("finger_left", "finger_right"):
        lines.append(f'<position name="{finger}" joint="{finger}" class="finger" '
                     f'ctrlrange="0 {FINGER_TRAVEL}"/>')
    return "\n    ".join(lines)


def build_scene_xml(image_size: int = 128, physics_dt: float = 0.002) -> str:
    """The whole scene: table, arm, gripper, cube, cameras ``front`` and ``wrist``.

    Rendering is set up for speed: an offscreen buffer of exactly the image size, no
    multisampling, no shadows (lights cast none, shadow map size 0), no reflective materials.
    """
    layout = so100_layout()
    half = CUBE_HALF_SIZE
    return f"""
<mujoco model="hiljax_so100_pick_cube">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics_dt}" integrator="implicitfast" cone="elliptic" impratio="1"
          iterations="20" ls_iterations="8"/>
  <visual>
    <global offwidth="{image_size}" offheight="{image_size}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <default>
    <joint damping="{ARM_DAMPING}"/>
    <default class="arm">
      <joint type="hinge" armature="{ARM_ARMATURE}" damping="{ARM_DAMPING}" limited="true"/>
      <position kp="{ARM_KP}" forcerange="-{ARM_FORCE_LIMIT} {ARM_FORCE_LIMIT}"/>
    </default>
    <default class="finger">
      <joint range="0 {FINGER_TRAVEL}" armature="0.02" damping="{FINGER_DAMPING}"/>
      <position kp="{FINGER_KP}" forcerange="-{FINGER_FORCE_LIMIT} {FINGER_FORCE_LIMIT}"/>
    </default>
    <default class="link">
      <geom size="0.014" contype="0" conaffinity="0" density="600" rgba="0.95 0.75 0.2 1"/>
    </default>
    <default class="grip">
      <geom density="600" rgba="0.25 0.25 0.28 1" friction="1.2 0.02 0.002"/>
    </default>
    <default class="pad">
      <geom type="box" size="{_vec(FINGER_PAD_HALF)}" density="600" condim="4"
            friction="1.2 0.02 0.002" rgba="0.15 0.15 0.17 1"/>
    </default>
  </default>
  <worldbody>
    <light name="sun" directional="true" pos="0.3 0.3 1" dir="-0.3 -0.3 -1" castshadow="false"
           diffuse="0.5 0.5 0.5" specular="0 0 0"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="2 2 0.1" rgba="0.35 0.35 0.38 1"/>
    <geom name="table" type="box" pos="0.2 0 -0.02" size="0.4 0.45 0.02"
          rgba="0.55 0.45 0.35 1" friction="0.8 0.01 0.001"/>
    <camera name="front" pos="{_vec(FRONT_CAMERA_POS)}"
            xyaxes="{_look_at_axes(FRONT_CAMERA_POS, FRONT_CAMERA_TARGET)}" fovy="50"/>
    <body name="base" pos="{_vec(layout.base_position)}">
      <geom type="cylinder" pos="0 0 -0.01" size="0.045 0.01" contype="0" conaffinity="0"
            rgba="0.2 0.2 0.22 1"/>
      <geom class="link" type="box" pos="0.0 0 0.035" size="0.03 0.025 0.035"/>{_arm_xml(layout)}
    </body>
    <body name="cube" pos="0.25 0 {half}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{half} {half} {half}" mass="{CUBE_MASS}" condim="4"
            friction="1.2 0.02 0.002" rgba="0.85 0.1 0.1 1"/>
    </body>
  </worldbody>
  <contact>
    <exclude body1="finger_left" body2="finger_right"/>
  </contact>
  <actuator>
    {_actuators_xml(layout)}
  </actuator>
</mujoco>
"""
