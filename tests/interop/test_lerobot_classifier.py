"""Reward classifiers to and from LeRobot 0.4's `Classifier` (reward_classifier), without torch.

A small hiljax classifier (2 cameras of 128x128: LeRobot hard-codes a 4x4 feature map) is
exported; the directory must hold exactly LeRobot's names and shapes (written out below from
LeRobot's module tree, not from hiljax's tables), the shared ResNet10 stored once with aliases,
and read back into identical trees and identical predictions. Broken directories are refused
naming the key; the env's RewardWrapper runs on a LeRobot directory.
"""

import json
import logging
import shutil

import gymnasium as gym
import jax
import numpy as np
import pytest
from flax import traverse_util
from safetensors import safe_open
from safetensors.numpy import save_file

from hiljax.classifier import (
    ClassifierConfig,
    ClassifierFileError,
    RewardClassifier,
    load_classifier,
)
from hiljax.classifier.io import export_classifier_to_lerobot
from hiljax.classifier.model import init_network_params
from hiljax.config import to_dict
from hiljax.envs.wrappers import RewardWrapper
from hiljax.interop.lerobot_classifier import (
    lerobot_classifier_config,
    read_classifier_pretrained,
    write_classifier_pretrained,
)
from hiljax.interop.safetensors_io import read_shared, write_shared
from hiljax.interop.tables import LayoutError, flatten
from hiljax.networks.resnet import resnet10_param_shapes

FRONT, WRIST = "observation.images.front", "observation.images.wrist"
CAMERAS = (WRIST, FRONT)  # deliberately not sorted: the order must survive both ways
SHAPE = (128, 128, 3)
LATENT, HIDDEN, POOLING = 16, 32, 4
CONFIG = ClassifierConfig(latent_dim=LATENT, hidden_dim=HIDDEN,
                          image_embedding_pooling_dim=POOLING, image_keys=CAMERAS)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def lerobot_resnet10() -> dict[str, tuple]:
    """The hub ResNet10's state-dict names and torch shapes (36 tensors)."""
    names = {"embedder.0.weight": (64, 3, 7, 7), "embedder.1.group_norm.weight": (64,),
             "embedder.1.group_norm.bias": (64,)}
    channels = 64
    for b, width in enumerate((64, 128, 256, 512)):
        stage = f"encoder.stages.{b}."
        names[stage + "conv1.conv.weight"] = (width, channels, 3, 3)
        names[stage + "conv2.conv.weight"] = (width, width, 3, 3)
        for norm in ("norm1", "norm2"):
            names[f"{stage}{norm}.group_norm.weight"] = names[f"{stage}{norm}.group_norm.bias"] \
                = (width,)
        if b:
            names[stage + "shortcut.0.conv.weight"] = (width, channels, 1, 1)
            names[stage + "shortcut.1.group_norm.weight"] = (width,)
            names[stage + "shortcut.1.group_norm.bias"] = (width,)
        channels = width
    return names


def lerobot_names() -> tuple[dict[str, tuple], dict[str, str]]:
    """(tensors stored in model.safetensors with their shapes, aliases {alias: stored})."""
    resnet = lerobot_resnet10()
    assert len(resnet) == 36
    stored = {f"encoder.{k}": shape for k, shape in resnet.items()}
    aliases = {}
    for key in CAMERAS:
        cam = f"encoders.{key.replace('.', '_')}."
        aliases.update({f"{cam}0.{k}": f"encoder.{k}" for k in resnet})
        stored.update({cam + "1.kernel": (512, 4, 4, POOLING),
                       cam + "3.weight": (LATENT, 512 * POOLING), cam + "3.bias": (LATENT,),
                       cam + "4.weight": (LATENT,), cam + "4.bias": (LATENT,)})
    stored.update({"classifier_head.0.weight": (HIDDEN, 2 * LATENT),
                   "classifier_head.0.bias": (HIDDEN,), "classifier_head.2.weight": (HIDDEN,),
                   "classifier_head.2.bias": (HIDDEN,), "classifier_head.4.weight": (1, HIDDEN),
                   "classifier_head.4.bias": (1,)})
    return stored, aliases


