"""CameraConfig: LeRobot's field names and defaults, and a clear ValueError naming the field."""

import dataclasses
import json

import pytest

from hiljax.config import ConfigError, from_dict
from hiljax.hardware.cameras import CameraConfig


def test_defaults_follow_lerobot():
    config = CameraConfig(index_or_path=0)
    assert (config.type, config.color_mode, config.rotation, config.warmup_s) == \
        ("opencv", "rgb", 0, 1.0)
    assert (config.fps, config.width, config.height) == (None, None, None)
    assert config.max_age_ms == 500 and config.loop is True
    assert config.capture_size is None


def test_normalised_values():
    assert CameraConfig(index_or_path="4").index_or_path == 4  # a string of digits is an index
    assert CameraConfig(index_or_path="/dev/video4").index_or_path == "/dev/video4"
    assert CameraConfig(index_or_path=0, rotation=270).rotation == -90  # LeRobot's ROTATE_270
    rotated = CameraConfig(index_or_path=0, width=480, height=640, rotation=90)
    assert rotated.capture_size == (640, 480)  # width / height are the output size
    assert CameraConfig(index_or_path=0, width=640, height=480).capture_size == (640, 480)


def test_loads_from_a_robot_config_json():
    text = '{"type": "opencv", "index_or_path": "/dev/video4", "fps": 30, "width": 640, ' \
           '"height": 480, "rotation": -90}'
    config = from_dict(CameraConfig, json.loads(text))
    assert config.index_or_path == "/dev/video4" and config.rotation == -90
    assert from_dict(CameraConfig, {"index_or_path": 2}).index_or_path == 2
    with pytest.raises(ConfigError, match="unknown field"):
        from_dict(CameraConfig, {"index_or_path": 2, "use_depht": True})


@pytest.mark.parametrize("fields, field_name", [
    ({"type": "usb", "index_or_path": 0}, "camera type"),
    ({"index_or_path": None}, "index_or_path"),
    ({"index_or_path": -1}, "index_or_path"),
    ({"type": "file"}, "index_or_path"),
    ({"type": "intelrealsense"}, "serial_number_or_name"),
    ({"type": "intelrealsense", "serial_number_or_name": "123", "fps": 30},
     "fps, width and height"),
    ({"index_or_path": 0, "width": 640}, "width and height"),
    ({"index_or_path": 0, "width": 0, "height": 480}, "camera width"),
    ({"index_or_path": 0, "fps": 0}, "camera fps"),
    ({"index_or_path": 0, "fps": True}, "camera fps"),
    ({"index_or_path": 0, "color_mode": "hsv"}, "color_mode"),
    ({"index_or_path": 0, "rotation": 45}, "rotation"),
    ({"index_or_path": 0, "warmup_s": -1}, "warmup_s"),
    ({"index_or_path": 0, "max_age_ms": 0}, "max_age_ms"),
    ({"index_or_path": 0, "fourcc": "MJP"}, "fourcc"),
])
def test_bad_values_name_the_field(fields, field_name):
    with pytest.raises(ValueError, match=field_name):
        CameraConfig(**fields)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CameraConfig(index_or_path=0).fps = 30
