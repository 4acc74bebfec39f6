"""ResNet10 backbone and its weight loaders.

The test writes weight files in both public layouts itself (random weights): a Berkeley-style
pickle (HWIO, Flax names) and a helper2424/resnet10-style safetensors file (OIHW, PyTorch
names), loads each, and checks the Flax forward pass against an independent numpy one.
"""

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import FrozenDict
from safetensors import safe_open
from safetensors.numpy import save_file

from hiljax.interop.tables import unflatten
from hiljax.networks.resnet import IMAGENET_MEAN, IMAGENET_STD, ResNet10, resnet10_param_shapes
from hiljax.networks.resnet_weights import (
    BERKELEY_PICKLE,
    HF_SAFETENSORS,
    HILJAX_SAFETENSORS,
    UnsafePickleError,
    WeightFormatError,
    detect_layout,
    load_berkeley_pickle,
    load_hf_safetensors,
    load_resnet10,
    main,
    save_resnet10,
)
from tests._numpy_resnet import resnet10_forward

ROOT = Path(__file__).resolve().parents[1]
MODEL = ResNet10()
APPLY = jax.jit(MODEL.apply)
# Odd sizes after a few stride-2 steps (40x48 -> 20x24 -> 10x12 -> 5x6 -> 3x3 -> 2x2) exercise
# both the symmetric and the high-side SAME padding; non-square catches H/W mix-ups.
IMAGE_SHAPE = (2, 40, 48, 3)


# ------------------------------------------------------------------------------------------
# Fixtures: random weights, written in each public layout by the test itself
# ------------------------------------------------------------------------------------------

_nested = unflatten


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def random_params(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    flat = {}
    for key, shape in resnet10_param_shapes().items():
        if key.endswith("kernel"):
            fan_in = np.prod(shape[:-1])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif key.endswith("scale"):
            value = 1.0 + 0.2 * rng.normal(size=shape)
        else:
            value = 0.2 * rng.normal(size=shape)
        flat[key] = value.astype(np.float32)
    return _nested(flat)


# The helper2424/resnet10 port (resnet_10/modeling_resnet.py): embedder = Sequential(conv,
# GroupNorm, ReLU, MaxPool2dJax); encoder.stages[i] = BasicBlock(conv1, norm1, conv2, norm2,
# shortcut = Sequential(conv, GroupNorm)); block convs are wrapped (Conv2dJax -> `.conv.`), and
# in some versions the GroupNorms too (MyGroupNorm -> `.group_norm.`).
def hf_state_dict(params: dict, group_norm_wrapper: bool) -> dict:
    gn = ".group_norm" if group_norm_wrapper else ""
    sd = {"embedder.0.weight": params["conv_init"]["kernel"].transpose(3, 2, 0, 1),
          f"embedder.1{gn}.weight": params["norm_init"]["scale"],
          f"embedder.1{gn}.bias": params["norm_init"]["bias"]}
    for i in range(4):
        p, s = params[f"ResNetBlock_{i}"], f"encoder.stages.{i}"
        layers = [("conv1", "Conv_0", "conv"), ("norm1", "MyGroupNorm_0", "gn"),
                  ("conv2", "Conv_1", "conv"), ("norm2", "MyGroupNorm_1", "gn")]
        if "conv_proj" in p:
            layers += [("shortcut.0", "conv_proj", "conv"), ("shortcut.1", "norm_proj", "gn")]
        for torch_name, flax_name, kind in layers:
            if kind == "conv":
                sd[f"{s}.{torch_name}.conv.weight"] = p[flax_name]["kernel"].transpose(3, 2, 0, 1)
            else:
                sd[f"{s}.{torch_name}{gn}.weight"] = p[flax_name]["scale"]
                sd[f"{s}.{torch_name}{gn}.bias"] = p[flax_name]["bias"]
    return {k: np.ascontiguousarray(v) for k, v in sd.items()}


def write_berkeley_pickle(path: Path, params: dict, flavour: str = "dict") -> Path:
    tree = {k: dict(v) for k, v in params.items()}
    # The released file also carries the ImageNet classifier head.
    tree["output_head"] = {"kernel": np.zeros((512, 1000), np.float32),
                           "bias": np.zeros((1000,), np.float32)}
    protocol = 4
    if flavour == "frozen":
        tree, protocol = FrozenDict(tree), 2
    elif flavour == "jax":
        tree = jax.tree_util.tree_map(jnp.asarray, tree)
    elif flavour == "variables":
        tree, protocol = {"params": tree}, 5
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    return path


def write_hf_safetensors(path: Path, params: dict, group_norm_wrapper: bool = True) -> Path:
    save_file(hf_state_dict(params, group_norm_wrapper), str(path), metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def params():
    return random_params(0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)


@pytest.fixture(scope="module")
def reference(params, images):
    return resnet10_forward(params, images)


def assert_matches_reference(loaded: dict, images: np.ndarray, reference: np.ndarray):
    out = np.asarray(APPLY({"params": loaded}, images))
    assert out.shape == reference.shape == (2, 2, 2, 512)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)


# ------------------------------------------------------------------------------------------
# The module
# ------------------------------------------------------------------------------------------

def test_param_tree_has_berkeley_names_and_shapes():
    variables = jax.eval_shape(MODEL.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.uint8))
    assert set(variables) == {"params"}
    shapes = {k: tuple(v.shape) for k, v in _flat(variables["params"]).items()}
    assert shapes == resnet10_param_shapes()
    assert "conv_proj" not in variables["params"]["ResNetBlock_0"]
    count = sum(np.prod(s) for s in shapes.values())
    assert 4.8e6 < count < 5.0e6  # "~4.9 M params"


