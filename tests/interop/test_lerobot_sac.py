"""SAC policies to and from LeRobot 0.4, checked against LeRobot's own files (tests/fixtures/
lerobot_policy, made by LeRobot 0.4.4 itself; see its README): same actions, same names, shapes,
dtypes and values, exact round trips. No torch: the archives are read and written by
transport.lerobot_codec."""

import io
import json
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from safetensors import safe_open

from hiljax.agents.sac import SACAgent, sample_actions
from hiljax.config import SACConfig
from hiljax.interop.lerobot_pretrained import (
    lerobot_config,
    read_sac_pretrained,
    sac_config_from_lerobot,
    write_sac_pretrained,
)
from hiljax.interop.lerobot_sac import (
    policy_from_state_dict,
    policy_state_dict,
    push_from_state_dicts,
    push_state_dicts,
)
from hiljax.interop.tables import LayoutError, flatten
from hiljax.networks.sac_networks import make_sac_networks
from transport import lerobot_codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_policy"
PRETRAINED = FIXTURES / "state_pretrained_model"


@pytest.fixture(scope="module")
def imported():
    return read_sac_pretrained(PRETRAINED)


@pytest.fixture(scope="module")
def cases():
    return json.loads((FIXTURES / "state_cases.json").read_text())["cases"]


def actor_params(params: dict) -> dict:
    return {"encoder": params["critic"]["encoder"], "actor": params["actor"],
            "discrete_critic": params["discrete_critic"]}


def observations(cases) -> dict:
    return {k: np.array([c["observation"][k] for c in cases], np.float32)
            for k in cases[0]["observation"]}


def fixture_push() -> dict:
    return lerobot_codec.decode_state_dict((FIXTURES / "state_push.pt").read_bytes())


def assert_same_state(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs) or sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key].shape == value.shape, key
        assert ours[key].dtype == np.float32 == value.dtype, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def assert_trees_equal(a, b) -> None:
    fa, fb = flatten(a), flatten(b)
    assert sorted(fa) == sorted(fb)
    for path in fa:
        np.testing.assert_array_equal(np.asarray(fa[path]), np.asarray(fb[path]), err_msg=path)


# ---------------------------------------------------------------------------------------------
# LeRobot -> hiljax.


def test_imported_policy_chooses_lerobots_actions(imported, cases):
    config = imported.config
    assert config.layer_norm_eps == 1e-5 and config.latent_dim == 64
    params = actor_params(imported.params)
    obs = observations(cases)
    actions = np.asarray(sample_actions(config, params, {}, obs, jax.random.key(0),
                                        deterministic=True))
    want = np.array([c["deterministic_action"] for c in cases])
    np.testing.assert_allclose(actions[:, :3], want, atol=1e-5)
    assert actions[:, 3].tolist() == [c["gripper_command"] for c in cases]
    nets = make_sac_networks(config)
    latent = nets.encoder.apply({"params": params["encoder"]}, obs)
    mean, _ = nets.actor.apply({"params": params["actor"]}, latent)
    np.testing.assert_allclose(mean, [c["mean"] for c in cases], atol=1e-5)
    q = nets.discrete_critic.apply({"params": params["discrete_critic"]}, latent)
    np.testing.assert_allclose(q, [c["discrete_q"] for c in cases], atol=1e-5)


def test_imported_trees_have_the_agents_shapes(imported):
    abstract = SACAgent.abstract(imported.config)
    for ours, spec in ((imported.params, abstract.params),
                       (imported.target_params, abstract.target_params)):
        shapes = {p: tuple(v.shape) for p, v in flatten(jax.tree.map(lambda x: x, spec)).items()}
        assert {p: np.shape(v) for p, v in flatten(ours).items()} == shapes


def test_lerobots_push_decodes_into_the_same_policy(imported):
    actor, backbone = push_from_state_dicts(imported.config, fixture_push())
    assert backbone == {}
    assert_trees_equal(actor, actor_params(imported.params))


# ---------------------------------------------------------------------------------------------
# hiljax -> LeRobot.


def test_export_push_is_lerobots_push(imported):
    ours = push_state_dicts(imported.config, actor_params(imported.params))
    theirs = fixture_push()
    assert sorted(ours) == sorted(theirs) == ["discrete_critic", "policy"]
    for name in theirs:
        assert_same_state(ours[name], theirs[name])
    # The encoder both hold is one array, stored once in the archive (as torch.save does).
    payload = lerobot_codec.encode_state_dict(ours)
    storages = [n for n in zipfile.ZipFile(io.BytesIO(payload)).namelist() if "/data/" in n]
    assert len(storages) == 20 + 18 - 8
    decoded = lerobot_codec.decode_state_dict(payload)
    for name in theirs:
        assert_same_state(decoded[name], theirs[name])


