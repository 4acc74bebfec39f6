"""Recording on a real arm: the so101 template's follower and leader are virtual SO-100s on
pseudo-terminals behind the real driver, the front camera plays a video file. A person (a
wrapper that acts just before chosen steps, so nothing depends on timing) takes over with the
leader, the keyboard or a gamepad and ends episodes with the success / failure keys; the
dataset must hold what a recording on the simulator holds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from hiljax.control import GamepadController
from hiljax.datasets import read_dataset
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.virtual import VirtualSO100
from hiljax.record import main, record
from tests.control.fakes import FakeJoystick

pygame = pytest.importorskip("pygame")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "configs" / "env_real_so101_template.json"
RESET_POSE = json.loads(TEMPLATE.read_text())["wrapper"]["fixed_reset_joint_positions"]
AFTER_SUCCESS = 2
NEUTRAL = [0.0, 0.0, 0.0, 1.0]  # no move, gripper stays: the policy's place while recording
IMAGE = (32, 32, 3)  # the front camera, cropped to 48 x 48 and resized


class Person(gym.Wrapper):
    """Does `script[(episode, step)]` (callables) just before that step, counted from 0."""

    def __init__(self, env, script: dict):
        super().__init__(env)
        self.script, self.episode, self.t = script, -1, 0

    def reset(self, **kwargs):
        self.episode, self.t = self.episode + 1, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        for act in self.script.get((self.episode, self.t), ()):
            act()
        self.t += 1
        return self.env.step(action)


def key(name: str, down: bool = True, up: bool = True):
    """A key tap (or only its press / release), posted to pygame's queue when called."""
    def post():
        code = pygame.key.key_code(name)
        for kind, wanted in ((pygame.KEYDOWN, down), (pygame.KEYUP, up)):
            if wanted:
                pygame.event.post(pygame.event.Event(kind, key=code))
    return post


def video(path: Path, width: int = 64, height: int = 48, frames: int = 10) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    for index in range(frames):
        writer.write(np.full((height, width, 3), 20 * index, np.uint8))
    writer.release()
    return path


def virtual_arm(tmp_path, arm_id: str) -> VirtualSO100:
    arm = VirtualSO100(calibrated=True, pose=RESET_POSE)  # no long reset move to wait for
    arm.start()
    arm.save_calibration(tmp_path / f"{arm_id}.json")
    return arm


@pytest.fixture
def follower(tmp_path):
    arm = virtual_arm(tmp_path, "my_follower")  # the template's ids
    yield arm
    arm.stop()


@pytest.fixture
def leader(tmp_path):
    arm = virtual_arm(tmp_path, "my_leader")
    yield arm
    arm.stop()


def overrides(tmp_path, follower: VirtualSO100, *extra: str) -> list[str]:
    """The template as a person fills it in, with a video file for the front camera."""
    camera = {"type": "file", "index_or_path": str(video(tmp_path / "front.avi")),
              "width": 64, "height": 48, "fps": 30, "warmup_s": 0}
    return [f"robot.port={follower.port}", f"robot.calibration_dir={tmp_path}",
            f"robot.cameras={json.dumps({'front': camera})}",
            'wrapper.crop_params_dict={"observation.images.front": [0, 8, 48, 48]}',
            "wrapper.resize_size=[32, 32]", "wrapper.reset_time_s=0",
            "wrapper.control_time_s=3.0", "mode=record", f"dataset_root={tmp_path / 'ds'}",
            f"number_of_steps_after_success={AFTER_SUCCESS}", *extra]


def leader_block(tmp_path, leader: VirtualSO100) -> str:
    return "teleop=" + json.dumps({"type": "so101_leader", "port": leader.port,
                                   "id": "my_leader", "calibration_dir": str(tmp_path)})


def limp(arm: VirtualSO100) -> bool:
    return all(arm.register(motor, "Torque_Enable") == 0 for motor in range(1, 7))


def episodes(dataset, key: str) -> list[list]:
    column = dataset.column(key)
    return [column[start:end].tolist() for _, start, end in dataset.episode_bounds()]


