"""The actor against a real learner loop (in-process transport) on a small dict-observation env."""

import gymnasium as gym
import numpy as np
import pytest

from hiljax.actor import Actor, BackboneMismatch, episode_statistics
from hiljax.config import ActorConfig
from hiljax.learner import Learner
from tests.sac_helpers import tiny_config
from tests.test_learner import learner_config
from transport.factory import make_actor_transport, make_learner_transport


class DictPendulum(gym.Wrapper):
    """Pendulum-v1 with LeRobot keys, 18-d state (padded) and a gripper column in the action;
    steps listed in `intervene_at` are taken over by a 'human' who pushes +1."""

    def __init__(self, length=20, intervene_at=()):
        super().__init__(gym.wrappers.TimeLimit(gym.make("Pendulum-v1").unwrapped, length))
        self.observation_space = gym.spaces.Dict(
            {"observation.state": gym.spaces.Box(-np.inf, np.inf, (18,), np.float32)})
        low, high = np.array([-1, -1, -1, 0], np.float32), np.array([1, 1, 1, 2], np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.intervene_at, self.t = set(intervene_at), 0

    def _obs(self, obs):
        return {"observation.state": np.pad(obs, (0, 15)).astype(np.float32)}

    def reset(self, **kwargs):
        self.t = 0
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action):
        info = {}
        if self.t in self.intervene_at:
            action = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
            info = {"is_intervention": True, "action_intervention": action}
        self.t += 1
        obs, reward, terminated, truncated, env_info = self.env.step(action[:1] * 2.0)
        return self._obs(obs), reward, terminated, truncated, {**env_info, **info}


@pytest.fixture
def system(tmp_path):
    config = learner_config(tmp_path)
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    learner = Learner.create(config, transport)
    actor_config = ActorConfig(policy=config.policy, transport="inproc", warmup_steps=20)
    actor = Actor(actor_config, DictPendulum(intervene_at=(2, 3)),
                  make_actor_transport("inproc", transport.address))
    yield learner, actor
    learner.close()
    transport.stop()


def test_episodes_flow_and_parameters_come_back(system):
    learner, actor = system
    actor.run(max_episodes=2)  # warm-up: random actions, no parameters yet
    assert actor.version == -1 and actor.interaction_step == 40
    learner.ingest(timeout=1.0)
    assert len(learner.online) == 40 and len(learner.offline) == 4  # 2 interventions x 2
    stored = learner.offline.sample(8, np.random.default_rng(0))["actions"]
    np.testing.assert_array_equal(stored, np.tile([1.0, 0.0, 0.0, 1.0], (8, 1)))  # the human's

    for _ in range(5):
        learner.step()
    actor.run(max_episodes=1)
    assert actor.version >= 1  # applied at the episode boundary
    first_version = actor.version
    for _ in range(3):
        learner.step()
    actor.run(max_episodes=1)
    assert actor.version > first_version
    learner.ingest(timeout=1.0)
    assert learner.counters["episodes"] == 4


def test_policy_actions_are_in_the_action_space(system):
    learner, actor = system
    actor.run(max_episodes=1)
    learner.ingest(timeout=1.0)
    learner.step()
    actor.poll_parameters()
    actor.apply_parameters()
    action = actor.act({"observation.state": np.zeros(18, np.float32)})
    assert action.shape == (4,) and np.all(np.abs(action[:3]) <= 1) and action[3] in (0, 1, 2)


def test_episode_statistics_use_the_reference_names():
    stats = episode_statistics([1.0, 0.0, 2.0], [False, True, False], [0.01, 0.02, 0.04], 30)
    assert stats["Episodic reward"] == 3.0 and stats["Interaction step"] == 30
    assert stats["Episode intervention"] == 1
    assert stats["Intervention rate"] == pytest.approx(1 / 3)
    assert stats["Policy frequency [Hz]"] == pytest.approx((100 + 50 + 25) / 3)
    assert 50 < stats["Policy frequency 90th-p [Hz]"] <= 100


def test_mismatched_frozen_backbone_is_refused(tmp_path):
    """Real parameters through the real poll path: an actor built on another backbone refuses
    them and stops after the step it was taking, instead of acting at random forever."""
    features = {"observation.state": (18,), "observation.images.front": (32, 32, 3)}
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    learner = Learner.create(learner_config(tmp_path, input_features=features), transport)
    published = learner._parameters_meta()["frozen_backbone_sha256"]
    same = Actor(ActorConfig(policy=tiny_config(input_features=features, continuous_action_dim=3,
                                                num_discrete_actions=3)),
                 DictPendulum(), make_actor_transport("inproc", "inproc://none"))
    assert published and same._backbone_digest == published  # the same config: accepted
    other_seed = ActorConfig(policy=tiny_config(input_features=features, continuous_action_dim=3,
                                                num_discrete_actions=3, seed=99),
                             transport="inproc", warmup_steps=0)
    actor = Actor(other_seed, DictPendulum(), make_actor_transport("inproc", transport.address))
    try:
        learner.push_parameters(force=True)
        with pytest.raises(BackboneMismatch, match="frozen backbone .* is not this actor's"):
            actor.run(max_episodes=3)
        assert actor.policy is None and actor.version == -1  # refused, not installed
        assert actor.interaction_step == 1  # stopped after the first step's poll
    finally:
        actor.transport.close()
        learner.close()
        transport.stop()


def test_streaming_sends_parts_that_join_up_in_the_buffer(tmp_path):
    config = learner_config(tmp_path)
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    learner = Learner.create(config, transport)
    actor = Actor(ActorConfig(policy=config.policy, transport="inproc", send_every_steps=7),
                  DictPendulum(length=20), make_actor_transport("inproc", transport.address))
    actor.run(max_episodes=1)
    learner.ingest(timeout=1.0)
    assert learner.counters["transition_payloads"] == 3  # 7 + 7 + 6 steps
    assert learner.counters["episodes"] == 1 and len(learner.online) == 20
    assert learner.online.num_final_frames == 1  # parts joined: only the true last frame extra
    batch = learner.online.sample(64, np.random.default_rng(0))
    assert np.isfinite(batch["next_observations"]["observation.state"]).all()
    learner.close()
    transport.stop()
