"""The actor: run the policy on an env, record episodes (human interventions included), send them.

The env speaks LeRobot's observation keys (`observation.state`, `observation.images.<cam>` as
(H, W, 3) uint8). When a human takes over, the env's intervention wrapper sets
`info["is_intervention"]` and `info["action_intervention"]`: that action is the one stored. An
episode travels as one payload (each frame once) plus one payload of episode statistics with the
reference's names. New parameters are applied at episode boundaries (or immediately); before
any arrive, and during the warm-up, actions are random.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import jax
import numpy as np

from hiljax import wire
from hiljax.agents.sac import SACAgent, sample_actions
from hiljax.config import ActorConfig
from hiljax.learner import backbone_digest
from transport.errors import PayloadError, TransportFull
from transport.interface import ActorTransport

log = logging.getLogger(__name__)


@dataclass
class EpisodeRecorder:
    """Frames (T + 1 observations) and per-step fields of one episode."""

    frames: dict[str, list] = field(default_factory=dict)
    steps: dict[str, list] = field(default_factory=lambda: {n: [] for n in wire.STEP_FIELDS})

    def start(self, observation: dict) -> None:
        self.frames = {k: [np.asarray(v)] for k, v in observation.items()}
        self.steps = {n: [] for n in wire.STEP_FIELDS}

    def record(self, action, reward, next_observation, terminated, truncated, info) -> None:
        for key, value in next_observation.items():
            self.frames[key].append(np.asarray(value))
        self.steps["actions"].append(np.asarray(action, np.float32))
        self.steps["rewards"].append(float(reward))
        self.steps["dones"].append(bool(terminated))
        self.steps["truncateds"].append(bool(truncated))
        self.steps["is_intervention"].append(bool(info.get("is_intervention", False)))
        self.steps["discrete_penalty"].append(float(info.get("discrete_penalty", 0.0)))

    def __len__(self) -> int:
        return len(self.steps["rewards"])

    def payload(self, sender: str, seq: int) -> bytes:
        frames = {k: np.stack(v) for k, v in self.frames.items()}
        steps = {n: np.asarray(v) for n, v in self.steps.items()}
        return wire.encode_episode(frames, steps, sender=sender, seq=seq)

    def take_chunk(self, sender: str, seq: int) -> bytes:
        """The steps so far as one payload; the next chunk starts from the last frame (the
        learner's buffer sees the continuation and stores that frame once)."""
        payload = self.payload(sender, seq)
        self.start({k: v[-1] for k, v in self.frames.items()})
        return payload


def episode_statistics(rewards, interventions, policy_seconds, interaction_step) -> dict:
    """The reference's per-episode statistics (LeRobot's key names)."""
    stats = {
        "Episodic reward": float(np.sum(rewards)),
        "Interaction step": int(interaction_step),
        "Episode intervention": int(np.any(interventions)),
        "Intervention rate": float(np.mean(interventions)) if len(interventions) else 0.0,
    }
    if policy_seconds:
        hz = 1.0 / np.maximum(np.asarray(policy_seconds), 1e-9)
        stats["Policy frequency [Hz]"] = float(np.mean(hz))
        stats["Policy frequency 90th-p [Hz]"] = float(np.quantile(hz, 0.9))
    return stats


class Actor:
    def __init__(self, config: ActorConfig, env, transport: ActorTransport):
        self.config, self.env, self.transport = config, env, transport
        self.policy_config = config.policy
        self.rng = np.random.default_rng(config.seed)
        self.key = jax.random.key(config.seed)
        self.version, self.actor_params, self._pending = -1, None, None
        self.interaction_step = 0
        self.episodes_sent = self.episodes_dropped = 0
        self._seq = 0
        self.backbone = self._local_frozen_backbone()
        self._backbone_digest = backbone_digest(self.backbone) if self.backbone else None
        self.warmup_steps = (config.warmup_steps if config.warmup_steps is not None
                             else self.policy_config.online_step_before_learning)

    def _local_frozen_backbone(self) -> dict:
        """The frozen backbone, rebuilt exactly as the learner built it (same config and seed)."""
        if not self.policy_config.image_keys or not self.policy_config.freeze_vision_encoder:
            return {}
        policy = self.policy_config
        return SACAgent.create(policy, jax.random.key(policy.seed)).frozen_backbone_parameters()

    # ------------------------------------------------------------------ parameters
    def poll_parameters(self) -> None:
        """Fetch the newest parameters; they take effect at the next `apply_parameters`."""
        latest = self.transport.latest_parameters()
        if latest is None or latest[0] <= max(self.version, self._pending_version):
            return
        try:
            parameters = wire.decode_parameters(latest[1])
        except PayloadError as error:
            log.error("ignoring a parameters payload that cannot be decoded: %s", error)
            return
        expected = parameters.meta.get("frozen_backbone_sha256")
        if expected and expected != self._backbone_digest:
            log.error("the learner's frozen backbone differs from this actor's (different seed or "
                      "weights file?): keeping the current policy")
            return
        self._pending = parameters
        if self.config.update_parameters_at == "immediately":
            self.apply_parameters()

    @property
    def _pending_version(self) -> int:
        return self._pending.version if self._pending is not None else -1

    def apply_parameters(self) -> None:
        if self._pending is None:
            return
        self.actor_params = jax.tree.map(jax.numpy.asarray, self._pending.trees["actor"])
        if self.version < 0:
            log.info("received the learner's parameters (version %d)", self._pending.version)
        self.version, self._pending = self._pending.version, None

    # ------------------------------------------------------------------ acting
    def act(self, observation: dict) -> np.ndarray:
        if self.actor_params is None or self.interaction_step < self.warmup_steps:
            return self.env.action_space.sample().astype(np.float32)
        self.key, key = jax.random.split(self.key)
        batch = {k: np.asarray(v)[None] for k, v in observation.items()}
        action = sample_actions(self.policy_config, self.actor_params, self.backbone, batch, key,
                                deterministic=self.config.deterministic)
        return np.asarray(action[0], np.float32)

    def run_episode(self) -> dict:
        observation, _ = self.env.reset()
        recorder = EpisodeRecorder()
        recorder.start(observation)
        policy_seconds, rewards, interventions = [], [], []
        done = False
        while not done:
            started = time.perf_counter()
            action = self.act(observation)
            policy_seconds.append(time.perf_counter() - started)
            observation, reward, terminated, truncated, info = self.env.step(action)
            if info.get("is_intervention", False):
                action = np.asarray(info["action_intervention"], np.float32)
            recorder.record(action, reward, observation, terminated, truncated, info)
            rewards.append(float(reward))
            interventions.append(bool(info.get("is_intervention", False)))
            self.interaction_step += 1
            done = terminated or truncated
            if not done and self.config.send_every_steps and \
                    len(recorder) >= self.config.send_every_steps:
                self._send_transitions(recorder)
            self.poll_parameters()
            self._keep_rate(started)
        self._send_transitions(recorder)
        stats = episode_statistics(rewards, interventions, policy_seconds, self.interaction_step)
        self._send_statistics(stats)
        self.apply_parameters()
        return stats

    def _keep_rate(self, started: float) -> None:
        if self.config.fps:
            time.sleep(max(0.0, 1.0 / self.config.fps - (time.perf_counter() - started)))

    def _send_transitions(self, recorder: EpisodeRecorder) -> None:
        self._seq += 1
        payload = recorder.take_chunk(self.transport.client_id, self._seq)
        try:
            self.transport.send_transitions(payload, timeout=0.0)
            self.episodes_sent += 1
        except TransportFull:
            # The bound keeps memory flat while the learner is away; say so, keep acting.
            self.episodes_dropped += 1
            log.warning("learner unreachable and the send queue is full: transitions dropped "
                        "(%d payloads so far)", self.episodes_dropped)

    def _send_statistics(self, stats: dict) -> None:
        try:
            self.transport.send_interactions(wire.encode_interactions(stats), timeout=0.0)
        except TransportFull:
            log.warning("send queue full: episode statistics dropped")

    def run(self, max_episodes: int | None = None, stop=None) -> None:
        episodes = 0
        while (max_episodes is None or episodes < max_episodes) and not (stop and stop.is_set()):
            stats = self.run_episode()
            episodes += 1
            log.info("episode %d: reward %.2f, %d steps, interventions %.0f%%, params v%d",
                     episodes, stats["Episodic reward"], self.interaction_step,
                     100 * stats["Intervention rate"], self.version)


# ---------------------------------------------------------------------------------------------
# Command line.


def make_env(env_config):
    """The env stack, with the reward classifier of `reward_classifier_pretrained_path` loaded
    here (the env never imports JAX models; it takes the classifier as a callable)."""
    from hiljax.envs.factory import make_robot_env

    classifier = None
    if env_config.reward_classifier_pretrained_path:
        from hiljax.classifier import load_classifier

        classifier = load_classifier(env_config.reward_classifier_pretrained_path)
        # The env config's threshold decides (as in LeRobot); the one saved with the
        # classifier (e.g. picked in the notebook) is only reported.
        log.info("reward classifier %s: success when P >= %.2f (reward_classifier_threshold; "
                 "saved with the classifier: %.2f)", env_config.reward_classifier_pretrained_path,
                 env_config.reward_classifier_threshold, classifier.threshold)
    return make_robot_env(env_config, reward_classifier=classifier)


def main(argv: list[str] | None = None) -> int:
    """python -m hiljax.actor --config TRAIN_CONFIG [--transport grpc|zmq] [overrides]"""
    import argparse
    import signal
    import threading

    from hiljax.train_config import check_env_matches_policy, load_train_config
    from transport.factory import make_actor_transport

    parser = argparse.ArgumentParser(description="Run the policy on an env and feed a learner.")
    parser.add_argument("--config", help="TrainConfig JSON (default: the simulator run)")
    parser.add_argument("--transport", choices=("grpc", "zmq"))
    parser.add_argument("--learner-address", help="host:port (default: from the config)")
    parser.add_argument("--actor-index", type=int, default=0, help="seed offset and name")
    parser.add_argument("--max-episodes", type=int)
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.transport:
        overrides.append(f"transport={args.transport}")
    train = load_train_config(args.config, overrides)
    config = train.actor_config(args.actor_index, args.learner_address)

    env = make_env(train.env_config(args.actor_index))
    check_env_matches_policy(env.observation_space, env.action_space, config.policy)
    transport = make_actor_transport(config.transport, config.address,
                                     client_id=f"actor-{args.actor_index}-{os.getpid()}",
                                     max_queue_bytes=int(config.max_queue_mb * 2**20))
    log.info("actor %d: waiting for the learner at %s (%s)", args.actor_index, config.address,
             config.transport)
    if not transport.ready(timeout=args.ready_timeout):
        log.error("no learner answered at %s within %.0f s", config.address, args.ready_timeout)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    actor = Actor(config, env, transport)
    try:
        actor.run(args.max_episodes, stop)
    finally:
        if not transport.flush(timeout=10.0):
            log.warning("some episodes were not acknowledged by the learner before exit")
        transport.close()
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
