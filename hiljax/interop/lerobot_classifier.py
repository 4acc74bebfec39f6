"""hiljax's reward classifier <-> LeRobot 0.4's `Classifier` (reward_classifier), numpy only.

    state = classifier_state_dict(config_fields, params, backbone)      # Classifier.state_dict()
    params, backbone = classifier_from_state_dict(config_fields, state)
    write_classifier_pretrained(out_dir, config_fields, params, backbone, image_shapes)
    config_fields, params, backbone, image_shapes = read_classifier_pretrained(in_dir)

`config_fields` is a plain dict of hiljax ClassifierConfig fields (hiljax.classifier imports JAX,
this package may not), `params` the ClassifierNetwork tree, `backbone` the ResNet10 tree.

The directory is what LeRobot's `Classifier.save_pretrained` writes: `config.json` (only
RewardClassifierConfig's fields: LeRobot parses it strictly, an unknown field is an error) and
`model.safetensors` (the hub ResNet10 under `encoder.` and again, the same tensors, under each
camera's `encoders.<cam>.0.`; stored once with aliases). hiljax adds:
- `classifier_preprocessor.json` + its normaliser state: what LeRobot's
  `make_classifier_processor(config, stats)` saves. LeRobot feeds the ResNet images normalised
  with these VISUAL MEAN_STD stats, so an export writes ImageNet's (image_normalization
  "imagenet") or mean 0 / std 1 ("none"): LeRobot's ResNet then sees what hiljax's does.
- `hiljax_classifier.json`: hiljax's whole config (threshold, schedule ...) for an exact round
  trip; LeRobot never opens it.

Camera order: LeRobot concatenates camera latents in `input_features` order, hiljax in
`image_keys` order; an export lists the cameras in image_keys order and an import takes
image_keys from input_features, so the head sees the same concatenation both ways.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
from safetensors.numpy import save_file

from hiljax.config import is_image_key
from hiljax.storage.files import write_atomic, write_json_atomic

from .layouts import (
    CLASSIFIER_LAYOUTS,
    HUB_RESNET10,
    HUB_RESNET10_DOWNSAMPLING,
    HUB_RESNET10_STAGE_FILTERS,
    HUB_RESNET10_STEM_FILTERS,
    RESNET10_SHORTCUT_STAGES,
    ClassifierLayout,
)
from .lerobot_pretrained import IMAGENET_MEAN, IMAGENET_STD
from .lerobot_sac import module_name, resnet10_rules
from .safetensors_io import read_shared, write_shared
from .tables import (
    LayoutError,
    Rule,
    check_shapes,
    expand,
    flatten,
    from_lerobot,
    to_lerobot,
    unflatten,
)

log = logging.getLogger(__name__)

CONFIG_FILE, MODEL_FILE, HILJAX_FILE = "config.json", "model.safetensors", "hiljax_classifier.json"
LEROBOT_TYPE = "reward_classifier"
PREPROCESSOR = "classifier_preprocessor"  # make_classifier_processor's pipeline name
STATS_FILE = f"{PREPROCESSOR}_step_0_normalizer_processor.safetensors"
LEROBOT_NORMALIZER_EPS = 1e-8  # NormalizerProcessorStep's default
TORCH_LAYER_NORM_EPS = 1e-5  # LeRobot's nn.LayerNorm is built with torch's default
# ClassifierConfig fields with the same name and meaning in LeRobot's RewardClassifierConfig,
# with LeRobot's defaults (what LeRobot uses when its config.json leaves one out).
LEROBOT_DEFAULTS = {"num_classes": 2, "hidden_dim": 256, "latent_dim": 256,
                    "image_embedding_pooling_dim": 8, "dropout_rate": 0.1, "learning_rate": 1e-4,
                    "weight_decay": 0.01, "grad_clip_norm": 1.0}


def layout_of(version: str) -> ClassifierLayout:
    if version not in CLASSIFIER_LAYOUTS:
        raise LayoutError(f"unknown LeRobot classifier layout {version!r}; supported: "
                          f"{sorted(CLASSIFIER_LAYOUTS)}")
    return CLASSIFIER_LAYOUTS[version]


def _field(config_fields: Mapping, name: str):
    if name not in config_fields:
        raise LayoutError(f"classifier config without {name!r}")
    return config_fields[name]


def _cameras(config_fields: Mapping) -> list[str]:
    cameras = list(_field(config_fields, "image_keys"))
    if not cameras:
        raise LayoutError("the classifier's image_keys are empty (resolve them before export)")
    return cameras


def check_supported(config_fields: Mapping) -> None:
    """What LeRobot 0.4's Classifier can express; anything else has no faithful translation."""
    if _field(config_fields, "model_name") != "resnet10":
        raise LayoutError(f"only the resnet10 backbone has a LeRobot counterpart ({HUB_RESNET10}),"
                          f" not {config_fields['model_name']!r}")
    if float(_field(config_fields, "layer_norm_eps")) != TORCH_LAYER_NORM_EPS:
        raise LayoutError(f"LeRobot's LayerNorms use eps {TORCH_LAYER_NORM_EPS}, not "
                          f"{config_fields['layer_norm_eps']}")
    _cameras(config_fields)


