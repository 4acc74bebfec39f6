"""Calibrate an arm the way LeRobot does, in a terminal (works over SSH; no GUI).

    python -m hiljax.calibrate --robot so101_follower --port /dev/ttyACM0 --id my_arm
                               [--calibration-dir DIR]

1. With a calibration file already there: ENTER writes its offsets and limits to the motors,
   `c` + ENTER calibrates again.
2. Torque off; move the arm to the middle of its range, ENTER: that pose reads half a turn.
3. Move every joint (except the full-turn ones) through its whole range while a live table
   shows min / current / max; ENTER stops.
4. Offsets and limits go into the motors' EEPROM and into LeRobot's calibration file
   (`$HF_LEROBOT_CALIBRATION/<robots|teleoperators>/<device>/<id>.json`), which LeRobot reads.
The arm is left limp (torque off) at the end, and on any error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from functools import partial
from typing import TextIO

from hiljax.hardware.motors import MotorBusError, MotorCalibration, save_calibration
from hiljax.hardware.motors.bus import MotorsBus
from hiljax.hardware.motors.calibration import CalibrationError, load_calibration
from hiljax.hardware.robots import ARMS, ServoArmConfig
from hiljax.run.setup_tools import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Console

log = logging.getLogger("hiljax.calibrate")
FULL_TURN = (0, 4095)
REDRAW_EVERY_S = 0.1
# LeRobot's live table: names in 15 columns, raw positions in 6 (widths that do not move).
TABLE_HEADER = (f"{'NAME':<15}", f"{'MIN':>6}", f"{'POS':>6}", f"{'MAX':>6}")


def calibrate(bus: MotorsBus, config: ServoArmConfig, console: Console) -> dict:
    """The interactive procedure on a connected bus; returns the calibration it saved."""
    spec, path = config.spec, config.calibration_file
    source = config.find_calibration_file()  # `path`, or an older LeRobot release's file
    if source.exists():
        answer = console.ask(f"Press ENTER to use the calibration file {source}, or type 'c' "
                             "and ENTER to run the calibration again: ")
        if answer.lower() != "c":
            calibration = load_calibration(source)
            if set(calibration) != set(bus.motors):
                raise CalibrationError(f"{source} holds the motors {sorted(calibration)}, the "
                                       f"{config.type} has {sorted(bus.motors)}")
            bus.write_calibration(calibration)
            console.say(f"Wrote the calibration of {source} to the motors.")
            if source != path:  # where current LeRobot (and hiljax) look for it from now on
                save_calibration(path, calibration)
                console.say(f"Saved a copy under the current name: {path}")
            return calibration
    bus.disable_torque()
    drive_modes = _set_modes(bus, spec)
    console.ask(f"Move {config.type} to the middle of its range of motion and press ENTER: ")
    offsets = bus.set_half_turn_homings()
    moving = [m for m in bus.motors if m not in spec.full_turn_motors]
    console.say(f"Move all joints except {', '.join(spec.full_turn_motors)} sequentially "
                "through their entire ranges of motion. Recording positions; press ENTER to "
                "stop...")
    mins, maxes = bus.record_ranges_of_motion(moving, should_stop=partial(_stop, console),
                                              on_update=partial(_show, console))
    console.end_table()
    for motor in spec.full_turn_motors:
        mins[motor], maxes[motor] = FULL_TURN
    calibration = {name: MotorCalibration(id=motor.id, drive_mode=drive_modes[name],
                                          homing_offset=offsets[name], range_min=mins[name],
                                          range_max=maxes[name])
                   for name, motor in bus.motors.items()}
    bus.write_calibration(calibration)
    save_calibration(path, calibration)
    console.say(f"Calibration saved to {path}")
    return calibration


def _stop(console: Console) -> bool:
    """ENTER typed, waiting at most REDRAW_EVERY_S. A closed input is EOFError, not ENTER: the
    ranges recorded so far may be incomplete."""
    try:
        return console.enter_pressed(REDRAW_EVERY_S)
    except EOFError:
        raise EOFError("the input closed while the ranges of motion were recorded") from None


def _show(console: Console, mins: dict, positions: dict, maxes: dict) -> None:
    """The min / position / max table, redrawn in place on a terminal (appended otherwise)."""
    console.table(TABLE_HEADER, [(name, mins[name], positions[name], maxes[name])
                                 for name in positions])


def _set_modes(bus: MotorsBus, spec) -> dict[str, int]:
    """Position mode (Feetech) or extended position (Dynamixel); the Koch leader's elbow turns
    the other way (drive mode 1, LeRobot's). Returns each motor's drive mode."""
    drive_modes = dict.fromkeys(bus.motors, 0)
    mode = 0 if spec.bus == "feetech" else 4
    for motor in bus.motors:
        bus.write("Operating_Mode", motor, mode, normalize=False)
    if spec.name == "koch_leader":
        bus.write("Drive_Mode", "elbow_flex", 1, normalize=False)
        drive_modes["elbow_flex"] = 1
    return drive_modes


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hiljax.calibrate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", required=True, choices=sorted(ARMS),
                        help="LeRobot's device type (followers and leaders)")
    parser.add_argument("--port", required=True, help="the servo bus, e.g. /dev/ttyACM0")
    parser.add_argument("--id", required=True, help="names the calibration file")
    parser.add_argument("--calibration-dir", help="default: LeRobot's calibration directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = ServoArmConfig(type=args.robot, port=args.port, id=args.id,
                            calibration_dir=args.calibration_dir)
    bus = config.spec.make_bus(args.port)
    try:
        bus.connect()
        calibrate(bus, config, Console(stdin, stdout))
    except (MotorBusError, CalibrationError, ValueError, EOFError) as error:
        log.error("calibration failed: %s", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted: the calibration was not saved")
        return EXIT_INTERRUPTED
    finally:
        bus.disconnect(disable_torque=True)  # limp at the end, whatever happened
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
