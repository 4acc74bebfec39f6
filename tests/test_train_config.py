import json

import pytest

from hiljax.config import ConfigError
from hiljax.run.train_config import (
    TrainConfig,
    check_env_matches_policy,
    load_train_config,
    save_train_config,
)


def test_overrides_apply_on_top_of_the_sim_defaults():
    config = load_train_config(None, ["policy.batch_size=32", "env.wrapper.control_time_s=3.0"])
    default = TrainConfig()
    assert config.policy.batch_size == 32
    assert config.policy.input_features == default.policy.input_features  # not reset to SACConfig's
    assert config.env.wrapper.control_time_s == 3.0
    assert config.env.robot == default.env.robot  # not reset to a real robot


def test_round_trip_and_shared_policy(tmp_path):
    config = load_train_config(None, ["num_actors=2", "output_dir=/tmp/x", "transport=zmq"])
    save_train_config(config, tmp_path / "c.json")
    assert load_train_config(tmp_path / "c.json") == config
    learner, actor = config.learner_config(), config.actor_config(1, "127.0.0.1:9")
    assert learner.policy == actor.policy == config.policy
    assert (learner.output_dir, learner.transport, actor.transport) == ("/tmp/x", "zmq", "zmq")
    assert actor.address == "127.0.0.1:9" and actor.seed == config.actor.seed + 1
    assert config.env_config(1).robot.seed == config.env.robot.seed + 1


def test_each_actor_gets_its_own_spool_folder():
    auto = load_train_config(None, ["output_dir=/tmp/run"])
    assert auto.actor_config(2).spool_dir == "/tmp/run/spool/actor-2"
    chosen = load_train_config(None, ["actor.spool_dir=/data/spool"])
    assert chosen.actor_config(0).spool_dir == "/data/spool/actor-0"
    assert load_train_config(None, ["actor.spool_dir=null"]).actor_config(0).spool_dir is None
    with pytest.raises(ConfigError, match="spool_dir"):
        load_train_config(None, ["actor.spool_dir="])


def test_sections_cannot_override_the_top_level(tmp_path):
    data = json.loads(json.dumps({"learner": {"output_dir": "elsewhere"}}))
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="learner.output_dir: set output_dir at the top level"):
        load_train_config(tmp_path / "c.json")


def test_env_policy_mismatch_is_explained():
    import gymnasium as gym

    obs = gym.spaces.Dict({"observation.state": gym.spaces.Box(-1, 1, (7,))})
    with pytest.raises(ConfigError, match="do not match policy.input_features"):
        check_env_matches_policy(obs, gym.spaces.Box(-1, 1, (4,)), TrainConfig().policy)


@pytest.mark.parametrize("name", ["sim_pick_lift.json", "sim_pick_lift_images.json",
                                  "sim_pick_lift_learned_reward.json", "virtual_so101.json",
                                  "sim_pick_lift_hard.json", "gym_hil_pick_cube.json",
                                  "gym_hil_pick_cube_random.json",
                                  "gym_hil_pick_cube_images.json"])
def test_shipped_run_configs_load(name):
    from pathlib import Path

    config = load_train_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert config.policy.input_features