def test_export_pretrained_is_lerobots_file(imported, tmp_path):
    out = write_sac_pretrained(tmp_path / "model", imported.config, imported.params,
                               imported.target_params, lerobot_config_json=imported.lerobot_config)
    with safe_open(str(PRETRAINED / "model.safetensors"), "numpy") as theirs, \
            safe_open(str(out / "model.safetensors"), "numpy") as ours:
        assert sorted(ours.keys()) == sorted(theirs.keys())
        assert ours.metadata() == theirs.metadata()  # the same shared-tensor aliases
        for key in theirs.keys():
            np.testing.assert_array_equal(ours.get_tensor(key), theirs.get_tensor(key))
    written = json.loads((out / "config.json").read_text())
    original = json.loads((PRETRAINED / "config.json").read_text())
    for field in ("type", "input_features", "output_features", "latent_dim", "num_critics",
                  "num_discrete_actions", "dataset_stats", "policy_kwargs",
                  "critic_network_kwargs", "actor_network_kwargs"):
        assert written[field] == original[field], field
    again = read_sac_pretrained(out)
    assert again.config == imported.config
    assert_trees_equal(again.params, imported.params)
    assert_trees_equal(again.target_params, imported.target_params)


# ---------------------------------------------------------------------------------------------
# hiljax -> LeRobot -> hiljax, from a policy hiljax made (cameras, trained target encoder).


def images_config(**changes) -> SACConfig:
    fields = dict(input_features={"observation.state": (9,),
                                  "observation.images.front": (128, 128, 3),
                                  "observation.images.wrist": (128, 128, 3)},
                  continuous_action_dim=3, num_discrete_actions=3, vision_encoder_name="resnet10",
                  latent_dim=64, image_normalization="none")
    return SACConfig(**{**fields, **changes})


@pytest.fixture(scope="module")
def image_agent():
    agent = SACAgent.create(images_config(), jax.random.key(3))
    # A target encoder that differs from the online one, as after training.
    target = jax.tree.map(lambda x: x + 0.25, agent.target_params)
    return agent.replace(target_params=target)


def test_image_push_has_lerobots_names_and_shapes(image_agent):
    layout = json.loads((FIXTURES / "images_push_layout.json").read_text())
    params = jax.device_get(image_agent.actor_parameters())
    ours = push_state_dicts(image_agent.config, params,
                            jax.device_get(image_agent.frozen_backbone_parameters()))
    for name in ("policy", "discrete_critic"):
        assert {k: (list(v.shape), v.dtype.name) for k, v in ours[name].items()} \
            == {k: (shape, dtype) for k, shape, dtype in layout[name]}
    actor, backbone = push_from_state_dicts(image_agent.config, ours)
    assert_trees_equal(actor, params)
    assert_trees_equal(backbone, jax.device_get(image_agent.frozen_backbone_parameters()))


def test_full_policy_round_trip_is_exact(image_agent, tmp_path):
    config = image_agent.config
    params = jax.device_get(image_agent.params)
    target = jax.device_get(image_agent.target_params)
    state, hiljax_only = policy_state_dict(config, params, target)
    assert "log_alpha" in state and state["log_alpha"].shape == (1,)
    assert state["critic_ensemble.critics.1.output_layer.weight"].shape == (1, 256)
    assert "encoder_critic.image_encoder.image_enc_layers.embedder.0.weight" in state
    back, back_target = policy_from_state_dict(config, state, hiljax_only)
    assert_trees_equal(back, params)
    assert_trees_equal(back_target, target)
    # Without the hiljax-only part the target encoder is LeRobot's: the online one.
    _, lerobot_target = policy_from_state_dict(config, state)
    assert_trees_equal(lerobot_target["critic"]["encoder"], params["critic"]["encoder"])

    out = write_sac_pretrained(tmp_path / "model", config, params, target)
    again = read_sac_pretrained(out)
    assert again.config == config
    assert_trees_equal(again.params, params)
    assert_trees_equal(again.target_params, target)
    written = json.loads((out / "config.json").read_text())
    assert written["input_features"]["observation.images.front"] == {"type": "VISUAL",
                                                                     "shape": [3, 128, 128]}
    assert written["vision_encoder_name"] == "helper2424/resnet10"


# ---------------------------------------------------------------------------------------------
# Refusals.


def test_a_push_without_the_gripper_head_is_refused(imported):
    push = fixture_push()
    del push["discrete_critic"]
    with pytest.raises(LayoutError, match="discrete_critic"):
        push_from_state_dicts(imported.config, push)


def test_missing_and_unexpected_names_are_named(imported):
    push = fixture_push()
    push["policy"]["network.net.9.weight"] = push["policy"].pop("network.net.3.weight")
    with pytest.raises(LayoutError, match=r"missing network\.net\.3\.weight.*unexpected "
                                          r"network\.net\.9\.weight"):
        push_from_state_dicts(imported.config, push)


def test_differing_copies_of_the_shared_encoder_are_refused(imported):
    push = fixture_push()
    push["discrete_critic"]["encoder.state_encoder.0.bias"] = \
        push["discrete_critic"]["encoder.state_encoder.0.bias"] + 1
    with pytest.raises(LayoutError, match="copies differ"):
        push_from_state_dicts(imported.config, push)


def test_configs_lerobot_cannot_express_are_refused():
    with pytest.raises(LayoutError, match="resnet10"):
        lerobot_config(images_config(vision_encoder_name=None))
    with pytest.raises(LayoutError, match="no branch"):
        lerobot_config(SACConfig(input_features={"observation.joints": (6,)}))
    data = json.loads((PRETRAINED / "config.json").read_text())
    data["input_features"]["observation.images.wrist"] = {"type": "VISUAL", "shape": [3, 128, 128]}
    data["input_features"]["observation.images.front"] = {"type": "VISUAL", "shape": [3, 128, 128]}
    with pytest.raises(LayoutError, match="sorted"):
        sac_config_from_lerobot(data)
