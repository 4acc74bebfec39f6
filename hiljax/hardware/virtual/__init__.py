"""A virtual Feetech servo arm on a pseudo-terminal: real bytes, no hardware.

Any protocol-0 client written for real STS3215 servos (LeRobot's, hiljax's) opens the port
and talks to it unchanged. Layers, bottom up:

    registers  the STS3215 control table (addresses, factory values, sign-magnitude)
    protocol   packet parsing / building (Feetech protocol 0)
    joints     joint units <-> ticks, and the calibration that reads the joints exactly
    physics    ServoPhysics (what moves behind the servos) and the first-order model
    servo      one servo's memory and firmware reactions (Lock, torque, limits, offsets)
    faults     dropped / corrupted replies, hung motors, error bits
    bus        the servos on one bus: instructions in, status packets out
    pty_port   the pseudo-terminal and its serving thread
    so100      VirtualSO100: the six servos of an SO-100 arm, with a test API

The MuJoCo-backed physics lives in `hiljax.envs.sim.servo_arm`; the CLI is
`python -m hiljax.virtual_robot`.
"""

from hiljax.hardware.virtual.bus import VirtualBus
from hiljax.hardware.virtual.faults import Faults
from hiljax.hardware.virtual.joints import TICKS_PER_DEGREE, JointSpec
from hiljax.hardware.virtual.physics import FirstOrderPhysics, ServoPhysics
from hiljax.hardware.virtual.pty_port import PtyServer
from hiljax.hardware.virtual.servo import VirtualServo
from hiljax.hardware.virtual.so100 import ARM_TYPES, VirtualSO100, so100_joints

__all__ = ["ARM_TYPES", "TICKS_PER_DEGREE", "Faults", "FirstOrderPhysics", "JointSpec",
           "PtyServer", "ServoPhysics", "VirtualBus", "VirtualSO100", "VirtualServo",
           "so100_joints"]