# ---------------------------------------------------------------------------------------------
# Names and shapes: hiljax paths "network/..." (ClassifierNetwork), "backbone/..." (ResNet10).


def classifier_rules(config_fields: Mapping, version: str = "0.4") -> list[Rule]:
    layout = layout_of(version)
    out = resnet10_rules("backbone/", layout.backbone)
    for camera in map(module_name, _cameras(config_fields)):
        out += resnet10_rules("backbone/", layout.camera_backbone.format(camera=camera))
        out += expand(layout.camera, [{"camera": camera}], hiljax_prefix="network/")
    return out + expand(layout.head, [{}], hiljax_prefix="network/")


def expected_shapes(config_fields: Mapping, version: str = "0.4") -> dict[str, tuple]:
    """Every hiljax leaf's shape for a config (the hub ResNet10's widths are fixed)."""
    height, width = layout_of(version).spatial_size
    shapes = {"backbone/conv_init/kernel": (7, 7, 3, HUB_RESNET10_STEM_FILTERS)}
    _norm(shapes, "backbone/norm_init", HUB_RESNET10_STEM_FILTERS)
    channels = HUB_RESNET10_STEM_FILTERS
    for b, filters in enumerate(HUB_RESNET10_STAGE_FILTERS):
        block = f"backbone/ResNetBlock_{b}"
        shapes[f"{block}/Conv_0/kernel"] = (3, 3, channels, filters)
        shapes[f"{block}/Conv_1/kernel"] = (3, 3, filters, filters)
        _norm(shapes, f"{block}/MyGroupNorm_0", filters)
        _norm(shapes, f"{block}/MyGroupNorm_1", filters)
        if b in RESNET10_SHORTCUT_STAGES:  # stage 0 keeps 64 channels at stride 1
            shapes[f"{block}/conv_proj/kernel"] = (1, 1, channels, filters)
            _norm(shapes, f"{block}/norm_proj", filters)
        channels = filters
    latent = int(_field(config_fields, "latent_dim"))
    hidden = int(_field(config_fields, "hidden_dim"))
    pooling = int(_field(config_fields, "image_embedding_pooling_dim"))
    cameras = [module_name(k) for k in _cameras(config_fields)]
    for camera in cameras:
        prefix = "network/encoder/"
        shapes[f"{prefix}camera_{camera}/spatial_kernel"] = (height, width, channels, pooling)
        shapes[f"{prefix}camera_{camera}/kernel"] = (channels * pooling, latent)
        shapes[f"{prefix}camera_{camera}/bias"] = (latent,)
        _norm(shapes, f"{prefix}norm_{camera}", latent)
    num_classes = int(_field(config_fields, "num_classes"))
    outputs = 1 if num_classes == 2 else num_classes  # binary: ONE logit (sigmoid), as LeRobot
    shapes.update({"network/hidden/kernel": (latent * len(cameras), hidden),
                   "network/hidden/bias": (hidden,),
                   "network/logits/kernel": (hidden, outputs), "network/logits/bias": (outputs,)})
    _norm(shapes, "network/hidden_norm", hidden)
    return shapes


def _norm(shapes: dict, prefix: str, channels: int) -> None:
    shapes[f"{prefix}/scale"] = shapes[f"{prefix}/bias"] = (channels,)


