"""Choose the image crops of an env config (LeRobot's `crop_dataset_roi`, without writing a
cropped dataset): one rectangle per camera, as `wrapper.crop_params_dict`.

    python -m hiljax.crop_roi (--dataset ROOT [--episode N] | --image CAM=PATH ... |
                               --config ENV_CONFIG) [--roi CAM=TOP,LEFT,HEIGHT,WIDTH ...]
                              [--write ENV_CONFIG] [--resize H W]

Frames: the first frame of an episode of a recorded LeRobot dataset, image files, or the
cameras of the env config's robot. Without --roi, each frame opens in an OpenCV window: drag a
rectangle, `c` confirms, `r` redoes, ESC skips the camera (LeRobot's keys). With --roi (a
headless machine) no window opens: the rectangles are checked against the frames. Prints
`crop_params_dict` with LeRobot's keys (`observation.images.<camera>`); --write replaces
`wrapper.crop_params_dict` (and with --resize sets `wrapper.resize_size`) in ENV_CONFIG,
keeping every other field. Exit: 0 done; 1 no frame or nothing chosen; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hiljax.config import ConfigError
from hiljax.datasets import DatasetError
from hiljax.hardware.cameras import CameraError
from hiljax.hardware.motors import CalibrationError
from hiljax.run.setup_tools import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Console

log = logging.getLogger("hiljax.crop_roi")

IMAGE_PREFIX = "observation.images."
CROPS_FIELD, RESIZE_FIELD = "wrapper.crop_params_dict", "wrapper.resize_size"
MIN_DISPLAY_PX = 512  # small frames (128 px) are shown enlarged so a rectangle can be dragged
ESC = 27
Roi = tuple[int, int, int, int]  # top, left, height, width (pixels)


class RoiError(ValueError):
    """A rectangle, a camera or a frame source the person has to correct."""


def camera_key(name: str) -> str:
    """The observation key of a camera ("front" or "observation.images.front")."""
    return name if name.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + name


def parse_roi(text: str) -> tuple[str, Roi]:
    """`CAM=TOP,LEFT,HEIGHT,WIDTH` -> (camera key, rectangle); argparse's `type`."""
    camera, sep, numbers = text.partition("=")
    parts = numbers.split(",")
    try:
        roi = tuple(int(p) for p in parts)
    except ValueError:
        roi = ()
    if not (sep and camera.strip() and len(roi) == 4 and min(roi) >= 0 and min(roi[2:]) > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected CAMERA=TOP,LEFT,HEIGHT,WIDTH with whole pixels, height and "
            "width > 0, e.g. front=40,60,200,240")
    return camera_key(camera.strip()), roi


def parse_image(text: str) -> tuple[str, str]:
    camera, sep, path = text.partition("=")
    if not (sep and camera.strip() and path):
        raise argparse.ArgumentTypeError(f"{text!r}: expected CAMERA=PATH, e.g. front=front.png")
    return camera_key(camera.strip()), path


def check_roi(key: str, roi: Roi, shape: Sequence[int]) -> None:
    top, left, height, width = roi
    if top + height > shape[0] or left + width > shape[1]:
        raise RoiError(f"{key}: the rectangle {list(roi)} (top, left, height, width) reaches "
                       f"outside the {shape[0]}x{shape[1]} (height x width) frame")


# ------------------------------------------------------------------------------ frames
def frames_from_dataset(root: str, episode: int) -> dict[str, np.ndarray]:
    from hiljax.datasets import read_dataset

    dataset = read_dataset(root)
    if not dataset.image_keys:
        raise RoiError(f"{root} has no camera features")
    if not 0 <= episode < dataset.num_episodes:
        raise RoiError(f"--episode {episode}: {root} has {dataset.num_episodes} episode(s)")
    frames = dataset.episode(episode, dataset.image_keys)
    return {key: frames[key][0] for key in dataset.image_keys}