def test_128x128_gives_4x4x512(params):
    out = APPLY({"params": params}, np.zeros((1, 128, 128, 3), np.uint8))
    assert out.shape == (1, 4, 4, 512) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))


def test_leading_batch_dims_and_float_input(params, images, reference):
    batched = np.asarray(APPLY({"params": params}, images))
    stacked = np.asarray(APPLY({"params": params}, images.reshape((1,) + IMAGE_SHAPE)))
    np.testing.assert_allclose(stacked[0], batched, rtol=1e-5, atol=1e-5)
    single = np.asarray(APPLY({"params": params}, images[1]))
    assert single.shape == (2, 2, 512)
    np.testing.assert_allclose(single, batched[1], rtol=1e-4, atol=1e-4)
    # Float input is taken to be in [0, 1] already.
    as_float = np.asarray(APPLY({"params": params}, images.astype(np.float32) / 255.0))
    np.testing.assert_allclose(as_float, batched, rtol=1e-4, atol=1e-4 * np.abs(batched).max())
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------
# Loaders against the numpy reference
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", ["dict", "frozen", "jax", "variables"])
def test_berkeley_pickle_matches_numpy_reference(tmp_path, params, images, reference, flavour):
    path = write_berkeley_pickle(tmp_path / "resnet10_params.pkl", params, flavour)
    assert detect_layout(path) == BERKELEY_PICKLE
    loaded = load_berkeley_pickle(path)
    assert "output_head" not in loaded
    assert_matches_reference(loaded, images, reference)
    np.testing.assert_array_equal(loaded["ResNetBlock_3"]["conv_proj"]["kernel"],
                                  params["ResNetBlock_3"]["conv_proj"]["kernel"])


@pytest.mark.parametrize("group_norm_wrapper", [True, False])
def test_hf_safetensors_matches_numpy_reference(tmp_path, params, images, reference,
                                                group_norm_wrapper):
    path = write_hf_safetensors(tmp_path / "model.safetensors", params, group_norm_wrapper)
    assert detect_layout(path) == HF_SAFETENSORS
    loaded = load_hf_safetensors(path)
    assert_matches_reference(loaded, images, reference)
    assert_matches_reference(load_resnet10(path), images, reference)


def test_numpy1_module_names_are_accepted(tmp_path, params):
    data = pickle.dumps(params, protocol=2)
    assert b"numpy._core.multiarray" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    loaded = load_berkeley_pickle(path)
    np.testing.assert_array_equal(loaded["conv_init"]["kernel"], params["conv_init"]["kernel"])


# ------------------------------------------------------------------------------------------
# hiljax format and the converter
# ------------------------------------------------------------------------------------------

def test_convert_round_trip(tmp_path, params, images, reference, caplog):
    source = write_berkeley_pickle(tmp_path / "resnet10_params.pkl", params)
    out = tmp_path / "resnet10.safetensors"
    with caplog.at_level(logging.INFO):
        assert main(["convert", str(source), str(out)]) == 0
    assert "berkeley-pickle" in caplog.text and str(out) in caplog.text
    with safe_open(str(out), framework="numpy") as handle:
        assert handle.metadata() == {"format": "hiljax-resnet10", "version": "1"}
        assert "ResNetBlock_0/Conv_0/kernel" in set(handle.keys())
    assert detect_layout(out) == HILJAX_SAFETENSORS
    loaded = load_resnet10(out)
    for key, value in _flat(params).items():
        np.testing.assert_array_equal(_flat(loaded)[key], value)
    assert_matches_reference(loaded, images, reference)
    # save/load directly, from jax leaves wrapped as variables
    again = tmp_path / "again.safetensors"
    save_resnet10(again, {"params": jax.tree_util.tree_map(jnp.asarray, loaded)})
    np.testing.assert_array_equal(load_resnet10(again)["norm_init"]["scale"],
                                  params["norm_init"]["scale"])