def unflatten(flat: dict) -> dict:
    return traverse_util.unflatten_dict(flat, sep="/")


@pytest.fixture(scope="module")
def classifier():
    """Random ResNet10 (numpy, from hiljax's own shape list: jitting its init costs seconds),
    network from the model's init, every leaf moved off its initial value."""
    rng = np.random.default_rng(0)
    backbone = {path: (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)
                for path, shape in resnet10_param_shapes().items()}
    params = init_network_params(CONFIG, jax.random.key(1), {k: (4, 4, 512) for k in CAMERAS})
    params = {path: np.asarray(v) + 0.1 * rng.normal(size=v.shape).astype(np.float32)
              for path, v in traverse_util.flatten_dict(jax.device_get(params), sep="/").items()}
    return RewardClassifier(CONFIG, unflatten(backbone), unflatten(params),
                            {k: SHAPE for k in CAMERAS}, threshold=0.6)


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    classifier.save(root / "hiljax")
    return export_classifier_to_lerobot(root / "hiljax", root / "lerobot")


@pytest.fixture(scope="module")
def observations():
    rng = np.random.default_rng(1)
    return [{k: rng.integers(0, 256, SHAPE, dtype=np.uint8) for k in CAMERAS} for _ in range(3)]


def copy_of(exported, tmp_path, *, keep_hiljax_files=True):
    target = tmp_path / "lerobot"
    shutil.copytree(exported, target)
    if not keep_hiljax_files:  # what LeRobot's own save_pretrained leaves
        for name in ("hiljax_classifier.json", "classifier_preprocessor.json",
                     "classifier_preprocessor_step_0_normalizer_processor.safetensors"):
            (target / name).unlink()
    return target


def edit_config(directory, **changes):
    path = directory / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ---------------------------------------------------------------------------------------------
# hiljax -> LeRobot.


def test_export_has_exactly_lerobots_names_and_shapes_with_the_backbone_stored_once(exported):
    stored, aliases = lerobot_names()
    with safe_open(str(exported / "model.safetensors"), framework="numpy") as handle:
        names = handle.keys()  # a safetensors method, not a dict view
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in names}
        dtypes = {handle.get_tensor(key).dtype for key in names}
        metadata = handle.metadata()
    assert shapes == stored and dtypes == {np.dtype(np.float32)}
    assert metadata == aliases  # 2 x 36 aliases of the 36 encoder.* tensors


def test_export_moves_every_value_with_its_transform(classifier, exported):
    state, _ = read_shared(exported / "model.safetensors")
    network, backbone = classifier.params, classifier.backbone_params
    for key in CAMERAS:
        cam, name = f"encoders.{key.replace('.', '_')}.", key.replace(".", "_")
        camera = network["encoder"][f"camera_{name}"]
        np.testing.assert_array_equal(state[cam + "1.kernel"],
                                      np.asarray(camera["spatial_kernel"]).transpose(2, 0, 1, 3))
        np.testing.assert_array_equal(state[cam + "3.weight"], np.asarray(camera["kernel"]).T)
        np.testing.assert_array_equal(state[cam + "4.weight"],
                                      network["encoder"][f"norm_{name}"]["scale"])
        stem = np.asarray(backbone["conv_init"]["kernel"])
        np.testing.assert_array_equal(state[cam + "0.embedder.0.weight"],
                                      stem.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["classifier_head.4.weight"],
                                  np.asarray(network["logits"]["kernel"]).T)
    np.testing.assert_array_equal(state["classifier_head.2.bias"], network["hidden_norm"]["bias"])


