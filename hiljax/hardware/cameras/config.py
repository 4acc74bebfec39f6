"""CameraConfig: one frozen dataclass for every camera kind, with LeRobot's field names
(OpenCVCameraConfig / RealSenseCameraConfig, hardware_facts §5), so a LeRobot robot config's
`cameras` entry reads the same here:

    {"type": "opencv", "index_or_path": "/dev/video4", "fps": 30, "width": 640, "height": 480}

Values are checked when built: a bad value raises ConfigError (a ValueError) naming the field.
"""

from __future__ import annotations

import dataclasses

from hiljax.config import require

CAMERA_TYPES = ("opencv", "intelrealsense", "file", "sim")
COLOR_MODES = ("rgb", "bgr")
ROTATIONS = (0, 90, 180, -90, 270)


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    # opencv: a USB / built-in camera through OpenCV; intelrealsense: pyrealsense2 (colour only);
    # file: a video or image file played as if live (tests, replays); sim: frames from a
    # render() callable handed to make_camera (the MuJoCo sim).
    type: str = "opencv"
    # opencv: a device index (0) or path (/dev/video4; a string of digits is an index);
    # file: the video / image path. Unused by intelrealsense and sim.
    index_or_path: int | str | None = None
    # intelrealsense: a serial number (all digits) or a unique device name.
    serial_number_or_name: str | None = None
    # null: the device's own (file: the file's fps; sim: 30). Frames per second delivered.
    fps: int | None = None
    # The OUTPUT size, after rotation (as LeRobot): for rotation +-90 the device captures
    # height x width. null (both): the device's own size.
    width: int | None = None
    height: int | None = None
    color_mode: str = "rgb"  # channel order of the frames returned: "rgb" or "bgr"
    # Degrees clockwise: 0, 90, 180, -90 (270 is read as -90, LeRobot's ROTATE_270).
    rotation: int = 0
    # Seconds connect() keeps reading before it returns, so auto-exposure settles.
    warmup_s: float = 1.0
    # read_latest() raises StaleFrameError when the newest frame is older than this.
    max_age_ms: float = 500.0
    loop: bool = True  # file: start again at the end (false: the stream ends, frames go stale)
    # opencv: a 4-character code such as "MJPG" (LeRobot's field; a refusal only warns). USB
    # cameras often need MJPG for 30 fps above 640x480.
    fourcc: str | None = None

    def __post_init__(self):
        require(self.type in CAMERA_TYPES,
                f"camera type must be one of {CAMERA_TYPES}, got {self.type!r}")
        if isinstance(self.index_or_path, str) and self.index_or_path.isdigit() \
                and self.type == "opencv":
            object.__setattr__(self, "index_or_path", int(self.index_or_path))
        if self.rotation == 270:
            object.__setattr__(self, "rotation", -90)
        self._check_source()
        self._check_stream()

    def _check_source(self) -> None:
        source = self.index_or_path
        if self.type == "opencv":
            is_index = isinstance(source, int) and not isinstance(source, bool) and source >= 0
            require(is_index or isinstance(source, str) and bool(source),
                    "camera index_or_path must be a device index >= 0 or a path such as "
                    f"/dev/video4 for type 'opencv', got {source!r}")
        if self.type == "file":
            require(isinstance(source, str) and bool(source),
                    f"camera index_or_path must be a video or image file for type 'file', "
                    f"got {source!r}")
        if self.type == "intelrealsense":
            require(bool(self.serial_number_or_name),
                    "camera serial_number_or_name must be set for type 'intelrealsense' "
                    "(python -m hiljax.find_cameras lists them)")
            require((self.fps is None) == (self.width is None) == (self.height is None),
                    "camera fps, width and height must all be set or all be null for type "
                    "'intelrealsense' (as LeRobot)")

    def _check_stream(self) -> None:
        require((self.width is None) == (self.height is None),
                f"camera width and height must both be set or both be null, got "
                f"width={self.width}, height={self.height}")
        for name in ("fps", "width", "height"):
            value = getattr(self, name)
            require(value is None or isinstance(value, int) and not isinstance(value, bool)
                    and value > 0, f"camera {name} must be a positive integer or null, "
                    f"got {value!r}")
        require(self.color_mode in COLOR_MODES,
                f"camera color_mode must be one of {COLOR_MODES}, got {self.color_mode!r}")
        require(self.rotation in ROTATIONS,
                f"camera rotation must be one of {ROTATIONS}, got {self.rotation!r}")
        require(self.warmup_s >= 0, f"camera warmup_s must be >= 0, got {self.warmup_s}")
        require(self.max_age_ms > 0, f"camera max_age_ms must be > 0, got {self.max_age_ms}")
        require(self.fourcc is None or len(self.fourcc) == 4,
                f"camera fourcc must be 4 characters (e.g. MJPG) or null, got {self.fourcc!r}")

    @property
    def capture_size(self) -> tuple[int, int] | None:
        """(width, height) the device must deliver BEFORE rotation; None: its own size."""
        if self.width is None or self.height is None:
            return None
        if self.rotation in (90, -90):
            return self.height, self.width
        return self.width, self.height
