"""LeRobot's motor calibration: the JSON file, where it lives, and the normalisation it defines.

A calibration file is a JSON object keyed by motor name, each value exactly
`{"id", "drive_mode", "homing_offset", "range_min", "range_max"}` (raw ticks; homing_offset
signed), written with a 4-space indent, as LeRobot 0.4.x writes it. It lives at
`$HF_LEROBOT_CALIBRATION/<robots|teleoperators>/<device name>/<id>.json` (the root defaults to
`$HF_LEROBOT_HOME/calibration`, and HF_LEROBOT_HOME to `$HF_HOME/lerobot`, i.e.
`~/.cache/huggingface/lerobot`); a `calibration_dir` overrides the directory. So a person's
LeRobot calibration works in hiljax unchanged, and hiljax's works in LeRobot.

Normalisation applies to Goal_Position and Present_Position only (every other register is raw),
with `max_res` = resolution - 1 (4095 for 4096 ticks per turn, LeRobot's constant):

    DEGREES          deg = (raw - mid) * 360 / max_res, mid = (min + max) / 2; no clip, no drive mode
    RANGE_M100_100   n = (clip(raw, min, max) - min) / (max - min) * 200 - 100; -n with drive mode
    RANGE_0_100      n = (clip(raw, min, max) - min) / (max - min) * 100; 100 - n with drive mode

and back with `int()` (truncation toward zero), as LeRobot does, so the same calibration gives
the same numbers. Drive mode is applied in software on Feetech buses and by the servo's own
Drive_Mode bit on Dynamixel ones (`apply_drive_mode`).

Older LeRobot releases named the SO arms' directories by robot type (so100_follower,
so101_follower, so100_leader, so101_leader) where 0.4 says so_follower / so_leader, and 0.4 no
longer finds those files. `find_calibration_file` reads such a file when the current one is
absent (and logs which file it used); writing always uses the current name (`calibration_path`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hiljax.storage.files import write_atomic

log = logging.getLogger(__name__)

FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")  # LeRobot's order
DEFAULT_MAX_RES = 4095


class CalibrationError(ValueError):
    """A calibration file or record that cannot be used as written."""


class NormMode(str, enum.Enum):
    """LeRobot's MotorNormMode values."""

    DEGREES = "degrees"
    RANGE_M100_100 = "range_m100_100"
    RANGE_0_100 = "range_0_100"


@dataclasses.dataclass(frozen=True)
class MotorCalibration:
    """One motor's record (LeRobot's field names, raw ticks)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def __post_init__(self):
        for name in FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise CalibrationError(f"calibration field {name!r} must be an integer, "
                                       f"got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.drive_mode not in (0, 1):
            raise CalibrationError(f"drive_mode must be 0 or 1, got {self.drive_mode}")


# ---------------------------------------------------------------------------------------------
# Normalisation (LeRobot's formulas; see the module docstring).


def _bounds(calibration: MotorCalibration) -> tuple[int, int]:
    low, high = calibration.range_min, calibration.range_max
    if low == high:
        raise CalibrationError(f"motor id {calibration.id}: range_min == range_max ({low}); "
                               "recalibrate it")
    return low, high


def normalize(raw, calibration: MotorCalibration, mode: NormMode, *, apply_drive_mode: bool,
              max_res: int = DEFAULT_MAX_RES) -> float:
    """Raw ticks -> degrees / [-100, 100] / [0, 100]."""
    low, high = _bounds(calibration)
    inverted = apply_drive_mode and calibration.drive_mode == 1
    if mode == NormMode.DEGREES:
        return (float(raw) - (low + high) / 2) * 360.0 / max_res
    fraction = (min(max(float(raw), low), high) - low) / (high - low)
    if mode == NormMode.RANGE_M100_100:
        value = fraction * 200.0 - 100.0
        return -value if inverted else value
    if mode == NormMode.RANGE_0_100:
        value = fraction * 100.0
        return 100.0 - value if inverted else value
    raise CalibrationError(f"unknown normalisation mode {mode!r}")


def unnormalize(value, calibration: MotorCalibration, mode: NormMode, *, apply_drive_mode: bool,
                max_res: int = DEFAULT_MAX_RES) -> int:
    """Degrees / [-100, 100] / [0, 100] -> raw ticks (truncated toward zero, as LeRobot)."""
    low, high = _bounds(calibration)
    inverted = apply_drive_mode and calibration.drive_mode == 1
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"motor id {calibration.id}: goal {value} is not a finite number")
    if mode == NormMode.DEGREES:
        return int(value * max_res / 360.0 + (low + high) / 2)
    if mode == NormMode.RANGE_M100_100:
        value = min(max(-value if inverted else value, -100.0), 100.0)
        return int((value + 100.0) / 200.0 * (high - low) + low)
    if mode == NormMode.RANGE_0_100:
        value = min(max(100.0 - value if inverted else value, 0.0), 100.0)
        return int(value / 100.0 * (high - low) + low)
    raise CalibrationError(f"unknown normalisation mode {mode!r}")


# ---------------------------------------------------------------------------------------------
# Files.


def calibration_root() -> Path:
    """LeRobot's calibration root, from the same environment variables."""
    if os.environ.get("HF_LEROBOT_CALIBRATION"):
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    home = os.environ.get("HF_LEROBOT_HOME")
    if not home:
        hf_home = os.environ.get("HF_HOME") or Path("~/.cache/huggingface").expanduser()
        home = Path(hf_home) / "lerobot"
    return Path(home).expanduser() / "calibration"