def test_export_config_and_image_stats_are_lerobots(exported):
    data = json.loads((exported / "config.json").read_text())
    assert data["type"] == "reward_classifier" and data["model_type"] == "cnn"
    assert data["model_name"] == "helper2424/resnet10" and data["num_cameras"] == 2
    assert list(data["input_features"]) == list(CAMERAS)  # hiljax's concatenation order
    assert all(f == {"type": "VISUAL", "shape": [3, 128, 128]}
               for f in data["input_features"].values())
    assert (data["num_classes"], data["latent_dim"], data["hidden_dim"],
            data["image_embedding_pooling_dim"]) == (2, LATENT, HIDDEN, POOLING)
    assert data["normalization_mapping"] == {"VISUAL": "MEAN_STD"}
    assert "dataset_stats" not in data  # not a RewardClassifierConfig field: LeRobot refuses it
    stats, _ = read_shared(exported /
                           "classifier_preprocessor_step_0_normalizer_processor.safetensors")
    for key in CAMERAS:  # ImageNet's, as hiljax's ResNet10 normalises ("imagenet")
        np.testing.assert_allclose(stats[f"{key}.mean"], np.reshape(IMAGENET_MEAN, (3, 1, 1)))
        np.testing.assert_allclose(stats[f"{key}.std"], np.reshape(IMAGENET_STD, (3, 1, 1)))


def test_what_lerobot_cannot_express_is_refused():
    fields = to_dict(CONFIG)
    with pytest.raises(LayoutError, match="4x4"):
        lerobot_classifier_config(fields, {k: (32, 32, 3) for k in CAMERAS})
    with pytest.raises(LayoutError, match="resnet10"):
        lerobot_classifier_config({**fields, "model_name": "cnn"}, {k: SHAPE for k in CAMERAS})


# ---------------------------------------------------------------------------------------------
# LeRobot -> hiljax.


def test_round_trip_is_exact_and_predicts_identically(classifier, exported, observations):
    loaded = load_classifier(exported)
    assert loaded.image_keys == CAMERAS and loaded.image_shapes == classifier.image_shapes
    assert loaded.threshold == classifier.threshold == 0.6
    for ours, theirs in ((loaded.params, classifier.params),
                         (loaded.backbone_params, classifier.backbone_params)):
        a, b = flatten(jax.device_get(ours)), flatten(jax.device_get(theirs))
        assert sorted(a) == sorted(b)
        for path in a:
            np.testing.assert_array_equal(a[path], b[path], err_msg=path)
    for obs in observations:
        batch = {k: v[None] for k, v in obs.items()}
        np.testing.assert_array_equal(loaded.logits_of_batch(batch),
                                      classifier.logits_of_batch(batch))
        assert loaded(obs) == classifier(obs)


def test_a_lerobot_made_directory_loads_with_a_log_line_about_its_stats(
        classifier, exported, observations, tmp_path, caplog):
    directory = copy_of(exported, tmp_path, keep_hiljax_files=False)
    with caplog.at_level(logging.WARNING):
        loaded = load_classifier(directory)
    assert "assuming ImageNet" in caplog.text
    assert loaded.config.image_normalization == "imagenet" and loaded.image_keys == CAMERAS
    assert loaded.threshold == ClassifierConfig().threshold  # LeRobot saves none
    assert loaded(observations[0]) == classifier(observations[0])


def test_image_stats_decide_the_normalisation_both_ways(classifier, tmp_path):
    fields = {**to_dict(CONFIG), "image_normalization": "none"}
    trees = (jax.device_get(classifier.params), jax.device_get(classifier.backbone_params))
    directory = write_classifier_pretrained(tmp_path / "none", fields, *trees,
                                            {k: SHAPE for k in CAMERAS})
    (directory / "hiljax_classifier.json").unlink()
    assert read_classifier_pretrained(directory).config_fields["image_normalization"] == "none"
    stats_file = directory / "classifier_preprocessor_step_0_normalizer_processor.safetensors"
    odd = {f"{k}.{s}": np.full((3, 1, 1), 0.5, np.float32)
           for k in CAMERAS for s in ("mean", "std")}
    save_file(odd, str(stats_file))
    with pytest.raises(LayoutError, match="neither ImageNet"):
        read_classifier_pretrained(directory)
    stats_file.unlink()  # stats in config.json, as other exporters write them
    edit_config(directory, dataset_stats={k: {"mean": [[[0.0]]] * 3, "std": [[[1.0]]] * 3}
                                          for k in CAMERAS})
    assert read_classifier_pretrained(directory).config_fields["image_normalization"] == "none"


