"""LeRobot `pretrained_model` directories of a SAC policy, both ways (numpy only).

    write_sac_pretrained(out_dir, config, params, target_params)
    config, params, target_params = read_sac_pretrained(in_dir)

The directory is what `SACPolicy.save_pretrained` writes and `SACPolicy.from_pretrained` reads:
`config.json` (LeRobot's SACConfig fields, "type": "sac") and `model.safetensors` (the full
policy, shared tensors stored once). hiljax adds `hiljax_extra.safetensors` (the Polyak target
encoder LeRobot does not have, and hiljax's own config in its metadata) so that a round trip is
exact; LeRobot never opens it.

Normalisation. LeRobot 0.4's RL actor and learner feed observations to the policy as the env
produces them (dataset_stats are not applied in `lerobot.rl`), and so does hiljax: the networks
see raw observations on both sides. An export writes `dataset_stats` that make LeRobot's
normaliser processors the identity for states and actions, so LeRobot's processor pipelines
(record / eval with a policy) choose the same action too; for cameras they hold the ImageNet
mean/std when hiljax normalises pixels that way, so those pipelines feed the ResNet exactly what
hiljax does. An import keeps LeRobot's config as it was (`lerobot_config.json` in the hiljax
run) so an export of the same model writes it back, and says so when its stats are not the
identity.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from hiljax.config import ConfigError, SACConfig, from_dict, is_image_key, to_dict
from hiljax.storage.files import write_atomic, write_json_atomic

from .layouts import DEFAULT_LAYOUT, HUB_RESNET10
from .lerobot_sac import check_supported, policy_from_state_dict, policy_state_dict
from .safetensors_io import read_shared, write_shared
from .tables import LayoutError

log = logging.getLogger(__name__)

CONFIG_FILE, MODEL_FILE, EXTRA_FILE = "config.json", "model.safetensors", "hiljax_extra.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATION_MAPPING = {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ENV": "MIN_MAX",
                         "ACTION": "MIN_MAX"}
# SACConfig fields with the same name and meaning in LeRobot's SACConfig.
SHARED_FIELDS = (
    "num_discrete_actions", "freeze_vision_encoder", "shared_encoder",
    "image_embedding_pooling_dim", "discount", "temperature_init", "num_critics",
    "num_subsample_critics", "critic_lr", "actor_lr", "temperature_lr",
    "critic_target_update_weight", "utd_ratio", "policy_update_freq", "target_entropy",
    "use_backup_entropy", "grad_clip_norm", "latent_dim", "state_encoder_hidden_dim",
    "online_buffer_capacity", "offline_buffer_capacity", "online_step_before_learning",
    "online_steps",
)
NETWORK_KWARGS = ("critic_network_kwargs", "actor_network_kwargs", "policy_kwargs",
                  "discrete_critic_network_kwargs")


# ---------------------------------------------------------------------------------------------
# Configs.


def _feature_type(key: str) -> str:
    if is_image_key(key):
        return "VISUAL"
    return "ENV" if key == "observation.environment_state" else "STATE"


def _identity_stats(config: SACConfig) -> dict:
    """dataset_stats under which LeRobot's normaliser leaves states and actions as they are
    (MIN_MAX over [-1, 1] is the identity) and scales pixels as hiljax's ResNet10 does."""
    stats = {}
    for key, shape in config.input_features.items():
        if is_image_key(key):
            imagenet = config.image_normalization == "imagenet"
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else ((0.0,) * 3, (1.0,) * 3)
            stats[key] = {"mean": [[[m]] for m in mean], "std": [[[s]] for s in std]}
        else:
            stats[key] = {"min": [-1.0] * shape[0], "max": [1.0] * shape[0]}
    dim = config.continuous_action_dim
    stats["action"] = {"min": [-1.0] * dim, "max": [1.0] * dim}
    return stats


def lerobot_config(config: SACConfig) -> dict:
    """LeRobot's SACConfig (config.json) for a hiljax policy."""
    check_supported(config)
    cameras = list(config.image_keys)  # sorted: the order hiljax concatenates them
    states = [k for k in config.input_features if not is_image_key(k)]
    features = {}
    for key in cameras + states:
        shape = list(config.input_features[key])
        if is_image_key(key):
            shape = [shape[2], shape[0], shape[1]]  # hiljax HWC -> LeRobot CHW
        features[key] = {"type": _feature_type(key), "shape": shape}
    out = {
        "type": "sac",
        "n_obs_steps": 1,
        "input_features": features,
        "output_features": {"action": {"type": "ACTION", "shape": [config.continuous_action_dim]}},
        "device": "cpu",
        "use_amp": False,
        "normalization_mapping": dict(NORMALIZATION_MAPPING),
        "dataset_stats": _identity_stats(config),
        "storage_device": "cpu",
        "vision_encoder_name": HUB_RESNET10 if config.image_keys else None,
        "use_torch_compile": False,  # compiled critics change the state-dict names
    }
    out.update({name: getattr(config, name) for name in SHARED_FIELDS})
    out.update({name: to_dict(getattr(config, name)) for name in NETWORK_KWARGS})
    return out


