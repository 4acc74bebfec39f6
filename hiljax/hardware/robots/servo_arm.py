"""A real arm on a servo bus, as hiljax's `Robot` (hiljax.envs.robot): joints in degrees in
LeRobot's motor order, the gripper in [0, 100].

Safety, as LeRobot's followers and a little more:
- every goal is clipped to the joint limits of the calibration, further narrowed by the
  config's `joint_limits` when given (never widened), and, with `max_relative_target`, to that
  many degrees (gripper: percent) from the present position, read just before;
- a goal is never sent when the last read failed;
- a bus failure, an exception or Ctrl-C (KeyboardInterrupt) inside a read or a command leaves
  the arm limp (torque off) when `disable_torque_on_disconnect`, then the error goes on up;
- disconnect switches torque off (same switch; leaders always, as LeRobot's);
- a process that ends with the arm still connected (Ctrl-C while the env waits out its control
  period, any uncaught exception in a script without env.close()) disconnects it on the way out
  (an atexit hook), so the same switch applies.
Status error bits in a sync read (overload, overheat, voltage...) follow LeRobot's feetech
driver: the value is kept and used, nothing is raised and torque is left on (the servo's own
protection acts, and dropping a loaded arm is worse); the bus warns once per change naming the
motor, its id and the port, and `status_errors` holds the bits now reported.
Connect never prompts: with a calibration file whose values the motors do not hold, the file's
values are written to them (LeRobot's "use the provided file"); without a file it stops with a
message naming `python -m hiljax.calibrate`. A file of an older LeRobot release (directory
so100_follower, so101_leader, ...) is read when LeRobot 0.4's is absent.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import weakref
from collections.abc import Mapping

import numpy as np

from hiljax.hardware.cameras import CameraConfig, make_cameras
from hiljax.hardware.motors.bus import MotorsBus
from hiljax.hardware.motors.calibration import (
    CalibrationError,
    MotorCalibration,
    NormMode,
    calibration_path,
    find_calibration_file,
    load_calibration,
    normalize,
)
from hiljax.hardware.motors.errors import MotorBusError

from .arms import ARMS, CONFIGURE, MOTOR_NAMES, ArmSpec

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServoArmConfig:
    """LeRobot's follower / leader config fields."""

    type: str  # a key of hiljax.hardware.robots.arms.ARMS, e.g. "so101_follower"
    port: str
    id: str | None = None
    calibration_dir: str | None = None
    disable_torque_on_disconnect: bool = True
    max_relative_target: float | None = None  # degrees (gripper: percent) per command
    use_degrees: bool = True
    cameras: Mapping[str, CameraConfig] = dataclasses.field(default_factory=dict)
    # motor -> (min, max) in the arm's units (degrees for the body with use_degrees, else
    # [-100, 100]; gripper [0, 100]), e.g. what find_ee_bounds measured. Goals are clipped to
    # the intersection with the calibrated range: these narrow it, never widen it.
    joint_limits: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self):
        if self.type not in ARMS:
            raise ValueError(f"unknown arm type {self.type!r}; known: {sorted(ARMS)}")
        if self.max_relative_target is not None and not self.max_relative_target > 0:
            raise ValueError(f"max_relative_target must be > 0 or None, got "
                             f"{self.max_relative_target}")
        if self.joint_limits is not None:
            object.__setattr__(self, "joint_limits", _checked_limits(self.joint_limits))

    @property
    def spec(self) -> ArmSpec:
        return ARMS[self.type]

    @property
    def calibration_file(self):
        """Where this arm's calibration is written (LeRobot 0.4's name)."""
        spec = self.spec
        return calibration_path(spec.calibration_kind, spec.device_name, self.id,
                                self.calibration_dir)

    def find_calibration_file(self):
        """The file to read: `calibration_file`, or an older LeRobot release's file for this
        arm when only that exists (logged)."""
        spec = self.spec
        return find_calibration_file(spec.calibration_kind, spec.device_name, self.id,
                                     self.calibration_dir, spec.legacy_device_names)


