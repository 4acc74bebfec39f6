"""`python -m hiljax.crop_roi --config` on a real arm's config: the so101 template with its
follower on a virtual arm (a real pseudo-terminal) and its two cameras played from video files
of the template's size (640 x 480), read through the robot's read_cameras."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from hiljax.crop_roi import main
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.virtual import VirtualSO100
from tests.tools.helpers import ROOT

TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
RESET_POSE = json.loads(TEMPLATE.read_text())["wrapper"]["fixed_reset_joint_positions"]


@pytest.fixture
def arm(tmp_path):
    arm = VirtualSO100(calibrated=True, pose=RESET_POSE)
    arm.start()
    arm.save_calibration(tmp_path / "my_follower.json")  # the template's robot.id
    yield arm
    arm.stop()


def video(path, width: int, height: int, frames: int = 5):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    for index in range(frames):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 1] = 40 * index
        writer.write(frame)
    writer.release()
    return str(path)


def filled_in(template, arm: VirtualSO100, tmp_path):
    """A template as a person fills it in, each camera a file of the template's size."""
    data = json.loads(template.read_text())
    data["robot"].update(port=arm.port, calibration_dir=str(tmp_path))
    for name, camera in data["robot"]["cameras"].items():
        camera.update(type="file", warmup_s=0, index_or_path=video(
            tmp_path / f"{name}.avi", camera["width"], camera["height"]))
    path = tmp_path / f"env_{template.stem}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


@pytest.fixture
def config(arm, tmp_path):
    return filled_in(TEMPLATE, arm, tmp_path)


def limp(arm: VirtualSO100) -> bool:
    return all(arm.register(motor, "Torque_Enable") == 0 for motor in range(1, 7))


def observed_images(path) -> dict[str, tuple]:
    """The image shapes of a reset of the env the config builds (nobody intervening)."""
    cfg = load_env_config(path, ["wrapper.ee_action_space_params.control_mode=null",
                                 "wrapper.reset_time_s=0"])
    env = make_robot_env(cfg)
    try:
        observation, _ = env.reset()
    finally:
        env.close()
    return {k: v.shape for k, v in observation.items() if k.startswith("observation.images.")}


@pytest.mark.parametrize("template", ["env_real_so100_template.json", TEMPLATE.name])
def test_the_templates_crops_fit_its_cameras(arm, tmp_path, template):
    config = filled_in(ROOT / "configs" / template, arm, tmp_path)
    assert observed_images(config) == {"observation.images.front": (128, 128, 3),
                                       "observation.images.wrist": (128, 128, 3)}
    assert limp(arm)


def test_rois_on_the_arms_cameras_make_a_config_the_env_accepts(arm, config):
    original = json.loads(config.read_text())
    screen = io.StringIO()
    code = main(["--config", str(config), "--roi", "front=40,100,400,400",
                 "--roi", "wrist=0,0,480,640", "--write", str(config), "--resize", "64", "96"],
                stdout=screen)
    assert code == 0, screen.getvalue()
    assert limp(arm)  # connected for the pictures only
    cfg = load_env_config(config)
    assert cfg.wrapper.crop_params_dict == {"observation.images.front": (40, 100, 400, 400),
                                            "observation.images.wrist": (0, 0, 480, 640)}
    written = json.loads(config.read_text())
    for data in (written, original):
        del data["wrapper"]["crop_params_dict"], data["wrapper"]["resize_size"]
    assert written == original
    assert observed_images(config) == {"observation.images.front": (64, 96, 3),
                                       "observation.images.wrist": (64, 96, 3)}

    before = config.read_text()  # the frames are 480 x 640: this one reaches below
    assert main(["--config", str(config), "--roi", "front=100,0,400,10", "--write",
                 str(config)], stdout=io.StringIO()) == 2
    assert config.read_text() == before
    assert limp(arm)