def sac_config_from_lerobot(data: Mapping, hiljax_policy: Mapping | None = None) -> SACConfig:
    """hiljax's SACConfig for LeRobot's config.json. Fields hiljax does not have are left out;
    `hiljax_policy` (from hiljax_extra) restores hiljax-only fields of an exported model."""
    if data.get("type") != "sac":
        raise ConfigError(f"not a LeRobot SAC config (type {data.get('type')!r})")
    features, images = {}, []
    for key, spec in dict(data.get("input_features") or {}).items():
        shape = [int(d) for d in spec["shape"]]
        if is_image_key(key):
            images.append(key)
            shape = [shape[1], shape[2], shape[0]]  # LeRobot CHW -> hiljax HWC
        features[key] = shape
    if images != sorted(images):
        raise LayoutError(f"cameras {images} are not in sorted order: hiljax concatenates "
                          "camera latents sorted by key, LeRobot in input_features order")
    action = data.get("output_features", {}).get("action", {}).get("shape")
    if not action:
        raise ConfigError("LeRobot config without output_features.action")
    vision = data.get("vision_encoder_name")
    if images and vision != HUB_RESNET10:
        raise LayoutError(f"vision_encoder_name {vision!r}: hiljax has LeRobot's "
                          f"{HUB_RESNET10} (resnet10) only")
    policy = dict(hiljax_policy or {})
    policy.update({name: data[name] for name in SHARED_FIELDS if name in data})
    policy.update({name: _known(data[name], name) for name in NETWORK_KWARGS if name in data})
    policy.update(input_features=features, continuous_action_dim=int(action[0]),
                  vision_encoder_name="resnet10" if images else None,
                  pretrained_vision_weights=None, layer_norm_eps=1e-5)
    if hiljax_policy is None:
        policy["image_normalization"] = "none"  # LeRobot 0.4's SAC feeds [0, 1] pixels
    return from_dict(SACConfig, policy, "LeRobot config")


def _known(kwargs: Mapping, name: str) -> dict:
    """LeRobot's *_kwargs without the entries hiljax does not model (warned, not fatal)."""
    known = {"hidden_dims", "activate_final", "final_activation", "use_tanh_squash",
             "std_min", "std_max", "init_final"}
    dropped = sorted(set(kwargs) - known)
    if dropped:
        log.warning("LeRobot %s: ignoring %s", name, dropped)
    return {k: v for k, v in kwargs.items() if k in known}


def stats_are_identity(data: Mapping) -> bool:
    """Whether LeRobot's dataset_stats leave states and actions unchanged (MIN_MAX over [-1, 1]
    or MEAN_STD with mean 0 and std 1); images are judged by image_normalization instead."""
    mapping = {**NORMALIZATION_MAPPING, **dict(data.get("normalization_mapping") or {})}
    for key, stats in dict(data.get("dataset_stats") or {}).items():
        if is_image_key(key):
            continue
        mode = mapping.get("ACTION" if key == "action" else _feature_type(key))
        if mode == "MIN_MAX" and not (np.allclose(stats.get("min", -1), -1)
                                      and np.allclose(stats.get("max", 1), 1)):
            return False
        if mode == "MEAN_STD" and not (np.allclose(stats.get("mean", 0), 0)
                                       and np.allclose(stats.get("std", 1), 1)):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Directories.


def write_sac_pretrained(out_dir: str | Path, config: SACConfig, params: Mapping,
                         target_params: Mapping, *, lerobot_config_json: Mapping | None = None,
                         version: str = DEFAULT_LAYOUT) -> Path:
    """Write a LeRobot pretrained_model directory. `lerobot_config_json`: the LeRobot config an
    imported model came with (its stats and fields are kept), else one made from `config`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state, hiljax_only = policy_state_dict(config, params, target_params, version=version)
    data = dict(lerobot_config_json) if lerobot_config_json else {}
    data.update(lerobot_config(config))
    if lerobot_config_json and "dataset_stats" in lerobot_config_json:
        data["dataset_stats"] = lerobot_config_json["dataset_stats"]
    write_shared(out / MODEL_FILE, state)
    write_json_atomic(out / CONFIG_FILE, data)
    extra = {k: np.ascontiguousarray(v) for k, v in hiljax_only.items()}
    _write_extra(out / EXTRA_FILE, extra, {"hiljax_policy": json.dumps(to_dict(config)),
                                           "lerobot_layout": version})
    return out


def _write_extra(path: Path, tensors: dict, metadata: dict) -> None:
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


@dataclasses.dataclass
class SACPretrained:
    config: SACConfig
    params: dict
    target_params: dict
    lerobot_config: dict  # config.json as read


def read_sac_pretrained(in_dir: str | Path, *, version: str = DEFAULT_LAYOUT) -> SACPretrained:
    """A LeRobot SAC pretrained_model directory (from LeRobot, or exported by hiljax)."""
    root = Path(in_dir)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (root / name).is_file():
            raise ConfigError(f"{root} is not a LeRobot pretrained_model directory: no {name}")
    try:
        data = json.loads((root / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{root / CONFIG_FILE} is not valid JSON: {error}") from error
    hiljax_only, hiljax_policy = {}, None
    if (root / EXTRA_FILE).is_file():
        extra, meta = read_shared(root / EXTRA_FILE)
        hiljax_only = extra
        hiljax_policy = json.loads(meta["hiljax_policy"]) if "hiljax_policy" in meta else None
    config = sac_config_from_lerobot(data, hiljax_policy)
    if not stats_are_identity(data):
        log.warning("%s: its dataset_stats are not the identity. LeRobot's RL actor and learner "
                    "(0.4) do not apply them and neither does hiljax: the policy acts on "
                    "observations as the env gives them; the stats are kept for the way back",
                    root)
    state, _ = read_shared(root / MODEL_FILE)
    params, target = policy_from_state_dict(config, state, hiljax_only, version=version)
    return SACPretrained(config, params, target, data)


