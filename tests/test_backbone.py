"""One backbone builder: `pretrained_vision_weights` reaches the learner and every actor, and a
missing or unreadable file stops them at start-up with a clear error."""

import jax
import numpy as np
import pytest

from hiljax import wire
from hiljax.actor import Actor
from hiljax.config import ActorConfig, ConfigError
from hiljax.learner import Learner
from hiljax.networks.backbone import frozen_backbone, init_backbone
from hiljax.networks.resnet_weights import save_resnet10
from tests.sac_helpers import tiny_config
from tests.test_actor import DictPendulum
from tests.test_learner import learner_config
from transport.factory import make_actor_transport, make_learner_transport

FEATURES = {"observation.state": (18,), "observation.images.front": (32, 32, 3)}


def _policy_fields(weights) -> dict:
    return dict(input_features=FEATURES, continuous_action_dim=3, num_discrete_actions=3,
                vision_encoder_name="resnet10", pretrained_vision_weights=str(weights))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A ResNet10 written by the test: weights no seed of hiljax would draw."""
    params = init_backbone("resnet10", (32, 32, 3), jax.random.key(1234))
    params = jax.tree.map(lambda a: np.asarray(a) + np.float32(0.5), params)
    path = tmp_path_factory.mktemp("weights") / "resnet10.safetensors"
    save_resnet10(path, params)
    return path, params


def _assert_same_tree(got, want):
    flat_got, flat_want = jax.tree.leaves_with_path(got), jax.tree.leaves_with_path(want)
    assert [p for p, _ in flat_got] == [p for p, _ in flat_want]
    for (path, a), (_, b) in zip(flat_got, flat_want):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


def test_learner_and_actor_hold_exactly_the_weights_of_the_file(tmp_path, weights_file):
    path, written = weights_file
    transport = make_learner_transport("inproc", push_frequency_s=0.0).start()
    learner = Learner.create(learner_config(tmp_path, **_policy_fields(path)), transport)
    actor = Actor(ActorConfig(policy=tiny_config(**_policy_fields(path))), DictPendulum(),
                  make_actor_transport("inproc", transport.address))
    try:
        _assert_same_tree(learner.agent.frozen_backbone_parameters(), written)
        _assert_same_tree(actor.backbone, written)
        # The digest the learner publishes is the actor's: the actor acts with its parameters.
        assert learner._parameters_meta()["frozen_backbone_sha256"] == wire.tree_digest(written)
        learner.push_parameters(force=True)
        actor.poll_parameters()
        actor.apply_parameters()
        assert actor.policy is not None and actor.version == 0
    finally:
        actor.transport.close()
        learner.close()
        transport.stop()


def test_without_a_file_both_sides_draw_the_same_random_backbone():
    config = tiny_config(input_features=FEATURES, vision_encoder_name="resnet10", seed=7)
    _assert_same_tree(frozen_backbone(config), frozen_backbone(config))
    other = tiny_config(input_features=FEATURES, vision_encoder_name="resnet10", seed=8)
    assert wire.tree_digest(frozen_backbone(config)) != wire.tree_digest(frozen_backbone(other))


def test_a_missing_weights_file_stops_the_learner_and_the_actor(tmp_path):
    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(ConfigError, match="no file at .*nowhere.safetensors"):
        Learner.create(learner_config(tmp_path, **_policy_fields(missing)),
                       make_learner_transport("inproc"))
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ConfigError, match="no file at"):
        Actor(ActorConfig(policy=tiny_config(**_policy_fields(missing))), DictPendulum(),
              make_actor_transport("inproc", "inproc://none"))


def test_an_unreadable_weights_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a weights file at all")
    with pytest.raises(ConfigError, match="cannot read .*junk.bin"):
        frozen_backbone(tiny_config(**_policy_fields(junk)))


def test_weights_need_the_resnet10_backbone(tmp_path):
    with pytest.raises(ConfigError, match="needs vision_encoder_name 'resnet10'"):
        tiny_config(input_features=FEATURES, vision_encoder_name="cnn",
                    pretrained_vision_weights=str(tmp_path / "w.safetensors"))