# ---------------------------------------------------------------------------------------------
# State dicts.


def classifier_state_dict(config_fields: Mapping, params: Mapping, backbone: Mapping,
                          version: str = "0.4") -> dict[str, np.ndarray]:
    """Classifier.state_dict() as numpy. The ResNet10's keys under `encoder.` and under every
    `encoders.<cam>.0.` hold the SAME array objects, so write_shared stores them once."""
    check_supported(config_fields)
    flat = flatten({"network": params, "backbone": backbone})
    check_shapes(flat, expected_shapes(config_fields, version), "hiljax classifier")
    return to_lerobot(flat, classifier_rules(config_fields, version), memo={})


def classifier_from_state_dict(config_fields: Mapping, state: Mapping[str, np.ndarray],
                               version: str = "0.4") -> tuple[dict, dict]:
    """(params, backbone) from Classifier.state_dict(). Missing or unexpected keys, copies of
    the shared ResNet10 that differ, and wrong shapes raise LayoutError naming the key."""
    check_supported(config_fields)
    table = classifier_rules(config_fields, version)
    flat = from_lerobot(state, table, where="LeRobot Classifier state dict")
    expected = expected_shapes(config_fields, version)
    wrong, seen = [], set()
    for rule in table:
        if rule.hiljax in seen or tuple(flat[rule.hiljax].shape) == expected[rule.hiljax]:
            continue
        seen.add(rule.hiljax)
        zeros = {rule.hiljax: np.broadcast_to(np.float32(0), expected[rule.hiljax])}
        want = to_lerobot(zeros, [rule])[rule.lerobot].shape
        wrong.append(f"{rule.lerobot} {tuple(np.shape(state[rule.lerobot]))} (expected {want})")
    if wrong:
        raise LayoutError("LeRobot Classifier state dict does not fit its config: wrong shape: "
                          + "; ".join(wrong[:8]))
    tree = unflatten(flat)
    return tree["network"], tree["backbone"]


# ---------------------------------------------------------------------------------------------
# Configs and image statistics.


