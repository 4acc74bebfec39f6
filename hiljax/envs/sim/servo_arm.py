"""MuJoCo behind the virtual servos: `ServoPhysics` backed by the so100 `SimRobot`.

The virtual bus (`hiljax.hardware.virtual`) speaks Feetech bytes; this moves the simulated arm:
a goal in ticks becomes a joint target in degrees (gripper 0..100) through each servo's
`JointSpec`, and the servos read the simulated joints back as ticks.

Time: the simulation is advanced lazily, on each request, to catch up with the clock the bus
passes in (wall time in the CLI), in whole control periods. So the arm moves in real time as a
client sees it, with no thread of its own racing the serving thread. A long silence is caught up
at most `max_catch_up_s` at once (a paused process does not run minutes of physics on wake-up).

Torque off: the joint's actuator holds where the joint was when torque went off or where it
was last put by hand (a limp hobby servo's gearbox stays put under the arm's own weight).
No rendering is involved: the robot has no cameras.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hiljax.envs.sim.scene import ARM_FORCE_LIMIT, FINGER_FORCE_LIMIT
from hiljax.envs.sim.sim_robot import SimRobot
from hiljax.hardware.virtual.joints import JointSpec

CONTROL_DT = 0.01  # seconds of physics per target update
MAX_CATCH_UP_S = 0.5


class MujocoServoPhysics:
    """`ServoPhysics` over the MuJoCo so100; `joints` in the robot's motor order (5 arm joints,
    then the gripper), e.g. `hiljax.hardware.virtual.so100_joints()`."""

    def __init__(self, joints: Sequence[JointSpec], robot: SimRobot | None = None,
                 control_dt: float = CONTROL_DT, max_catch_up_s: float = MAX_CATCH_UP_S):
        self.robot = robot or SimRobot(cameras=(), render=False, control_dt=control_dt)
        if len(joints) != len(self.robot.motor_names):
            raise ValueError(f"need {len(self.robot.motor_names)} joint specs "
                             f"({self.robot.motor_names}), got {len(joints)}")
        self.joints = tuple(joints)
        self.control_dt = self.robot.control_dt
        self.max_catch_up_s = max_catch_up_s
        self._positions = self.robot.read_joint_positions().astype(np.float64)
        self._velocities = np.zeros_like(self._positions)
        self._goal = self._positions.copy()  # joint units
        self._hold = self._positions.copy()  # where limp joints stay
        self._torque = np.zeros(len(joints), dtype=bool)
        self._time: float | None = None
        self._limits = np.array([ARM_FORCE_LIMIT] * (len(joints) - 1) + [FINGER_FORCE_LIMIT])

    def advance(self, now: float) -> None:
        if self._time is None:
            self._time = now
            return
        steps = int((now - self._time) / self.control_dt)
        if steps <= 0:
            return
        if steps * self.control_dt > self.max_catch_up_s:
            steps = max(1, int(self.max_catch_up_s / self.control_dt))
            self._time = now  # drop the rest: the sim falls behind rather than stalls
        else:
            self._time += steps * self.control_dt
        before = self._positions
        targets = np.where(self._torque, self._goal, self._hold)
        for _ in range(steps):
            self.robot.send_joint_targets(targets)
        self._positions = self.robot.read_joint_positions().astype(np.float64)
        self._velocities = (self._positions - before) / (steps * self.control_dt)

    def set_goal(self, joint: int, ticks: float) -> None:
        self._goal[joint] = float(self.joints[joint].to_units(ticks))

    def set_torque(self, joint: int, enabled: bool) -> None:
        if self._torque[joint] and not enabled:
            self._hold[joint] = self._positions[joint]
        self._torque[joint] = bool(enabled)

    def place(self, joint: int, ticks: float) -> None:
        pose = self.robot.read_joint_positions()
        pose[joint] = self.joints[joint].to_units(ticks)
        self.robot.set_joint_positions(pose)  # clipped to the sim's limits
        self._positions = self.robot.read_joint_positions().astype(np.float64)
        self._hold[joint] = self._positions[joint]
        self._velocities[joint] = 0.0

    def actual(self, joint: int) -> float:
        return float(self.joints[joint].to_ticks(self._positions[joint]))

    def velocity(self, joint: int) -> float:
        return float(self._velocities[joint] * self.joints[joint].ticks_per_unit)

    def effort(self, joint: int) -> float:
        if not self._torque[joint]:
            return 0.0
        force = float(self.robot.read_joint_currents()[joint])
        return float(np.clip(force / self._limits[joint], -1.0, 1.0))