def test_cameras_follow_input_features_order(exported, tmp_path):
    directory = copy_of(exported, tmp_path)
    data = json.loads((directory / "config.json").read_text())
    edit_config(directory, input_features=dict(reversed(data["input_features"].items())))
    assert read_classifier_pretrained(directory).config_fields["image_keys"] == [FRONT, WRIST]


def _rewrite_state(directory, change):
    state, _ = read_shared(directory / "model.safetensors")
    change(state)
    write_shared(directory / "model.safetensors", state)


FRONT_LINEAR = "encoders.observation_images_front.3.weight"


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("classifier_head.2.bias"), "missing classifier_head.2.bias"),
    (lambda s: s.update(extra=np.zeros(2, np.float32)), "unexpected extra"),
    (lambda s: s.update({FRONT_LINEAR: np.zeros((LATENT, 1024), np.float32)}),
     rf"{FRONT_LINEAR} \(16, 1024\) \(expected \(16, 2048\)\)"),
    (lambda s: s.update({"classifier_head.4.weight": np.zeros((3, HIDDEN), np.float32)}),
     r"classifier_head.4.weight \(3, 32\) \(expected \(1, 32\)\)"),
    (lambda s: s.update({"encoders.observation_images_wrist.0.embedder.0.weight":
                         np.zeros((64, 3, 7, 7), np.float32)}),
     "encoders.observation_images_wrist.0.embedder.0.weight differs from another copy"),
], ids=["missing", "unexpected", "camera-shape", "head-shape", "backbone-copies-differ"])
def test_a_broken_lerobot_directory_is_refused_naming_the_key(exported, tmp_path, change,
                                                               message):
    directory = copy_of(exported, tmp_path)
    _rewrite_state(directory, change)
    with pytest.raises(LayoutError, match=message):
        read_classifier_pretrained(directory)
    with pytest.raises(ClassifierFileError, match=message):
        load_classifier(directory)


def test_a_lerobot_directory_of_another_model_is_refused(exported, tmp_path):
    directory = copy_of(exported, tmp_path)
    edit_config(directory, model_name="google/vit-base-patch16-224", model_type="transformer")
    with pytest.raises(ClassifierFileError, match="helper2424/resnet10"):
        load_classifier(directory)


# ---------------------------------------------------------------------------------------------
# The env.


class Scene(gym.Env):
    def __init__(self, frames):
        self.frames, self.t = frames, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self.frames[0], {}

    def step(self, action):
        self.t += 1
        return self.frames[self.t % len(self.frames)], 0.0, False, False, {}


def test_the_reward_wrapper_runs_a_lerobot_classifier(classifier, exported, observations):
    env = RewardWrapper(Scene(observations), load_classifier(exported), threshold=0.0)
    env.reset()
    _, reward, terminated, _, info = env.step(None)
    assert info["reward_classifier_probability"] == classifier(observations[1])
    assert reward == 1.0 and terminated  # threshold 0: any probability is a success


def test_the_export_command_writes_a_lerobot_directory(exported, tmp_path):
    from hiljax import export_lerobot

    source = exported.parent / "hiljax"
    out = tmp_path / "cli"
    assert export_lerobot.main(["--classifier", str(source), "--output", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["type"] == "reward_classifier"
    assert export_lerobot.main(["--classifier", str(source), "--output", str(out)]) == 2