def calibration_path(kind: str, device_name: str, device_id: str | None,
                     calibration_dir: str | os.PathLike | None = None) -> Path:
    """Where LeRobot keeps the file of device `device_id` (kind "robots" or "teleoperators";
    device names as LeRobot 0.4: so_follower, so_leader, koch_follower, koch_leader)."""
    if kind not in ("robots", "teleoperators"):
        raise ValueError(f"kind must be 'robots' or 'teleoperators', got {kind!r}")
    directory = (Path(calibration_dir).expanduser() if calibration_dir is not None
                 else calibration_root() / kind / device_name)
    return directory / f"{device_id}.json"  # LeRobot too names an unset id "None.json"


def find_calibration_file(kind: str, device_name: str, device_id: str | None,
                          calibration_dir: str | os.PathLike | None = None,
                          legacy_device_names: tuple[str, ...] = ()) -> Path:
    """The file to read for device `device_id`: `calibration_path`'s when it exists; otherwise
    the first existing file under one of `legacy_device_names` (an older LeRobot release's
    directory, same root and id), logged at info; otherwise `calibration_path`'s (absent). An
    explicit `calibration_dir` names the directory itself, so it is never searched elsewhere."""
    path = calibration_path(kind, device_name, device_id, calibration_dir)
    if path.exists() or calibration_dir is not None:
        return path
    for legacy in legacy_device_names:
        old = calibration_path(kind, legacy, device_id)
        if old.is_file():
            log.info("no calibration file at %s; using %s, written by an older LeRobot release "
                     "(directory %r; LeRobot 0.4 says %r). A new calibration is saved at the "
                     "first path", path, old, legacy, device_name)
            return old
    return path


def load_calibration(path: str | os.PathLike) -> dict[str, MotorCalibration]:
    """A LeRobot calibration file; CalibrationError naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"no calibration file at {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CalibrationError(f"{path}: not a readable calibration file ({error})") from None
    if not isinstance(data, dict) or not data:
        raise CalibrationError(f"{path}: expected an object keyed by motor name")
    out = {}
    for motor, record in data.items():
        if not isinstance(record, dict) or set(record) != set(FIELDS):
            raise CalibrationError(f"{path}: motor {motor!r} needs exactly the fields "
                                   f"{list(FIELDS)}, got {record!r}")
        try:
            out[motor] = MotorCalibration(**record)
        except CalibrationError as error:
            raise CalibrationError(f"{path}: motor {motor!r}: {error}") from None
    return out


def calibration_to_json(calibration: Mapping[str, MotorCalibration]) -> str:
    records = {name: {f: getattr(c, f) for f in FIELDS} for name, c in calibration.items()}
    return json.dumps(records, indent=4)


def save_calibration(path: str | os.PathLike, calibration: Mapping[str, MotorCalibration]) -> Path:
    """Write the file as LeRobot does (4-space indent, LeRobot's field order), atomically."""
    text = calibration_to_json(calibration)
    write_atomic(path, lambda tmp: tmp.write_text(text))
    return Path(path)