def test_a_person_records_with_the_leader(tmp_path, follower, leader):
    cfg = load_env_config(TEMPLATE, overrides(
        tmp_path, follower, leader_block(tmp_path, leader), "num_episodes=2",
        "wrapper.ee_action_space_params.control_mode=leader"))
    script = {
        (0, 3): [key("space")],  # takes over: the geared leader goes limp
        (0, 5): [lambda: leader.move_by_hand("shoulder_pan", 15.0)],  # swings it sideways
        (0, 8): [key("s")],  # success
        (1, 3): [key("f")],  # still holding the leader (the toggle outlives an episode): failure
    }
    record(cfg, Person(make_robot_env(cfg), script))
    assert limp(follower) and limp(leader)

    dataset = read_dataset(tmp_path / "ds")
    assert dataset.num_episodes == 2 and dataset.num_frames == 15  # 9 + 2 after success, 4
    assert episodes(dataset, "complementary_info.is_intervention") == [
        [False] * 3 + [True] * 8, [True] * 4]
    assert episodes(dataset, "next.reward") == [[0.0] * 8 + [1.0] * 3, [0.0] * 4]
    assert episodes(dataset, "next.done") == [[False] * 8 + [True] * 3, [False] * 3 + [True]]

    actions = dataset.column("action")
    assert actions.shape == (15, 4) and actions.dtype == np.float32
    assert actions[:3].tolist() == [NEUTRAL] * 3  # before the take-over
    assert np.abs(actions[:, :3]).max() <= 1.0 and set(actions[:, 3]) <= {0.0, 1.0, 2.0}
    assert np.abs(actions[5:8, 1]).max() > 0.5  # the leader's pan, as an EE step along y
    assert dataset.info["features"]["observation.images.front"]["dtype"] == "video"
    assert dataset.column("observation.images.front").shape == (15, *IMAGE)
    assert dataset.image_keys == ("observation.images.front",)


def gamepad_person(joystick: FakeJoystick) -> dict:
    """RB held (intervene) from step 2 with the left stick pushed for 3 steps, then Y."""
    return {(0, 2): [lambda: joystick.set([0.0, -1.0, 0.0, 0.0], {5})],
            (0, 5): [lambda: joystick.set([0.0] * 4, {5})],
            (0, 6): [lambda: joystick.set([0.0] * 4, {3, 5})]}


KEYBOARD_PERSON = {(0, 2): [key("i"), key("up", up=False)], (0, 5): [key("up", down=False)],
                   (0, 6): [key("s")]}


@pytest.mark.parametrize("device", ["keyboard", "gamepad"])
def test_keyboard_and_gamepad_record_on_a_real_arm(tmp_path, follower, device):
    cfg = load_env_config(TEMPLATE, overrides(
        tmp_path, follower, "num_episodes=1", "video=false",
        f"wrapper.ee_action_space_params.control_mode={device}"))
    if device == "keyboard":  # the config's device
        env, script = make_robot_env(cfg), KEYBOARD_PERSON
    else:  # no pad here: a fake one behind the real controller
        joystick = FakeJoystick("Logitech Dual Action", 4, 12)
        env = make_robot_env(cfg, controller=GamepadController(joystick=joystick))
        script = gamepad_person(joystick)
    record(cfg, Person(env, script))
    assert limp(follower)

    dataset = read_dataset(tmp_path / "ds")
    assert dataset.num_frames == 7 + AFTER_SUCCESS
    assert episodes(dataset, "complementary_info.is_intervention") == [[False] * 2 + [True] * 7]
    assert episodes(dataset, "next.reward") == [[0.0] * 6 + [1.0] * 3]
    actions = dataset.column("action")
    assert np.abs(actions[2:5, 0]).min() > 0.9 and not actions[5:, :3].any()  # x for 3 steps
    assert not actions[:, 1:3].any()
    assert dataset.info["features"]["observation.images.front"]["dtype"] == "image"
    assert dataset.column("observation.images.front").shape == (9, *IMAGE)


def test_the_cli_records_and_replays_on_a_real_arm(tmp_path, follower):
    """Nobody intervenes: the episode runs to its time limit (the keyboard window is there)."""
    config = tmp_path / "env.json"
    config.write_text(TEMPLATE.read_text())
    args = ["--config", str(config), *overrides(tmp_path, follower, "num_episodes=1"),
            "wrapper.control_time_s=0.5", "wrapper.ee_action_space_params.control_mode=keyboard"]
    assert main(args) == 0
    assert limp(follower)
    dataset = read_dataset(tmp_path / "ds")
    assert dataset.num_frames == 5 and dataset.column("next.truncated")[-1]
    assert dataset.column("action").tolist() == [NEUTRAL] * 5
    assert main([*args, "mode=replay", "episode=0"]) == 0
    assert limp(follower)
    assert main(args) == 1  # the dataset is there: refused before the arm moves


@pytest.mark.parametrize("device, message", [
    ("control_mode=gamepad", "gamepad"),
    ("control_mode=leader", "nothing"),  # the leader's port
])
def test_a_missing_device_is_named_and_the_arm_left_limp(tmp_path, follower, device, message,
                                                         caplog):
    teleop = "teleop=" + json.dumps({"type": "so101_leader", "port": str(tmp_path / "nothing"),
                                     "id": "my_leader", "calibration_dir": str(tmp_path)})
    args = ["--config", str(TEMPLATE), *overrides(tmp_path, follower, teleop),
            f"wrapper.ee_action_space_params.{device}"]
    with caplog.at_level(logging.ERROR):
        assert main(args) == 1
    assert message in caplog.text.lower() and "left limp" in caplog.text
    assert limp(follower)
    assert not (tmp_path / "ds").exists()
