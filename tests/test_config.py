import dataclasses
import json
from pathlib import Path

import pytest

from hiljax.config import (
    ConfigError,
    LearnerConfig,
    SACConfig,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    to_dict,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_the_reference_ones():
    c = SACConfig()
    assert (c.discount, c.temperature_init, c.num_critics, c.critic_lr, c.utd_ratio) == (
        0.99, 1.0, 2, 3e-4, 1)
    assert (c.critic_target_update_weight, c.grad_clip_norm, c.latent_dim) == (0.005, 40.0, 256)
    assert c.critic_network_kwargs.hidden_dims == (256, 256)
    assert (c.policy_kwargs.std_min, c.policy_kwargs.std_max, c.policy_kwargs.init_final) == (
        1e-5, 10.0, 0.05)
    network = LearnerConfig().actor_learner_config  # beside the policy, not in it
    assert network.policy_parameters_push_frequency == 4.0
    assert network.learner_host == "127.0.0.1" and network.learner_port == 50051
    assert not hasattr(c, "actor_learner_config")


def test_json_round_trip(tmp_path):
    config = SACConfig(num_discrete_actions=3, input_features={"observation.state": (18,),
                                                               "observation.images.front": (128, 128, 3)})
    save_config(config, tmp_path / "c.json")
    assert load_config(SACConfig, tmp_path / "c.json") == config
    assert hash(config) == hash(from_dict(SACConfig, to_dict(config)))


def test_dotted_overrides_with_lerobot_prefix():
    config = load_config(SACConfig, None, ["--policy.utd_ratio=4",
                                           "policy.critic_network_kwargs.hidden_dims=[64,64]",
                                           "vision_encoder_name=resnet10"], prefix_alias="policy")
    assert config.utd_ratio == 4
    assert config.critic_network_kwargs.hidden_dims == (64, 64)
    assert config.vision_encoder_name == "resnet10"


@pytest.mark.parametrize("override, message", [
    ("utd_ratio=0", "utd_ratio must be >= 1"),
    ("discount=1.5", "discount"),
    ("num_subsample_critics=3", "num_subsample_critics"),
    ("no_such_field=1", "unknown field"),
    ("batch_size=\"big\"", "expected an integer"),
    ("policy_kwargs.std_min=20", "std_min"),
    ("vision_encoder_name=resnet50", "vision_encoder_name"),
    ("utd_ratio", "key.path=value"),
])
def test_bad_values_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SACConfig, None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(SACConfig, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(SACConfig, tmp_path / "bad.json")


def test_configs_are_frozen_and_hashable():
    config = SACConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.utd_ratio = 3
    with pytest.raises(TypeError):
        config.input_features["x"] = (1,)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("sac*.json")), ids=lambda p: p.name)
def test_shipped_sac_configs_load(path):
    load_config(SACConfig, path)


def test_overrides_do_not_mutate_input():
    data = {"a": {"b": 1}}
    assert apply_overrides(data, ["a.b=2"]) == {"a": {"b": 2}} and data == {"a": {"b": 1}}
    json.dumps(to_dict(SACConfig()))
