"""The actor: run the policy on an env, record episodes (human interventions included), send them.

The env speaks LeRobot's observation keys (`observation.state`, `observation.images.<cam>` as
(H, W, 3) uint8). When a human takes over, the env's intervention wrapper sets
`info["is_intervention"]` and `info["action_intervention"]`: that action is the one stored. An
episode travels as one payload (each frame once) plus one payload of episode statistics with the
reference's names. New parameters are applied at episode boundaries (or immediately); before
any arrive, and during the warm-up, actions are random.

When the learner does not answer for `learner_timeout_s`, the robot stops between two steps (the
episode so far is kept and resent later), `on_learner_lost` applies (hold the pose, or close the
env so a real arm's torque goes as configured) and the actor waits until the learner is back. A
full send queue (a learner that cannot keep up) holds the actor too, instead of dropping data.
Episodes wait on the disk (`spool_dir`, transport.spool) until the learner acknowledges them, so
a killed actor loses nothing: the next one with the same index sends them first.

The frozen backbone is built first: `python -m hiljax.actor` reads a `pretrained_vision_weights`
file before it opens the env or the link. The learner publishes its backbone's digest; parameters
built on another backbone (another seed or weights file) stop the actor between two steps
(BackboneMismatch), and main closes the env as on any exit and returns 2, instead of acting at
random forever.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from hiljax import wire
from hiljax.config import ActorConfig, ConfigError
from hiljax.networks.backbone import frozen_backbone
from hiljax.policy import Policy, make_policy
from hiljax.transition import STEP_FIELD_NAMES, complementary_info
from transport.errors import PayloadError, TransportFull
from transport.interface import ActorTransport

log = logging.getLogger(__name__)
LEARNER_BACK_S = 2.0  # the learner answered this recently: it is back


@dataclass
class EpisodeRecorder:
    """Frames (T + 1 observations) and per-step fields of one episode."""

    frames: dict[str, list] = field(default_factory=dict)
    steps: dict[str, list] = field(default_factory=lambda: {n: [] for n in STEP_FIELD_NAMES})

    def start(self, observation: dict) -> None:
        self.frames = {k: [np.asarray(v)] for k, v in observation.items()}
        self.steps = {n: [] for n in STEP_FIELD_NAMES}

    def record(self, action, reward, next_observation, terminated, truncated, info) -> None:
        for key, value in next_observation.items():
            self.frames[key].append(np.asarray(value))
        values = {"actions": np.asarray(action, np.float32), "rewards": float(reward),
                  "dones": bool(terminated), "truncateds": bool(truncated),
                  **complementary_info(info)}
        for name, value in values.items():
            self.steps[name].append(value)

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


class BackboneMismatch(ConfigError):
    """The learner's frozen backbone is not this actor's: its parameters would act on features
    they were never trained on. Fatal (exit code 2): the two were started from different
    configs, and no amount of waiting mends that."""


class Actor:
    def __init__(self, config: ActorConfig, env, transport: ActorTransport, make_env=None,
                 stop=None, backbone: dict | None = None):
        """`make_env()` rebuilds the env after on_learner_lost="disconnect" closed it; `stop`
        (an Event) ends waits for the learner. `backbone`: the frozen backbone when the caller
        built it already (None: built here from the config)."""
        self.config, self.env, self.transport = config, env, transport
        self.make_env, self.stop = make_env, stop
        self.policy_config = config.policy
        self.version, self._pending = -1, None
        self.policy: Policy | None = None  # until the learner's first parameters arrive
        self.interaction_step = 0
        self.episodes_sent = self.episodes_dropped = 0
        self._seq = 0
        # Built from the config exactly as the learner builds it (seed or weights file); the
        # digest in each parameters payload proves both sides hold the same weights.
        self.backbone = frozen_backbone(self.policy_config) if backbone is None else backbone
        self._backbone_digest = wire.tree_digest(self.backbone) if self.backbone else None
        self.warmup_steps = (config.warmup_steps if config.warmup_steps is not None
                             else self.policy_config.online_step_before_learning)

    # ------------------------------------------------------------------ parameters
    def poll_parameters(self) -> None:
        """Fetch the newest parameters; they take effect at the next `apply_parameters`.
        BackboneMismatch when they were trained on another frozen backbone."""
        latest = self.transport.latest_parameters()
        if latest is None or latest[0] <= max(self.version, self._pending_version):
            return
        try:
            parameters = wire.decode_parameters(latest[1])
        except PayloadError as error:
            log.error("ignoring a parameters payload that cannot be decoded: %s", error)
            return
        self._check_backbone(parameters.meta.get("frozen_backbone_sha256"))
        self._pending = parameters
        if self.config.update_parameters_at == "immediately":
            self.apply_parameters()

    def _check_backbone(self, published: str | None) -> None:
        """Refuse parameters built on another backbone, and stop: acting randomly while refusing
        them (the old behaviour) fed the learner a run that could never learn."""
        if published and published != self._backbone_digest:
            own = self._backbone_digest[:12] if self._backbone_digest else "none"
            raise BackboneMismatch(
                f"the learner's frozen backbone (sha256 {published[:12]}...) is not this actor's "
                f"({own}): start both from the same policy (seed, vision_encoder_name, "
                f"pretrained_vision_weights, freeze_vision_encoder)")

    @property
    def _pending_version(self) -> int:
        return self._pending.version if self._pending is not None else -1

    def apply_parameters(self) -> None:
        if self._pending is None:
            return
        actor_params = self._pending.trees["actor"]
        if self.policy is None:
            self.policy = make_policy(self.policy_config, actor_params, self.backbone,
                                      seed=self.config.seed,
                                      deterministic=self.config.deterministic)
        else:
            self.policy.load(actor_params)
        if self.version < 0:
            log.info("received the learner's parameters (version %d)", self._pending.version)
        self.version, self._pending = self._pending.version, None

    # ------------------------------------------------------------------ acting
    def act(self, observation: dict) -> np.ndarray:
        if self.policy is None or self.interaction_step < self.warmup_steps:
            return self.env.action_space.sample().astype(np.float32)
        return self.policy(observation)

    def run_episode(self) -> dict:
        observation, _ = self.env.reset()
        recorder = EpisodeRecorder()
        recorder.start(observation)
        policy_seconds, rewards, interventions = [], [], []
        done = False
        while not done:
            if self.learner_lost():  # stop the robot mid-episode; what was recorded is kept
                break
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
        if len(recorder):
            self._send_transitions(recorder)
        stats = episode_statistics(rewards, interventions, policy_seconds, self.interaction_step)
        self._send_statistics(stats)
        if self.learner_lost():
            self.wait_for_learner()
        self.apply_parameters()
        return stats

    # ------------------------------------------------------------------ the learner's absence
    def learner_lost(self) -> bool:
        limit = self.config.learner_timeout_s
        return limit is not None and self.transport.seconds_since_contact() > limit

    def wait_for_learner(self) -> None:
        """The robot is still (between episodes); apply on_learner_lost and wait until the
        learner answers again (the transport reconnects and resends by itself)."""
        log.warning("no answer from the learner for %.0f s: the robot stops (%s) until it is "
                    "back; %d payloads wait to be resent", self.transport.seconds_since_contact(),
                    self.config.on_learner_lost, self.transport.pending())
        disconnect = self.config.on_learner_lost == "disconnect" and self.make_env is not None
        if disconnect:
            self.env.close()
        lost_at = time.monotonic()
        while not self._stopping() and not self._learner_answers():
            time.sleep(0.2)
        if self._stopping():
            if disconnect:
                self.env = None  # closed above: nothing left to close
            return
        if disconnect:
            self.env = self.make_env()
        log.info("the learner is back after %.0f s: acting again", time.monotonic() - lost_at)

    def _learner_answers(self) -> bool:
        """A fresh answer (a handshake or heartbeat reply) within the last couple of seconds."""
        self.transport.ready(timeout=1.0)
        return self.transport.seconds_since_contact() < LEARNER_BACK_S

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _keep_rate(self, started: float) -> None:
        if self.config.fps:
            time.sleep(max(0.0, 1.0 / self.config.fps - (time.perf_counter() - started)))

    def _send_transitions(self, recorder: EpisodeRecorder) -> None:
        self._seq += 1
        payload = recorder.take_chunk(self.transport.client_id, self._seq)
        # Back-pressure: a full queue (the learner is not keeping up, or away) holds the actor
        # here, between steps, with the robot still, instead of dropping what it recorded.
        waited_since = None
        while True:
            try:
                self.transport.send_transitions(payload, timeout=0.0 if waited_since is None
                                                else 1.0)
                self.episodes_sent += 1
                break
            except TransportFull:
                if waited_since is None:
                    waited_since = time.monotonic()
                    log.warning("the send queue is full (the learner is not keeping up or is "
                                "away): the robot waits until there is room")
                if self._stopping():
                    self._park(payload)
                    return
        if waited_since is not None:
            log.info("room in the send queue after %.1f s: acting again",
                     time.monotonic() - waited_since)

    def _park(self, payload: bytes) -> None:
        """Stopping with a full queue: the payload goes to the spool for the next process."""
        if self.transport.park_transitions(payload):
            log.info("stopping with a full send queue: one payload kept in the spool for the "
                     "next start")
        else:
            self.episodes_dropped += 1
            log.warning("stopping with a full send queue and no spool: one payload dropped")

    def _send_statistics(self, stats: dict) -> None:
        try:
            self.transport.send_interactions(wire.encode_interactions(stats), timeout=0.0)
        except TransportFull:
            log.warning("send queue full: episode statistics dropped")

    def run(self, max_episodes: int | None = None, stop=None) -> None:
        episodes = 0
        stop = stop or self.stop
        while (max_episodes is None or episodes < max_episodes) and not (stop and stop.is_set()):
            stats = self.run_episode()
            episodes += 1
            log.info("episode %d: reward %.2f, %d steps, interventions %.0f%%, params v%d",
                     episodes, stats["Episodic reward"], self.interaction_step,
                     100 * stats["Intervention rate"], self.version)


# ---------------------------------------------------------------------------------------------
# Command line.


def main(argv: list[str] | None = None) -> int:
    """python -m hiljax.actor --config TRAIN_CONFIG [--transport grpc|zmq] [overrides]

    Exit codes: 0 done or stopped, 1 no learner admitted the actor, 2 a config, file or
    backbone that cannot be used (said in one line, no traceback; nothing is left open)."""
    args, overrides = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config, env_config, backbone, env = _start_up(args, overrides)
    except ConfigError as error:
        log.error("cannot start the actor: %s", error)
        return 2
    transport = _open_link(config, args.actor_index)
    if transport is None:
        env.close()
        return 2
    from hiljax.run.env import make_env

    actor = Actor(config, env, transport, make_env=lambda: make_env(env_config),
                  stop=threading.Event(), backbone=backbone)
    try:
        return _serve(actor, args)
    finally:
        transport.close()
        if actor.env is not None:  # None: on_learner_lost="disconnect" closed it already
            actor.env.close()


def _arguments(argv: list[str] | None):
    from transport.factory import NETWORK_KINDS

    parser = argparse.ArgumentParser(description="Run the policy on an env and feed a learner.")
    parser.add_argument("--config", help="TrainConfig JSON (default: the simulator run)")
    parser.add_argument("--transport", choices=NETWORK_KINDS)
    parser.add_argument("--learner-address", help="host:port (default: from the config)")
    parser.add_argument("--actor-index", type=int, default=0, help="seed offset and name")
    parser.add_argument("--max-episodes", type=int)
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    args, overrides = parser.parse_known_args(argv)
    if args.transport:
        overrides.append(f"transport={args.transport}")
    return args, overrides


def _start_up(args, overrides: list[str]):
    """The actor's and the env's configs, the frozen backbone and a checked env; or ConfigError.

    The backbone comes first: a missing or unreadable `pretrained_vision_weights` file stops
    the actor before it opens a robot (the env), a link, or waits for a learner."""
    from hiljax.run.env import make_env
    from hiljax.run.train_config import check_env_matches_policy, load_train_config

    train = load_train_config(args.config, overrides)
    config = train.actor_config(args.actor_index, args.learner_address)
    backbone = frozen_backbone(config.policy)
    env_config = train.env_config(args.actor_index)
    env = make_env(env_config)
    try:
        check_env_matches_policy(env.observation_space, env.action_space, config.policy)
    except ConfigError:
        env.close()
        raise
    return config, env_config, backbone, env


def _open_link(config: ActorConfig, actor_index: int) -> ActorTransport | None:
    """The link to the learner; None (said why) when a security file or the spool is unusable."""
    from transport.factory import make_actor_transport

    # A random part so nobody can guess the id (on a plain link it is all that names this
    # process); the pid last, as logs and tests read it.
    client_id = f"actor-{actor_index}-{secrets.token_hex(4)}-{os.getpid()}"
    try:  # security files are read here: a missing or bad one stops the actor, saying which
        transport = make_actor_transport(config.transport, config.address, client_id=client_id,
                                         max_queue_bytes=int(config.max_queue_mb * 2**20),
                                         spool_dir=config.spool_dir,
                                         options=config.security.transport_options(
                                             config.transport))
    except ValueError as error:  # ConfigError, a spool another actor holds (SpoolBusy) too
        log.error("cannot start the actor's link to the learner: %s", error)
        return None
    if transport.recovered():
        log.info("resending first %d episodes an earlier actor process left unacknowledged "
                 "in %s", transport.recovered(), config.spool_dir)
    return transport


def _serve(actor: Actor, args) -> int:
    """Wait for the learner, then act until done, stopped, or the backbones disagree."""
    config = actor.config
    log.info("actor %d: waiting for the learner at %s (%s)", args.actor_index, config.address,
             config.transport)
    if not actor.transport.ready(timeout=args.ready_timeout):
        log.error("no learner admitted this actor at %s within %.0f s (unreachable, or it "
                  "refused the actor's credentials: see above)", config.address,
                  args.ready_timeout)
        return 1
    try:
        with _stop_on_signals(actor.stop):
            actor.run(args.max_episodes)
    except BackboneMismatch as error:  # the robot stopped between two steps; main closes it
        log.error("the actor stops: %s", error)
        return 2
    finally:  # what was sent reaches the learner, whatever ended the run
        if not actor.transport.flush(timeout=10.0):
            log.warning("some episodes were not acknowledged by the learner before exit")
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT / SIGTERM end the run between two steps; the previous handlers come back after
    (main may be called in-process, by a test)."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, lambda *_: stop.set())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    raise SystemExit(main())