def _checked_limits(limits: Mapping) -> dict[str, tuple[float, float]]:
    """Known motor names, two finite numbers each, min < max; lists become tuples."""
    if not isinstance(limits, Mapping):
        raise TypeError(f"joint_limits must map motor names to [min, max], got {limits!r}")
    unknown = sorted(set(limits) - set(MOTOR_NAMES))
    if unknown:
        raise ValueError(f"joint_limits names unknown motors {unknown}; motors: "
                         f"{list(MOTOR_NAMES)}")
    checked = {}
    for motor, bounds in limits.items():
        try:
            if isinstance(bounds, (str, bytes)):
                raise TypeError
            low, high = (float(v) for v in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"joint_limits[{motor!r}] must be [min, max], got {bounds!r}") \
                from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"joint_limits[{motor!r}] must be finite with min < max, got "
                             f"{list(bounds)}")
        checked[motor] = (low, high)
    return checked


class ServoArm:
    """See the module docstring. Followers are stiff after connect, leaders limp."""

    motor_names: tuple[str, ...] = MOTOR_NAMES

    def __init__(self, config: ServoArmConfig, bus: MotorsBus | None = None):
        self.config, self.spec = config, config.spec
        self.name = config.type
        self.bus = bus or self.spec.make_bus(config.port, use_degrees=config.use_degrees)
        self.cameras = make_cameras(dict(config.cameras))
        self.camera_names = tuple(self.cameras)
        self._last_read_ok = False
        self._exit_hook = None
        self.calibration_source = None  # the calibration file read at connect

    # ------------------------------------------------------------------ connection
    @property
    def is_connected(self) -> bool:
        return self.bus.is_connected

    def connect(self) -> None:
        self.bus.calibration = self._load_calibration()
        self.bus.connect()
        self._install_exit_hook()
        try:
            if not self.bus.is_calibrated:
                log.info("%s on %s: the motors do not hold the calibration of %s; writing it",
                         self.name, self.config.port, self.calibration_source)
                self.bus.write_calibration(self.bus.calibration)
            CONFIGURE[self.spec.name](self.bus)
            self._limits = self._joint_limits()
            for camera in self.cameras.values():
                camera.connect()
        except BaseException:
            self._make_safe()
            self._disconnect_cameras()
            self.bus.disconnect(disable_torque=False)
            self._remove_exit_hook()
            raise
        log.info("%s connected on %s (calibration %s)", self.name, self.config.port,
                 self.calibration_source)

    def _load_calibration(self) -> dict[str, MotorCalibration]:
        path = self.calibration_source = self.config.find_calibration_file()
        if not path.exists():
            raise CalibrationError(
                f"{self.name} has no calibration at {path}: run python -m hiljax.calibrate "
                f"--robot {self.name} --port {self.config.port} --id {self.config.id} (or point "
                "calibration_dir at a LeRobot calibration)")
        calibration = load_calibration(path)
        missing = sorted(set(MOTOR_NAMES) - set(calibration))
        if missing:
            raise CalibrationError(f"{path} lacks the motors {missing}")
        return {name: calibration[name] for name in MOTOR_NAMES}

    def disconnect(self) -> None:
        if self.is_connected:
            self.bus.disconnect(disable_torque=self._torque_off_on_exit)
        self._disconnect_cameras()
        self._remove_exit_hook()

    # The atexit hook holds the arm weakly: a forgotten arm may still be garbage-collected.
    def _install_exit_hook(self) -> None:
        self._remove_exit_hook()
        arm = weakref.ref(self)

        def disconnect_at_exit():
            robot = arm()
            if robot is not None and robot.is_connected:
                log.warning("%s on %s still connected at exit: disconnecting it%s", robot.name,
                            robot.config.port,
                            " (torque off)" if robot._torque_off_on_exit else "")
                try:
                    robot.disconnect()
                except (OSError, RuntimeError) as error:  # ending anyway: say so, go on
                    log.error("%s: disconnect at exit failed: %s", robot.name, error)

        self._exit_hook = disconnect_at_exit
        atexit.register(disconnect_at_exit)

    def _remove_exit_hook(self) -> None:
        if self._exit_hook is not None:
            atexit.unregister(self._exit_hook)
            self._exit_hook = None

    def _disconnect_cameras(self) -> None:
        for camera in self.cameras.values():
            if camera.is_connected:
                camera.disconnect()

    @property
    def _torque_off_on_exit(self) -> bool:
        return self.spec.is_leader or self.config.disable_torque_on_disconnect

    def make_safe(self) -> None:
        """Torque off now when `disable_torque_on_disconnect` (leaders: always), keeping the
        connection: for a caller interrupted outside a bus operation (best effort, as below)."""
        self._last_read_ok = False
        self._make_safe()

    def _make_safe(self) -> None:
        """Best effort torque off after a failure (each motor tried; errors only logged)."""
        if self.is_connected and self._torque_off_on_exit:
            for motor in self.motor_names:
                try:
                    self.bus.disable_torque([motor], num_retry=1)
                except MotorBusError as error:
                    log.error("%s: torque could not be switched off on %s: %s", self.name,
                              motor, error)

    @property
    def status_errors(self) -> dict[str, int]:
        """{motor: error byte} of the motors whose latest read reported error bits (kept, not
        raised: see the module docstring)."""
        return self.bus.status_errors

    # ------------------------------------------------------------------ reading
    def read_joint_positions(self) -> np.ndarray:
        self._last_read_ok = False
        positions = self._guarded(lambda: self.bus.sync_read("Present_Position"))
        self._last_read_ok = True
        return np.array([positions[m] for m in self.motor_names], np.float32)

    def read_joint_currents(self) -> np.ndarray | None:
        models = {m.model for m in self.bus.motors.values()}
        if not all("Present_Current" in self.bus.model_ctrl_table[m] for m in models):
            return None
        currents = self._guarded(lambda: self.bus.sync_read("Present_Current",
                                                            normalize=False))
        return np.array([currents[m] for m in self.motor_names], np.float32)

    def read_cameras(self) -> dict[str, np.ndarray]:
        """The newest frame of each camera, never waiting (RGB uint8 at the configured size); a
        frozen or vanished camera is an error that leaves the arm limp, like a bus fault."""
        return self._guarded(lambda: {name: camera.read_latest()
                                      for name, camera in self.cameras.items()})

    # ------------------------------------------------------------------ commanding
    def send_joint_targets(self, targets: np.ndarray) -> np.ndarray:
        """Clip to the joint limits and to `max_relative_target`, then one sync write."""
        if self.spec.is_leader:
            raise MotorBusError(f"{self.name} is a leader arm: it is read, not commanded")
        if not self._last_read_ok:
            raise MotorBusError(f"{self.name}: the last read failed, so no goal is sent "
                                "(read the joints first)")
        goals = np.clip(np.asarray(targets, np.float64).reshape(-1), *self._limits)
        if self.config.max_relative_target is not None:
            present = self.read_joint_positions().astype(np.float64)
            cap = self.config.max_relative_target
            goals = present + np.clip(goals - present, -cap, cap)
        command = {m: float(g) for m, g in zip(self.motor_names, goals)}
        self._guarded(lambda: self.bus.sync_write("Goal_Position", command))
        return goals.astype(np.float32)

    def _guarded(self, operation):
        """Run a bus operation; on any failure (Ctrl-C included) leave the arm safe first."""
        try:
            return operation()
        except BaseException:
            self._last_read_ok = False
            self._make_safe()
            raise

    def _joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Each motor's range in its own units: the calibration's, narrowed by the config's
        `joint_limits` (an intersection; a limit outside the calibrated range is an error)."""
        low, high = self._calibrated_limits()
        for motor, (user_low, user_high) in (self.config.joint_limits or {}).items():
            i = self.motor_names.index(motor)
            new_low, new_high = max(low[i], user_low), min(high[i], user_high)
            if not new_low < new_high:
                raise CalibrationError(
                    f"{self.name}: joint_limits[{motor!r}] = [{user_low:g}, {user_high:g}] lies "
                    f"outside its calibrated range [{low[i]:.4g}, {high[i]:.4g}] "
                    f"({self.calibration_source})")
            if (new_low, new_high) != (user_low, user_high):
                log.info("%s: joint_limits[%r] narrowed to the calibrated range: [%.4g, %.4g]",
                         self.name, motor, new_low, new_high)
            low[i], high[i] = new_low, new_high
        return low, high

    def _calibrated_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Each motor's range in its own units, from the calibration."""
        low, high = [], []
        for motor in self.motor_names:
            spec, record = self.bus.motors[motor], self.bus.calibration[motor]
            if spec.norm_mode == NormMode.DEGREES:
                max_res = self.bus.model_resolution_table[spec.model] - 1
                ends = [normalize(v, record, NormMode.DEGREES, apply_drive_mode=False,
                                  max_res=max_res) for v in (record.range_min, record.range_max)]
            elif spec.norm_mode == NormMode.RANGE_M100_100:
                ends = [-100.0, 100.0]
            else:
                ends = [0.0, 100.0]
            low.append(min(ends))
            high.append(max(ends))
        return np.array(low), np.array(high)