def test_module_entry_point(tmp_path, params):
    source = write_hf_safetensors(tmp_path / "hf.safetensors", params)
    out = tmp_path / "out.safetensors"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-m", "hiljax.networks.resnet_weights", "convert", str(source), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "hf-safetensors" in done.stderr and "converted" in done.stderr
    assert detect_layout(out) == HILJAX_SAFETENSORS
    assert main(["convert", str(tmp_path / "missing.pkl"), str(out)]) == 1


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------

class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "nested"])
def test_evil_pickle_is_refused_and_nothing_runs(tmp_path, params, kind):
    marker = tmp_path / "pwned"
    if kind == "builtins.exec":
        evil = _Evil(exec, f"open({str(marker)!r}, 'w').close()")
    else:
        evil = _Evil(os.system, f"touch {marker}")
    payload = evil if kind != "nested" else {**params, "conv_init": {"kernel": evil}}
    path = tmp_path / "resnet10_params.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    for loader in (load_berkeley_pickle, load_resnet10):
        with pytest.raises(UnsafePickleError, match="refusing to unpickle global") as info:
            loader(path)
        assert ("system" in str(info.value)) or ("exec" in str(info.value))
    assert not marker.exists()
    assert main(["convert", str(path), str(tmp_path / "out.safetensors")]) == 1
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_truncated_and_garbage_files_give_clear_errors(tmp_path, params):
    good_pkl = write_berkeley_pickle(tmp_path / "good.pkl", params).read_bytes()
    good_st = write_hf_safetensors(tmp_path / "good.safetensors", params).read_bytes()
    cases = {"half.pkl": good_pkl[: len(good_pkl) // 2],
             "half.safetensors": good_st[: len(good_st) // 2],
             "header.safetensors": good_st[:20],
             "garbage.bin": b"not a weight file at all",
             "empty.bin": b""}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightFormatError) as info:
            load_resnet10(path)
        assert str(path) in str(info.value), name
        if name.startswith("half") or name.startswith("header"):
            assert "truncated" in str(info.value), name


def test_missing_extra_and_misshapen_keys_are_named(tmp_path, params):
    sd = hf_state_dict(params, group_norm_wrapper=True)
    del sd["encoder.stages.2.conv2.conv.weight"]
    sd["encoder.stages.2.extra.weight"] = np.zeros(3, np.float32)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightFormatError) as info:
        load_resnet10(tmp_path / "bad.safetensors")
    message = str(info.value)
    assert "missing keys: ResNetBlock_2/Conv_1/kernel" in message
    assert "encoder.stages.2.extra.group_norm.weight" not in message
    assert "encoder.stages.2.extra.weight" in message

    broken = {k: dict(v) for k, v in params.items()}
    broken["norm_init"] = {"scale": np.ones(32, np.float32), "bias": np.ones(64, np.float32)}
    broken["surprise"] = {"kernel": np.ones(2, np.float32)}
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(broken))
    with pytest.raises(WeightFormatError, match=r"norm_init/scale has shape \(32,\)") as info:
        load_berkeley_pickle(path)
    assert "surprise/kernel" in str(info.value)
    with pytest.raises(WeightFormatError):
        save_resnet10(tmp_path / "never.safetensors", broken)
    assert not (tmp_path / "never.safetensors").exists()


def test_safetensors_with_flax_keys_but_no_metadata_is_refused(tmp_path, params):
    path = tmp_path / "anon.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in _flat(params).items()}, str(path))
    with pytest.raises(WeightFormatError, match="hiljax metadata"):
        load_resnet10(path)


def test_group_norm_epsilon_matches_berkeley(params, images):
    # Tiny stem kernels make the stem's variance comparable to epsilon (1e-5 in Berkeley's
    # MyGroupNorm, not flax's 1e-6 default), so a wrong epsilon shows up in the output.
    quiet = {k: dict(v) for k, v in params.items()}
    quiet["conv_init"] = {"kernel": params["conv_init"]["kernel"] * 1e-3}
    assert_matches_reference(quiet, images, resnet10_forward(quiet, images))
