"""Record demonstrations into a LeRobot v3.0 dataset, or replay a recorded episode.

    python -m hiljax.record --config configs/env_record_sim.json [key=value ...] [--resume]
    python -m hiljax.record --config configs/env_record_sim.json mode=replay episode=3
    python -m hiljax.record --config my_env.json mode=record dataset_root=datasets/pick_cube \
        wrapper.ee_action_space_params.control_mode=leader        # a real arm and its leader

The env config's `mode` picks what happens (LeRobot's gym_manipulator does the same):

record  A person drives the env through the intervention wrapper - a leader arm (space takes
        over), a gamepad (RB held), the keyboard (i), or the simulator's scripted operator; the
        policy's place is taken by a neutral action (no move, gripper stays). Each step becomes
        a frame: the observation BEFORE the step, the action executed (the person's, in the
        policy's EE action space), `next.reward`, `next.done` and the complementary info
        (`is_intervention`: the person's steps). Success / failure end an episode (on a real
        arm only the person's keys do: s / f, gamepad Y / A), rerecord discards it and records
        the scene again. After a success the env keeps running for
        `number_of_steps_after_success` steps, each stored as a success frame (reward 1,
        done) - extra positives for a reward classifier. Episodes go to `dataset_root`.
replay  Plays episode `episode`'s actions back on the env (no person) and reports the rewards
        seen against the recorded ones. A simulator is reset with the seed it was recorded with.

Scene seeds: episode k is recorded after `env.reset(seed=robot.seed + k)`, so a replay on the
simulator starts from the same cube position; a real arm moves to its reset pose and the person
puts the scene back during `wrapper.reset_time_s`. A real arm is left limp when recording ends,
fails or is interrupted (Ctrl-C: the episode being recorded is dropped, the saved ones stay).
numpy only: no JAX is imported here.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np

from hiljax.datasets import (
    ACTION,
    DONE,
    REWARD,
    TRUNCATED,
    DatasetError,
    DatasetWriter,
    read_dataset,
)
from hiljax.envs.configs import HILSerlRobotEnvConfig, without_interventions
from hiljax.transition import STEP_FIELDS, complementary_info, step_field

log = logging.getLogger(__name__)

# One scalar column per transition field (the action's width comes from the env).
STEP_FEATURES = {
    f.dataset_key: {"dtype": "bool" if f.is_flag else "float32", "shape": [1],
                    "names": [f.info_key] if f.info_key else None}
    for f in STEP_FIELDS if not f.per_action
}


def dataset_features(env) -> dict[str, dict]:
    """The dataset's features from the env's observation and action spaces."""
    features = {}
    for key, space in env.observation_space.spaces.items():
        if key.startswith("observation.images."):
            features[key] = {"dtype": "image", "shape": list(space.shape),
                             "names": ["height", "width", "channels"]}
        else:
            features[key] = {"dtype": "float32", "shape": list(space.shape), "names": None}
    features[ACTION] = {"dtype": "float32", "shape": list(env.action_space.shape), "names": None}
    return {**features, **STEP_FEATURES}


def neutral_action(env, use_gripper: bool) -> np.ndarray:
    """No motion; with a gripper, command 1.0 (stay)."""
    action = np.zeros(env.action_space.shape, np.float32)
    if use_gripper:
        action[-1] = 1.0
    return action


def dataset_root(cfg: HILSerlRobotEnvConfig) -> Path:
    if cfg.dataset_root:
        return Path(cfg.dataset_root)
    if cfg.repo_id:
        return Path("datasets") / cfg.repo_id
    raise DatasetError("set dataset_root (a directory) or repo_id to record or replay")


def scene_seed(cfg: HILSerlRobotEnvConfig, episode: int) -> int:
    return int(cfg.robot.seed) + episode


# ------------------------------------------------------------------------------ record
@dataclasses.dataclass
class EpisodeOutcome:
    frames: int
    success: bool
    rerecord: bool
    quit: bool


class Recorder:
    """Drives `env` with a neutral action (the person acts through the intervention wrapper)
    and writes each step to `writer`."""

    def __init__(self, cfg: HILSerlRobotEnvConfig, env, writer: DatasetWriter):
        self.cfg, self.env, self.writer = cfg, env, writer
        self.neutral = neutral_action(env, cfg.wrapper.use_gripper)
        self.task = cfg.task or cfg.name

    def record(self, num_episodes: int) -> int:
        """Record until the dataset holds `num_episodes` episodes (or the person quits)."""
        while self.writer.num_episodes < num_episodes:
            episode = self.writer.num_episodes
            outcome = self.record_episode(scene_seed(self.cfg, episode))
            if outcome.rerecord:
                log.info("episode %d discarded (rerecord); recording it again", episode)
            else:
                self.writer.save_episode()
                log.info("episode %d: %d frames, %s", episode, outcome.frames,
                         "success" if outcome.success else "no success")
            if outcome.quit:
                log.info("the person asked to quit")
                break
        return self.writer.num_episodes

    def record_episode(self, seed: int) -> EpisodeOutcome:
        observation, _ = self.env.reset(seed=seed)
        frames = 0
        while True:
            next_observation, reward, terminated, truncated, info = self.env.step(self.neutral)
            if info.get("rerecord_episode"):
                self.writer.clear_episode_buffer()
                return EpisodeOutcome(frames, False, True, bool(info.get("quit")))
            success = reward >= 1.0 or bool(info.get("next.success"))
            self._add(observation, info, reward, terminated, truncated)
            frames += 1
            observation = next_observation
            if success and not truncated:
                frames += self._after_success(observation)
            if terminated or truncated or success:
                return EpisodeOutcome(frames, success, False, bool(info.get("quit")))

    def _after_success(self, observation) -> int:
        """`number_of_steps_after_success` more frames, each a success (reward 1, done)."""
        for extra in range(self.cfg.number_of_steps_after_success):
            next_observation, _, _, truncated, info = self.env.step(self.neutral)
            self._add(observation, info, 1.0, True, False)
            observation = next_observation
            if truncated:
                return extra + 1
        return self.cfg.number_of_steps_after_success

    def _add(self, observation, info, reward, terminated, truncated) -> None:
        action = np.asarray(info.get("action_intervention", self.neutral), np.float32)
        extra = {}
        for name, value in complementary_info(info).items():
            field = step_field(name)
            extra[field.dataset_key] = np.asarray(value).astype(field.dtype)[()]
        self.writer.add_frame({
            **observation,
            ACTION: action,
            REWARD: np.float32(reward),
            DONE: bool(terminated or truncated),  # LeRobot's next.done: any episode end
            TRUNCATED: bool(truncated and not terminated),
            **extra,
        }, task=self.task)


def open_env(cfg: HILSerlRobotEnvConfig):
    """make_robot_env; a real arm that connected is left limp again when the rest of the stack
    cannot be built (no gamepad, a leader on the wrong port), instead of holding its pose."""
    from hiljax.envs.factory import make_robot, make_robot_env

    if not cfg.robot.is_real:
        return make_robot_env(cfg)
    robot = make_robot(cfg.robot, cfg.fps)
    try:
        return make_robot_env(cfg, robot=robot)
    except BaseException:
        robot.disconnect()  # torque off (robot.disable_torque_on_disconnect)
        raise


def check_target(root: Path, resume: bool) -> None:
    """Refuse a dataset directory before anything connects (a real arm would move to its
    reset pose first)."""
    if resume:
        read_dataset(root)
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root} already exists and is not empty; choose a new directory "
                           "or pass --resume to add episodes to it")


def record(cfg: HILSerlRobotEnvConfig, env=None, *, resume: bool = False) -> Path:
    """Record `cfg.num_episodes` episodes into `dataset_root(cfg)`; returns the dataset root."""
    root = dataset_root(cfg)
    check_target(root, resume)
    env = env if env is not None else open_env(cfg)
    try:
        if resume:
            writer = DatasetWriter.resume(root)
        else:
            writer = DatasetWriter.create(root, fps=cfg.fps, features=dataset_features(env),
                                          robot_type=cfg.robot.type, use_videos=cfg.video)
        with writer:
            count = Recorder(cfg, env, writer).record(cfg.num_episodes)
    finally:
        env.close()
    if cfg.push_to_hub:
        log.warning("push_to_hub is set, but hiljax never uploads; to publish: "
                    "huggingface-cli upload --repo-type dataset %s %s", cfg.repo_id or "<repo>",
                    root)
    log.info("dataset %s holds %d episodes", root, count)
    return root


# ------------------------------------------------------------------------------ replay
def replay(cfg: HILSerlRobotEnvConfig, env=None) -> dict:
    """Play episode `cfg.episode` of the dataset back; returns recorded vs replayed rewards."""
    dataset = read_dataset(dataset_root(cfg))
    bounds = {e: (start, end) for e, start, end in dataset.episode_bounds()}
    if cfg.episode not in bounds:
        raise DatasetError(f"{dataset.root} has no episode {cfg.episode} "
                           f"(episodes {min(bounds)}..{max(bounds)})")
    start, end = bounds[cfg.episode]
    actions = dataset.column(ACTION)[start:end]
    env = env if env is not None else open_env(without_interventions(cfg))
    rewards = []
    try:
        env.reset(seed=scene_seed(cfg, cfg.episode))
        for action in actions:
            _, reward, terminated, truncated, _ = env.step(action)
            rewards.append(float(reward))
            if terminated or truncated:
                break
    finally:
        env.close()
    recorded = dataset.column(REWARD)[start:end].astype(float).tolist()
    log.info("replayed episode %d: %d of %d steps, reward sum %.2f (recorded %.2f)",
             cfg.episode, len(rewards), len(actions), sum(rewards), sum(recorded))
    return {"episode": cfg.episode, "steps": len(rewards), "rewards": rewards,
            "recorded_rewards": recorded}


# ------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    from hiljax.config import ConfigError
    from hiljax.envs.configs import load_env_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="env config JSON (HILSerlRobotEnvConfig)")
    parser.add_argument("--resume", action="store_true",
                        help="append episodes to an existing dataset")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = load_env_config(args.config, overrides)
        if cfg.mode is None:
            raise ConfigError("mode must be 'record' or 'replay' for hiljax.record")
    except (ConfigError, OSError) as error:
        parser.error(str(error))
    return _run(cfg, args.resume)


def _run(cfg: HILSerlRobotEnvConfig, resume: bool) -> int:
    """Exit 0 done; 1 a dataset, arm, camera or input-device failure; 130 Ctrl-C."""
    from hiljax.control import DeviceNotFoundError
    from hiljax.hardware.cameras import CameraError
    from hiljax.hardware.motors import CalibrationError

    try:
        if cfg.mode == "replay":
            replay(cfg)
        else:
            record(cfg, resume=resume)
    except DatasetError as error:
        log.error("%s", error)
        return 1
    except (CalibrationError, CameraError, DeviceNotFoundError, OSError) as error:
        # OSError: a servo bus (MotorBusError) or a port that is gone.
        log.error("%s%s", error, " (the arm is left limp)" if cfg.robot.is_real else "")
        return 1
    except KeyboardInterrupt:
        log.error("interrupted%s", "" if cfg.mode == "replay" else
                  ": the episode being recorded is dropped, the saved ones stay")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