def lerobot_classifier_config(config_fields: Mapping, image_shapes: Mapping,
                              version: str = "0.4") -> dict:
    """LeRobot's RewardClassifierConfig (config.json): only fields every LeRobot 0.4.x knows
    (LeRobot parses config.json strictly: 0.4.0-0.4.2 would refuse 0.4.3's use_peft)."""
    check_supported(config_fields)
    cameras = _cameras(config_fields)
    spatial = layout_of(version).spatial_size
    features = {}
    for key in cameras:
        h, w, c = (int(d) for d in image_shapes[key])
        if (-(-h // HUB_RESNET10_DOWNSAMPLING), -(-w // HUB_RESNET10_DOWNSAMPLING)) != spatial:
            raise LayoutError(f"{key}: {h}x{w} images give a feature map other than LeRobot's "
                              f"hard-coded {spatial[0]}x{spatial[1]} (its Classifier takes "
                              "97..128-pixel images, e.g. 128x128)")
        features[key] = {"type": "VISUAL", "shape": [c, h, w]}  # hiljax HWC -> LeRobot CHW
    out = {"type": LEROBOT_TYPE, "n_obs_steps": 1, "input_features": features,
           "output_features": {}, "device": "cpu", "use_amp": False, "push_to_hub": False,
           "repo_id": None, "private": None, "tags": None, "license": None,
           "pretrained_path": None, "name": LEROBOT_TYPE}
    out.update({name: _field(config_fields, name) for name in LEROBOT_DEFAULTS})
    out.update(model_name=HUB_RESNET10, model_type="cnn", num_cameras=len(cameras),
               normalization_mapping={"VISUAL": "MEAN_STD"})
    return out


def image_stats(config_fields: Mapping) -> dict[str, dict[str, list]]:
    """Per-camera VISUAL stats under which LeRobot's normaliser feeds the ResNet10 what hiljax's
    does: ImageNet mean/std, or mean 0 / std 1 (pixels in [0, 1] as they are)."""
    imagenet = _field(config_fields, "image_normalization") == "imagenet"
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else ((0.0,) * 3, (1.0,) * 3)
    return {key: {"mean": [[[m]] for m in mean], "std": [[[s]] for s in std]}
            for key in _cameras(config_fields)}


def _preprocessor(lerobot_config: Mapping) -> dict:
    """classifier_preprocessor.json as LeRobot's pipeline save writes it (normaliser + device)."""
    normalizer = {"eps": LEROBOT_NORMALIZER_EPS, "features": lerobot_config["input_features"],
                  "norm_map": dict(lerobot_config["normalization_mapping"])}
    return {"name": PREPROCESSOR, "steps": [
        {"registry_name": "normalizer_processor", "config": normalizer, "state_file": STATS_FILE},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
    ]}


def _read_stats(root: Path, data: Mapping, cameras: list[str]) -> dict[str, dict] | None:
    """Camera stats from config.json's dataset_stats (other exporters put them there) or from
    the saved preprocessor's normaliser state; None when neither has any."""
    stats = dict(data.get("dataset_stats") or {})
    if not stats:
        for path in sorted(root.glob("*preprocessor_step_*_normalizer_processor.safetensors")):
            state, _ = read_shared(path)
            stats = {key: {"mean": state[f"{key}.mean"], "std": state[f"{key}.std"]}
                     for key in cameras if f"{key}.mean" in state and f"{key}.std" in state}
            if stats:
                break
    found = {key: stats[key] for key in cameras if key in stats}
    return found or None


def image_normalization_of(root: Path, data: Mapping, cameras: list[str]) -> str:
    """hiljax's image_normalization for the pixels LeRobot's processor feeds the ResNet10."""
    mode = dict(data.get("normalization_mapping") or {}).get("VISUAL", "MEAN_STD")
    if mode == "IDENTITY":
        return "none"
    if mode != "MEAN_STD":
        raise LayoutError(f"{root}: VISUAL normalisation {mode!r}: hiljax's ResNet10 takes "
                          "MEAN_STD with ImageNet's or the identity's stats only")
    stats = _read_stats(root, data, cameras)
    if stats is None:
        log.warning("%s: no image stats for %s; assuming ImageNet mean/std (image_normalization "
                    "'imagenet', what the ResNet10 was pretrained with)", root, cameras)
        return "imagenet"
    missing = [key for key in cameras if key not in stats]
    if missing:
        raise LayoutError(f"{root}: image stats for some cameras but not for {missing}")
    kinds = {key: _stats_kind(s) for key, s in stats.items()}
    if None in kinds.values() or len(set(kinds.values())) > 1:
        raise LayoutError(f"{root}: image stats {_described(stats)} are neither ImageNet's "
                          f"mean {IMAGENET_MEAN} / std {IMAGENET_STD} nor mean 0 / std 1 for "
                          "every camera; hiljax's ResNet10 normalises pixels one of these ways")
    return next(iter(kinds.values()))


def _stats_kind(stats: Mapping) -> str | None:
    mean = np.asarray(stats.get("mean"), np.float64).reshape(-1)
    std = np.asarray(stats.get("std"), np.float64).reshape(-1)
    if mean.shape != (3,) or std.shape != (3,):
        return None
    if np.allclose(mean, IMAGENET_MEAN, atol=1e-4) and np.allclose(std, IMAGENET_STD, atol=1e-4):
        return "imagenet"
    if np.allclose(mean, 0.0, atol=1e-6) and np.allclose(std, 1.0, atol=1e-6):
        return "none"
    return None


def _described(stats: Mapping) -> str:
    def listed(values) -> list:
        return np.asarray(values, np.float64).reshape(-1).round(4).tolist()
    return "; ".join(f"{key}: mean {listed(s.get('mean'))}, std {listed(s.get('std'))}"
                     for key, s in stats.items())


def classifier_fields_from_lerobot(root: Path, data: Mapping, hiljax_fields: Mapping | None = None
                                   ) -> tuple[dict, dict]:
    """(ClassifierConfig fields, image_shapes (H, W, 3)) for LeRobot's config.json. Fields
    LeRobot has win over `hiljax_fields` (hiljax_classifier.json of an exported model)."""
    if data.get("type") != LEROBOT_TYPE:
        raise LayoutError(f"{root}: not a LeRobot reward classifier (type {data.get('type')!r})")
    if data.get("model_type", "cnn") != "cnn" or data.get("model_name") != HUB_RESNET10:
        raise LayoutError(f"{root}: model {data.get('model_name')!r} ({data.get('model_type')}): "
                          f"hiljax has LeRobot's cnn {HUB_RESNET10} only")
    cameras, image_shapes = [], {}
    for key, spec in dict(data.get("input_features") or {}).items():
        if not is_image_key(key):
            continue  # LeRobot's Classifier looks at the cameras only
        shape = list(spec.get("shape") or [])
        if len(shape) != 3 or shape[0] != 3:
            raise LayoutError(f"{root}: camera {key} has shape {shape}, expected [3, H, W]")
        cameras.append(key)
        image_shapes[key] = (int(shape[1]), int(shape[2]), 3)  # LeRobot CHW -> hiljax HWC
    if not cameras:
        raise LayoutError(f"{root}: no camera in input_features")
    if int(data.get("num_cameras", len(cameras))) != len(cameras):
        raise LayoutError(f"{root}: num_cameras {data['num_cameras']} but input_features has "
                          f"{len(cameras)} cameras {cameras}")
    fields = dict(hiljax_fields or {})
    fields.update({name: data.get(name, default) for name, default in LEROBOT_DEFAULTS.items()})
    fields.update(model_name="resnet10", pretrained_vision_weights=None, image_keys=cameras,
                  layer_norm_eps=TORCH_LAYER_NORM_EPS,
                  image_normalization=image_normalization_of(root, data, cameras))
    return fields, image_shapes


# ---------------------------------------------------------------------------------------------
# Directories.


class ClassifierPretrained(NamedTuple):
    config_fields: dict  # ClassifierConfig fields
    params: dict  # ClassifierNetwork parameters
    backbone: dict  # ResNet10 parameters
    image_shapes: dict  # camera -> (H, W, 3)


def is_lerobot_classifier_dir(path: str | Path) -> bool:
    """A LeRobot reward-classifier pretrained_model directory (config.json "type"
    reward_classifier and model.safetensors)?"""
    root = Path(path)
    if not (root / CONFIG_FILE).is_file() or not (root / MODEL_FILE).is_file():
        return False
    try:
        data = json.loads((root / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("type") == LEROBOT_TYPE


def write_classifier_pretrained(out_dir: str | Path, config_fields: Mapping, params: Mapping,
                                backbone: Mapping, image_shapes: Mapping, *,
                                version: str = "0.4") -> Path:
    """Write a LeRobot reward-classifier pretrained_model directory (see the module doc)."""
    out = Path(out_dir)
    data = lerobot_classifier_config(config_fields, image_shapes, version)
    state = classifier_state_dict(config_fields, params, backbone, version)
    stats = {f"{key}.{name}": np.asarray(values, np.float32)
             for key, s in image_stats(config_fields).items() for name, values in s.items()}
    out.mkdir(parents=True, exist_ok=True)
    write_shared(out / MODEL_FILE, state)
    write_atomic(out / STATS_FILE, lambda tmp: save_file(stats, str(tmp)))
    write_json_atomic(out / f"{PREPROCESSOR}.json", _preprocessor(data))
    write_json_atomic(out / HILJAX_FILE, {"config": dict(config_fields), "lerobot_layout": version})
    write_json_atomic(out / CONFIG_FILE, data)  # last: its presence marks a complete directory
    return out


def read_classifier_pretrained(in_dir: str | Path, *, version: str = "0.4") -> ClassifierPretrained:
    """A LeRobot reward-classifier pretrained_model directory (from LeRobot, or exported)."""
    root = Path(in_dir)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (root / name).is_file():
            raise LayoutError(f"{root} is not a LeRobot pretrained_model directory: no {name}")
    data = _read_json(root / CONFIG_FILE)
    hiljax_fields = _read_json(root / HILJAX_FILE).get("config") \
        if (root / HILJAX_FILE).is_file() else None
    fields, image_shapes = classifier_fields_from_lerobot(root, data, hiljax_fields)
    state, _ = read_shared(root / MODEL_FILE)
    params, backbone = classifier_from_state_dict(fields, state, version)
    return ClassifierPretrained(fields, params, backbone, image_shapes)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LayoutError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: not a JSON object")
    return data
