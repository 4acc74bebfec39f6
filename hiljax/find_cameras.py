"""List the cameras on this machine and save one picture of each (LeRobot's find-cameras).

    python -m hiljax.find_cameras [--output-dir outputs/captured_images] [--max-index 60]

Linux probes /dev/video* (a camera often has two nodes: only the one that opens is listed);
other systems probe indices 0..max-index-1. RealSense devices are listed too when
pyrealsense2 is installed. Copy a listed index_or_path (or serial number) into the robot
config's cameras, and look at the pictures to tell which camera is which.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from hiljax.hardware.cameras import (
    CameraConfig,
    CameraError,
    find_cameras,
    make_camera,
    save_frames,
)

log = logging.getLogger("hiljax.find_cameras")


def _name(entry: dict) -> str:
    """A file-friendly name: opencv__dev_video0, opencv_1, intelrealsense_0123456789."""
    device = entry.get("index_or_path", entry.get("serial_number_or_name"))
    return f"{entry['type']}_{re.sub(r'[^A-Za-z0-9]', '_', str(device))}"


def _describe(entry: dict) -> str:
    device = entry.get("index_or_path", entry.get("serial_number_or_name"))
    size = f"{entry['width']}x{entry['height']}" if entry.get("width") else "default size"
    fps = f"{entry['fps']:g} fps" if entry.get("fps") else "fps unknown"
    extra = entry.get("name") or entry.get("backend") or ""
    return f"  {entry['type']:<15} {device!s:<14} {size:<10} {fps:<10} {extra}"


def _config_for(entry: dict) -> CameraConfig:
    if entry["type"] == "intelrealsense":
        return CameraConfig(type="intelrealsense",
                            serial_number_or_name=entry["serial_number_or_name"])
    return CameraConfig(type=entry["type"], index_or_path=entry["index_or_path"])


def _capture(entry: dict, output_dir: Path) -> Path | None:
    """Connect at the camera's own settings, save one picture, disconnect."""
    name = _name(entry)
    try:
        camera = make_camera(name, _config_for(entry))
        with camera:
            return save_frames({name: camera}, output_dir).get(name)
    except (CameraError, ImportError) as exc:
        log.warning("%s: %s", name, exc)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hiljax.find_cameras",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/captured_images"),
                        help="where one PNG per camera is saved")
    parser.add_argument("--max-index", type=int, default=60,
                        help="indices probed where there is no /dev/video* (not Linux)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    found = find_cameras(max_index=args.max_index)
    if not found:
        print("No cameras found: OpenCV could open no video device (is a camera plugged in, "
              "and is the user in the 'video' group?), and no RealSense device was listed.")
        return 0
    print(f"Found {len(found)} camera(s):")
    for entry in found:
        print(_describe(entry))
    failed = 0
    for entry in found:
        path = _capture(entry, args.output_dir)
        failed += path is None
        print(f"  {_name(entry)}: {path if path else 'no picture (see the warning above)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
