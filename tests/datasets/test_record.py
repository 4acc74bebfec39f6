"""Record on the MuJoCo sim with the scripted operator, reload, replay; rerecord; the CLI."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hiljax.control import RERECORD
from hiljax.datasets import read_dataset
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot, make_robot_env
from hiljax.envs.sim.operator import SimOperator
from hiljax.record import record, replay

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "env_record_sim.json"
AFTER_SUCCESS = 3


def record_config(root, **changes):
    cfg = load_env_config(CONFIG, [f"dataset_root={root}", "num_episodes=3",
                                   f"number_of_steps_after_success={AFTER_SUCCESS}"])
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec") / "sim"
    cfg = record_config(root)
    record(cfg)
    return cfg, read_dataset(root)


def test_recording_holds_demonstrations_and_success_frames(recorded):
    _, dataset = recorded
    assert dataset.num_episodes == 3
    assert set(dataset.image_keys) == {"observation.images.front", "observation.images.wrist"}
    assert dataset.column("observation.images.front").shape[1:] == (128, 128, 3)
    rewards, dones = dataset.column("next.reward"), dataset.column("next.done")
    assert dataset.column("complementary_info.is_intervention").all()  # every step a demo
    for _, start, end in dataset.episode_bounds():
        # the success step plus the extra frames after it: reward 1 and done
        assert rewards[end - 1 - AFTER_SUCCESS:end].tolist() == [1.0] * (AFTER_SUCCESS + 1)
        assert dones[end - 1 - AFTER_SUCCESS:end].all()
        assert not rewards[start:end - 1 - AFTER_SUCCESS].any()
    # the observation moves on between frames (s_t is the observation before step t)
    state = dataset.column("observation.state")
    assert not np.allclose(state[0], state[1])


def test_replay_reproduces_the_recorded_episode(recorded):
    cfg, dataset = recorded
    for episode, start, end in dataset.episode_bounds():
        result = replay(dataclasses.replace(cfg, mode="replay", episode=episode))
        success_step = end - start - AFTER_SUCCESS  # the sim ends the episode at success
        assert result["steps"] == success_step
        assert result["rewards"] == result["recorded_rewards"][:success_step]


class RerecordFirstEpisode(SimOperator):
    """The person presses "rerecord" at step 3 of the first episode."""

    def get_episode_end_status(self):
        status = super().get_episode_end_status()
        return RERECORD if (self.episode == 0 and self.step == 3) else status


def test_rerecord_discards_the_episode_and_records_the_scene_again(tmp_path):
    cfg = record_config(tmp_path / "ds", num_episodes=1, video=False)
    robot = make_robot(cfg.robot, cfg.fps)
    params = cfg.wrapper.ee_action_space_params
    operator = RerecordFirstEpisode(robot, cfg.wrapper.sim_operator, bounds=params.bounds,
                                    step_sizes=(params.x_step_size, params.y_step_size,
                                                params.z_step_size))
    record(cfg, make_robot_env(cfg, robot=robot, controller=operator))
    dataset = read_dataset(tmp_path / "ds")
    assert dataset.num_episodes == 1 and operator.episode == 1  # two attempts, one kept
    assert dataset.column("next.reward")[-1] == 1.0


def test_cli_records_and_replays(tmp_path):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    base = [sys.executable, "-m", "hiljax.record", "--config", str(CONFIG),
            f"dataset_root={tmp_path / 'ds'}", "num_episodes=1"]
    done = subprocess.run(base, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "holds 1 episodes" in done.stderr
    done = subprocess.run(base + ["mode=replay", "episode=0"], check=False, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "replayed episode 0" in done.stderr
    again = subprocess.run(base, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 1 and "not empty" in again.stderr
    bad = subprocess.run(base + ["mode=teleport"], check=False, capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode == 2 and "mode must be" in bad.stderr