def frames_from_images(pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    import cv2

    frames = {}
    for key, path in pairs:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise RoiError(f"{key}: cannot read the image {path}")
        frames[key] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # frames are RGB everywhere else
    return frames


def frames_from_config(path: str) -> dict[str, np.ndarray]:
    """One frame of each camera of the config's robot, connected just for that: a real arm's
    cameras (robot.cameras: opencv, intelrealsense, file) come with the arm, which needs its
    port and calibration, holds its pose meanwhile and is limp again after."""
    from hiljax.envs.configs import load_env_config
    from hiljax.envs.factory import make_robot

    cfg = load_env_config(path)
    if not cfg.robot.cameras:
        raise RoiError(f"{path}: robot.cameras is empty: take the frames from --dataset "
                       "or --image")
    try:
        robot = make_robot(cfg.robot, cfg.fps)
    except ValueError as error:  # a robot type with its own env (gym_hil)
        raise RoiError(f"{path}: {error}") from error
    robot.connect()
    try:
        frames = {camera_key(name): frame for name, frame in robot.read_cameras().items()}
    finally:
        robot.disconnect()
    if not frames:
        raise RoiError(f"{path}: the robot ({cfg.robot.type}) gave no camera frames")
    return frames


# ------------------------------------------------------------------------------ window
def window_problem() -> str | None:
    """Why no OpenCV window can open here (None: it can)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY is unset; over SSH use ssh -X)"
    import cv2

    if re.search(r"^\s*GUI:\s+NONE\s*$", cv2.getBuildInformation(), re.MULTILINE):
        return "this OpenCV has no GUI (opencv-python-headless; opencv-python has one)"
    return None


def drag_to_roi(start: tuple[int, int], end: tuple[int, int], scale: int,
                shape: Sequence[int]) -> Roi | None:
    """A drag between two window points (x, y), shown `scale` times enlarged, as a rectangle of
    the frame, clipped to it; None for a click without area."""
    (x0, x1), (y0, y1) = sorted((start[0], end[0])), sorted((start[1], end[1]))
    left, top = max(0, x0 // scale), max(0, y0 // scale)
    right, bottom = min(shape[1], -(-x1 // scale)), min(shape[0], -(-y1 // scale))
    if right <= left or bottom <= top:
        return None
    return top, left, bottom - top, right - left


def select_roi(key: str, frame: np.ndarray, console: Console) -> Roi | None:
    """Drag a rectangle on `frame` (RGB); c confirms, r redoes, ESC (or closing) skips."""
    import cv2

    scale = max(1, MIN_DISPLAY_PX // max(frame.shape[:2]))
    shown = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_NEAREST)
    drag = {"start": None, "end": None, "down": False}

    def on_mouse(event, x, y, *_):
        if event == cv2.EVENT_LBUTTONDOWN:
            drag.update(start=(x, y), end=(x, y), down=True)
        elif drag["down"] and event in (cv2.EVENT_MOUSEMOVE, cv2.EVENT_LBUTTONUP):
            drag.update(end=(x, y), down=event == cv2.EVENT_MOUSEMOVE)

    window = f"{key}: drag a rectangle, c confirm, r redo, ESC skip"
    cv2.namedWindow(window, cv2.WINDOW_AUTOSIZE)
    cv2.setMouseCallback(window, on_mouse)
    console.say(f"{key}: drag a rectangle, press c to confirm, r to redo, ESC to skip")
    try:
        while cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) >= 1:
            canvas = shown.copy()
            if drag["start"] is not None:
                cv2.rectangle(canvas, drag["start"], drag["end"], (0, 255, 0), 2)
            cv2.imshow(window, canvas)
            key_code = cv2.waitKey(20) & 0xFF
            if key_code == ord("c") and drag["start"] is not None:
                roi = drag_to_roi(drag["start"], drag["end"], scale, frame.shape)
                if roi is not None:
                    return roi
            if key_code == ord("r"):
                drag.update(start=None, end=None, down=False)
            elif key_code == ESC:
                break
        return None
    finally:
        cv2.destroyWindow(window)


# ------------------------------------------------------------------------------ main
def choose_rois(frames: dict[str, np.ndarray], given: dict[str, Roi], console: Console
                ) -> dict[str, Roi]:
    """The --roi rectangles checked against the frames, or one window per camera."""
    if given:
        unknown = sorted(set(given) - set(frames))
        if unknown:
            raise RoiError(f"--roi names {unknown}; the cameras are {sorted(frames)}")
        for key, roi in given.items():
            check_roi(key, roi, frames[key].shape)
        return dict(given)
    problem = window_problem()
    if problem:
        raise RoiError(f"no window can open: {problem}; give the rectangles with --roi "
                       f"CAMERA=TOP,LEFT,HEIGHT,WIDTH (frames: " + ", ".join(
                           f"{k} {f.shape[0]}x{f.shape[1]}" for k, f in frames.items()) + ")")
    chosen = {key: select_roi(key, frame, console) for key, frame in frames.items()}
    return {key: roi for key, roi in chosen.items() if roi is not None}


def load_frames(args: argparse.Namespace) -> dict[str, np.ndarray]:
    if args.dataset:
        return frames_from_dataset(args.dataset, args.episode)
    if args.image:
        return frames_from_images(args.image)
    return frames_from_config(args.config)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hiljax.crop_roi",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a recorded LeRobot dataset's root directory")
    source.add_argument("--image", action="append", type=parse_image, metavar="CAM=PATH",
                        help="an image file per camera (repeatable)")
    source.add_argument("--config", help="an env config whose robot has cameras")
    parser.add_argument("--episode", type=int, default=0, help="--dataset: the episode")
    parser.add_argument("--roi", action="append", type=parse_roi, default=[],
                        metavar="CAM=TOP,LEFT,HEIGHT,WIDTH",
                        help="the rectangle of a camera, no window (repeatable)")
    parser.add_argument("--write", metavar="ENV_CONFIG", help=f"put {CROPS_FIELD} here")
    parser.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"),
                        help=f"with --write: also set {RESIZE_FIELD}")
    args = parser.parse_args(argv)
    if args.resize and min(args.resize) <= 0:
        parser.error("--resize H W must be > 0")
    duplicated = sorted({k for k, _ in args.roi if [c for c, _ in args.roi].count(k) > 1})
    if duplicated:
        parser.error(f"--roi given twice for {duplicated}")
    return args


def main(argv: Sequence[str] | None = None, stdin=None, stdout=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    console = Console(stdin, stdout)
    try:
        frames = load_frames(args)
        crops = choose_rois(frames, dict(args.roi), console)
    except (RoiError, ConfigError) as error:
        log.error("%s", error)
        return EXIT_USAGE
    except (DatasetError, CalibrationError, CameraError, OSError) as error:
        # a dataset, an arm (its bus, its calibration) or a camera that cannot be read
        log.error("no frames: %s", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted: nothing written")
        return EXIT_INTERRUPTED
    return _finish(args, console, crops)


def _finish(args: argparse.Namespace, console: Console, crops: dict[str, Roi]) -> int:
    if not crops:
        log.error("every camera was skipped: nothing to print or write")
        return EXIT_FAILED
    params = {key: list(roi) for key, roi in crops.items()}
    console.say("crop_params_dict (top, left, height, width):")
    console.say(json.dumps(params))
    if args.resize:
        console.say(f"resize_size: {list(args.resize)}")
    if args.write:
        values = {CROPS_FIELD: params, **({RESIZE_FIELD: list(args.resize)} if args.resize
                                          else {})}
        try:
            _write(args.write, values)
        except (ConfigError, OSError) as error:
            log.error("the config was not written: %s", error)
            return EXIT_FAILED
        console.say(f"Wrote {', '.join(values)} to {args.write}")
    return EXIT_OK


def _write(path: str, values: dict) -> None:
    from hiljax.run.setup_tools import update_env_config

    cfg = update_env_config(path, values)
    cameras = {camera_key(name) for name in cfg.robot.cameras}
    missing = sorted(set(values[CROPS_FIELD]) - cameras)
    if missing:  # the config loads, but the env stack refuses a crop of a camera it lacks
        log.warning("%s: robot.cameras %s has no %s: make_robot_env refuses these crops until "
                    "the robot has those cameras", Path(path).name, list(cfg.robot.cameras),
                    missing)


if __name__ == "__main__":
    raise SystemExit(main())
