"""The reward classifier learns success from the MuJoCo simulator's real frames (two 128x128
cameras, random ResNet10 backbone), and then ends simulated episodes on its own.

Frames come from scripted demonstrations (control_mode "sim_operator", every episode a demo):
labels are the simulator's task reward (1 once the cube is lifted), and each episode continues
a few steps after success so positives are not one frame per episode.
"""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from hiljax.classifier import ClassifierData, load_classifier_config, train_classifier
from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env

ROOT = Path(__file__).resolve().parents[1]
CAMERAS = ("observation.images.front", "observation.images.wrist")
NUM_EPISODES = 20
STEPS_AFTER_SUCCESS = 3
MAX_EPISODE_STEPS = 40


def sim_env_config(*overrides: str):
    return load_env_config(ROOT / "configs" / "env_sim.json", [
        "wrapper.ee_action_space_params.control_mode=sim_operator",
        "wrapper.sim_operator.demo_episodes=100000",
        'robot.cameras=["front","wrist"]', *overrides])


def collect_demonstrations(env, num_episodes: int, first_seed: int = 0) -> ClassifierData:
    """Every frame of scripted demos, labelled by the simulator's reward (1 = success)."""
    frames = {key: [] for key in CAMERAS}
    labels, episodes = [], []
    action = np.zeros(4, np.float32)  # ignored: the operator demonstrates every step
    for episode in range(num_episodes):
        env.reset(seed=first_seed + episode)
        after_success = 0
        for _ in range(MAX_EPISODE_STEPS):
            observation, reward, terminated, truncated, _ = env.step(action)
            for key in CAMERAS:
                frames[key].append(observation[key])
            labels.append(int(reward >= 1.0))
            episodes.append(episode)
            after_success += int(terminated)
            if after_success > STEPS_AFTER_SUCCESS or truncated:
                break
    return ClassifierData({k: np.stack(v) for k, v in frames.items()}, np.array(labels),
                          np.array(episodes))


@pytest.fixture(scope="module")
def demonstrations():
    env = make_robot_env(sim_env_config())
    try:
        return collect_demonstrations(env, NUM_EPISODES)
    finally:
        env.close()


@pytest.fixture(scope="module")
def trained(demonstrations):
    # The sim config with smaller layers and fewer steps: same model, a faster test.
    config = load_classifier_config(ROOT / "configs" / "classifier_sim.json",
                                    ["latent_dim=64", "hidden_dim=64", "max_steps=400"])
    return train_classifier(demonstrations, config, progress=False)


def test_the_demonstrations_hold_both_classes_in_every_episode(demonstrations):
    assert demonstrations.images[CAMERAS[0]].shape[1:] == (128, 128, 3)
    for episode in range(NUM_EPISODES):
        labels = demonstrations.labels[demonstrations.episode_index == episode]
        assert labels[0] == 0 and labels[-1] == 1, (episode, labels)


def test_it_learns_success_from_sim_frames(trained):
    classifier, history = trained
    best = classifier.metrics["best_validation"]
    assert classifier.metrics["validation"]["episodes"] >= 3
    assert best["accuracy"] >= 0.9, history.validation


def test_it_ends_sim_episodes_on_its_own(trained):
    """No task reward from the simulator: only the classifier can end these demos."""
    classifier, _ = trained
    env = make_robot_env(sim_env_config("robot.task_reward=false"), reward_classifier=classifier)
    try:
        for seed in (100, 101, 102):  # episodes the classifier has never seen
            env.reset(seed=seed)
            for step in range(MAX_EPISODE_STEPS):
                _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
                if terminated or truncated:
                    break
            assert terminated and not truncated and reward == 1.0, (seed, step)
            assert info["reward_classifier_probability"] >= classifier.threshold
            assert env.unwrapped.robot.task_success(), "it fired before the cube was lifted"
    finally:
        env.close()


def test_the_actor_loads_a_saved_classifier_from_the_env_config(trained, tmp_path):
    """reward_classifier_pretrained_path -> hiljax.run.env.make_env loads it from disk and hands
    it to RewardWrapper; the sim's own reward is off, so the classifier ends the episode."""
    from hiljax.run.env import make_env

    classifier, _ = trained
    classifier.save(tmp_path / "classifier")
    env = make_env(sim_env_config("robot.task_reward=false", "reward_classifier_threshold=0.5",
                                  f"reward_classifier_pretrained_path={tmp_path / 'classifier'}"))
    try:
        env.reset(seed=200)
        for _ in range(MAX_EPISODE_STEPS):
            _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
            if terminated or truncated:
                break
        assert terminated and reward == 1.0 and info["reward_classifier_probability"] >= 0.5
    finally:
        env.close()
