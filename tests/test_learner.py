"""The learner loop over the in-process transport: ingest, train, push, log, checkpoint, resume."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from hiljax import wire
from hiljax.config import ActorLearnerConfig, ConfigError, LearnerConfig
from hiljax.learner import Learner
from tests.sac_helpers import tiny_config
from transport import codec
from transport.factory import make_actor_transport, make_learner_transport

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot_payloads"


def learner_config(tmp_path, **policy) -> LearnerConfig:
    # The LeRobot fixtures carry an 18-d state and 3 continuous dims + a gripper column.
    fields = dict(input_features={"observation.state": (18,)}, continuous_action_dim=3,
                  num_discrete_actions=3, online_step_before_learning=20, utd_ratio=2)
    fields.update(policy)
    return LearnerConfig(policy=tiny_config(**fields), output_dir=str(tmp_path / "run"),
                         transport="inproc", save_freq=5, log_freq=1,
                         actor_learner_config=ActorLearnerConfig(
                             policy_parameters_push_frequency=0.0))


def episode(rng, length=10, interventions=(3, 4)):
    frames = {"observation.state": rng.normal(size=(length + 1, 18)).astype(np.float32)}
    actions = rng.uniform(-1, 1, (length, 4)).astype(np.float32)
    actions[:, -1] = rng.integers(0, 3, length)
    flags = np.zeros(length, bool)
    flags[list(interventions)] = True
    steps = dict(actions=actions, rewards=rng.normal(size=length).astype(np.float32),
                 dones=np.eye(length, dtype=bool)[-1], truncateds=np.zeros(length, bool),
                 is_intervention=flags, discrete_penalty=np.zeros(length, np.float32))
    return wire.encode_episode(frames, steps)


def open_pair(tmp_path, **policy):
    """A learner over the in-process transport and an actor connected to it (a generator:
    closes both after the yield)."""
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    learner = Learner.create(learner_config(tmp_path, **policy), transport)
    actor = make_actor_transport("inproc", transport.address)
    actor.ready(timeout=5)
    yield learner, actor
    learner.close()
    actor.close()
    transport.stop()


@pytest.fixture
def pair(tmp_path):
    yield from open_pair(tmp_path)


def test_ingest_train_push_and_log(pair):
    learner, actor = pair
    rng = np.random.default_rng(0)
    for _ in range(3):
        actor.send_transitions(episode(rng))
    actor.send_transitions((FIXTURES / "transitions_state.pt").read_bytes())  # a stock actor
    # Well-formed bytes that are not an episode: the learner must drop them, and only them.
    actor.send_transitions(codec.encode({"x": np.zeros(3)}))
    actor.send_interactions(wire.encode_interactions({"Episodic reward": 1.0,
                                                      "Interaction step": 10}))
    actor.send_interactions((FIXTURES / "interactions.pkl").read_bytes())

    learner.ingest(timeout=1.0)
    assert len(learner.online) == 3 * 10 + 3
    assert len(learner.offline) == 3 * 2 + 1  # interventions go to both buffers
    assert learner.counters["rejected_payloads"] == 1  # the bad one, and only it

    for _ in range(6):
        metrics = learner.step()
    assert metrics is not None and np.isfinite(float(metrics["critic_loss"]))
    version, payload = actor.latest_parameters()
    assert version >= 1
    parameters = wire.decode_parameters(payload)
    assert parameters.version == version
    assert set(parameters.trees["actor"]) == {"encoder", "actor", "discrete_critic"}
    assert parameters.meta["frozen_backbone_sha256"] is None  # no cameras, no backbone

    lines = [json.loads(line) for line in (learner.run_dir / "metrics.jsonl").read_text().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds.count("actor") == 2 and "train" in kinds
    assert list((learner.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert any(line.get("Episodic reward") == 1.0 for line in lines)
    assert (learner.run_dir / "checkpoints" / "LATEST").exists()  # save_freq = 5


def test_resume_continues_and_fresh_run_refuses_existing_dir(pair, tmp_path):
    learner, actor = pair
    rng = np.random.default_rng(1)
    for _ in range(3):
        actor.send_transitions(episode(rng))
    learner.ingest(timeout=1.0)
    for _ in range(5):
        learner.step()
    learner.save()
    config = learner.config
    with pytest.raises(ConfigError, match="already holds a run"):
        Learner.create(config, learner.transport)
    # A restarted learner restores into a new, unstarted transport (see transport.restore).
    fresh = make_learner_transport("inproc", push_frequency_s=0.0)
    resumed = Learner.create(dataclasses.replace(config, resume=True), fresh)
    assert int(resumed.agent.step) == int(learner.agent.step) == 5
    assert len(resumed.online) == len(learner.online) == 30
    assert resumed.counters["transition_payloads"] == 3
    assert float(resumed.agent.temperature) == float(learner.agent.temperature)
    resumed.close()


def test_resume_without_checkpoint_is_an_error(tmp_path):
    config = dataclasses.replace(learner_config(tmp_path), resume=True)
    with pytest.raises(ConfigError, match="no checkpoint"):
        Learner.create(config, make_learner_transport("inproc"))


def test_cached_features_are_stored_instead_of_pixels(tmp_path):
    features = {"observation.state": (18,), "observation.images.front": (32, 32, 3),
                "observation.images.wrist": (32, 32, 3)}
    config = learner_config(tmp_path, input_features=features, cache_backbone_features=True)
    transport = make_learner_transport("inproc").start()
    learner = Learner.create(config, transport)
    shape, dtype = learner.online.observation_spec["observation.images.front"]
    assert dtype == np.float16 and shape == (2, 2, 32)  # the small CNN's feature map
    rng = np.random.default_rng(0)
    frames = {"observation.state": rng.normal(size=(6, 18)).astype(np.float32),
              "observation.images.front": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
              "observation.images.wrist": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)}
    steps = dict(actions=np.zeros((5, 4), np.float32), rewards=np.zeros(5, np.float32),
                 dones=np.zeros(5, bool), truncateds=np.eye(5, dtype=bool)[-1],
                 is_intervention=np.zeros(5, bool), discrete_penalty=np.zeros(5, np.float32))
    actor = make_actor_transport("inproc", transport.address)
    actor.send_transitions(wire.encode_episode(frames, steps))
    learner.ingest(timeout=1.0)
    assert len(learner.online) == 5
    stored = learner.online.sample(4, rng)["observations"]
    assert stored["observation.images.wrist"].dtype == np.float16
    learner.close()
    transport.stop()


def test_wandb_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from hiljax.run.metrics import MetricsLogger

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(RuntimeError, match="pip install wandb"):
        MetricsLogger(tmp_path, wandb_project="hiljax")


@pytest.mark.parametrize("poison", ["nan_reward", "inf_state", "dict_reward"])
def test_a_poisoned_or_malformed_episode_is_dropped_and_learning_goes_on(pair, poison, caplog):
    learner, actor = pair
    rng = np.random.default_rng(3)
    frames = {"observation.state": rng.normal(size=(11, 18)).astype(np.float32)}
    steps = dict(actions=np.zeros((10, 4), np.float32), rewards=np.zeros(10, np.float32),
                 dones=np.eye(10, dtype=bool)[-1], truncateds=np.zeros(10, bool),
                 is_intervention=np.zeros(10, bool), discrete_penalty=np.zeros(10, np.float32))
    if poison == "nan_reward":
        steps["rewards"][4] = np.nan
    elif poison == "inf_state":
        frames["observation.state"][2, 1] = np.inf
    bad = wire.encode_episode(frames, steps)
    if poison == "dict_reward":  # valid framing, wrong structure
        bad = codec.encode({"x": np.zeros(3)}, meta={"schema": "hiljax.episode"})
    for _ in range(3):
        actor.send_transitions(episode(rng))
    actor.send_transitions(bad)
    learner.ingest(timeout=1.0)
    assert learner.counters["rejected_payloads"] == 1
    assert len(learner.online) == 30  # the good episodes, and only them
    if poison != "dict_reward":
        assert "NaN or Inf" in caplog.text
    for _ in range(4):
        metrics = learner.step()
    assert np.isfinite(float(metrics["critic_loss"]))


def test_episode_statistics_cannot_overwrite_the_records_own_fields(pair):
    learner, actor = pair
    actor.send_interactions(wire.encode_interactions({"kind": 7.0, "step": 1e9, "time": 0.0,
                                                      "client": 3.0, "Episodic reward": 1.0}))
    learner.ingest(timeout=1.0)
    [line] = [json.loads(x) for x in (learner.run_dir / "metrics.jsonl").read_text().splitlines()
              if '"actor"' in x]
    assert line["kind"] == "actor" and line["step"] == 0 and line["time"] > 1e9
    assert line["value_kind"] == 7.0 and line["value_step"] == 1e9
    assert line["client"] != 3.0 and line["Episodic reward"] == 1.0
