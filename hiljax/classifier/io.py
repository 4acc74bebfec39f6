"""Save and load a reward classifier: one self-contained directory, no pickle.

    <dir>/config.json          {"format", "version", "config": ClassifierConfig, "image_shapes",
                                "threshold", "metrics"}   (human-readable)
    <dir>/model.safetensors    "backbone/<path>" (the frozen backbone, so nothing else is needed)
                               and "network/<path>" tensors; metadata: format, version and a
                               CRC32 of every tensor (safetensors alone cannot see flipped bytes)

Every file is written to a temporary name and renamed into place. A missing, truncated or
corrupt file, or parameters that do not fit the config, raise ClassifierFileError (a
ValueError) naming the file and what is wrong.

A LeRobot 0.4 reward-classifier directory (`Classifier.save_pretrained`: config.json with "type"
"reward_classifier" + model.safetensors) is read as well (`read_classifier_dir` tells them
apart), and `export_classifier_to_lerobot` writes one (hiljax.interop.lerobot_classifier).

This module knows files, not the RewardClassifier: `hiljax.classifier.predict` builds one from
what `read_classifier_dir` returns, and hands its parts to `write_classifier_files`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from pathlib import Path

import jax
import numpy as np
from flax import traverse_util
from safetensors import safe_open
from safetensors.numpy import save_file

from hiljax.config import ConfigError, from_dict, to_dict
from hiljax.interop.lerobot_classifier import (
    is_lerobot_classifier_dir,
    read_classifier_pretrained,
    write_classifier_pretrained,
)
from hiljax.interop.tables import LayoutError
from hiljax.storage.files import write_atomic, write_json_atomic

from .config import ClassifierConfig
from .model import backbone_feature_shapes, init_backbone_params, init_network_params

FORMAT, VERSION = "hiljax-reward-classifier", 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
PARTS = ("backbone", "network")
_MAX_LISTED = 6


class ClassifierFileError(ValueError):
    """A saved classifier that cannot be loaded as written (missing, truncated, corrupt...)."""


def write_classifier_files(path: str | os.PathLike, *, config: ClassifierConfig,
                           backbone_params, params, image_shapes: dict, threshold: float,
                           metrics: dict, overwrite: bool = False) -> Path:
    """Write a classifier's parts into directory `path` (created); refuses to replace a saved
    one unless `overwrite`. Returns the directory."""
    directory = Path(path)
    if (directory / CONFIG_FILE).exists() and not overwrite:
        raise FileExistsError(f"{directory} already holds a classifier; pass overwrite=True")
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for part, tree in zip(PARTS, (backbone_params, params)):
        flat = traverse_util.flatten_dict(jax.device_get(tree), sep="/")
        tensors.update({f"{part}/{name}": np.ascontiguousarray(v) for name, v in flat.items()})
    metadata = {"format": FORMAT, "version": str(VERSION),
                "crc32": json.dumps({name: _crc(v) for name, v in tensors.items()})}
    write_atomic(directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata))
    document = {
        "format": FORMAT,
        "version": VERSION,
        "config": to_dict(config),
        "image_shapes": {k: list(v) for k, v in image_shapes.items()},
        "threshold": threshold,
        "metrics": metrics,
    }
    write_json_atomic(directory / CONFIG_FILE, document)
    return directory


def read_classifier_files(path: str | os.PathLike) -> dict:
    """The parts of the classifier saved in directory `path`: the keyword arguments of
    RewardClassifier (config, backbone_params, params, image_shapes, threshold, metrics)."""
    directory = Path(path)
    if not directory.is_dir():
        raise ClassifierFileError(f"no saved classifier at {directory} (not a directory)")
    document = _read_document(directory / CONFIG_FILE)
    try:
        config = from_dict(ClassifierConfig, document["config"], "config")
    except ConfigError as exc:
        raise ClassifierFileError(f"{directory / CONFIG_FILE}: {exc}") from exc
    image_shapes = _image_shapes(document, config, directory / CONFIG_FILE)
    tensors = _read_tensors(directory / WEIGHTS_FILE)
    expected = _expected_shapes(config, image_shapes)
    _check_shapes(tensors, expected, directory / WEIGHTS_FILE)
    trees = {part: traverse_util.unflatten_dict(
        {name[len(part) + 1:]: v for name, v in tensors.items() if name.startswith(part + "/")},
        sep="/") for part in PARTS}
    threshold = document.get("threshold", config.threshold)
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ClassifierFileError(f"{directory / CONFIG_FILE}: threshold must be a number in "
                                  f"[0, 1], got {threshold!r}")
    return {"config": config, "backbone_params": trees["backbone"], "params": trees["network"],
            "image_shapes": image_shapes, "threshold": float(threshold),
            "metrics": document.get("metrics") or {}}


def read_classifier_dir(path: str | os.PathLike) -> dict:
    """Like `read_classifier_files`, for a hiljax classifier or a LeRobot one."""
    if is_lerobot_classifier_dir(path):
        return read_lerobot_classifier_files(path)
    return read_classifier_files(path)


def read_lerobot_classifier_files(path: str | os.PathLike) -> dict:
    """RewardClassifier's keyword arguments from a LeRobot reward-classifier directory. LeRobot
    keeps no decision threshold (its env config has one): the config's (or hiljax's saved one,
    for a directory hiljax exported) is used."""
    directory = Path(path)
    try:
        pretrained = read_classifier_pretrained(directory)
        config = from_dict(ClassifierConfig, pretrained.config_fields, "LeRobot classifier")
    except (LayoutError, ConfigError) as exc:
        raise ClassifierFileError(f"{directory} (LeRobot reward classifier): {exc}") from exc
    image_shapes = dict(pretrained.image_shapes)
    # Checked against the JAX model's own shapes too (as hiljax's files are), not only the
    # shapes the LeRobot tables expect: the two must never drift apart unnoticed.
    trees = {"backbone": pretrained.backbone, "network": pretrained.params}
    tensors = {f"{part}/{name}": v for part, tree in trees.items()
               for name, v in traverse_util.flatten_dict(tree, sep="/").items()}
    _check_shapes(tensors, _expected_shapes(config, image_shapes), directory / WEIGHTS_FILE)
    return {"config": config, "backbone_params": pretrained.backbone,
            "params": pretrained.params, "image_shapes": image_shapes,
            "threshold": config.threshold, "metrics": {}}


def export_classifier_to_lerobot(classifier_path: str | os.PathLike, out_dir: str | os.PathLike,
                                 overwrite: bool = False) -> Path:
    """Write the classifier saved in `classifier_path` (hiljax's, or a LeRobot one) as a LeRobot
    0.4 reward-classifier directory `out_dir`, which LeRobot's `Classifier.from_pretrained`
    loads. Refuses to replace an existing config.json unless `overwrite`. Returns `out_dir`.
    Raises LayoutError (a ValueError) for a classifier LeRobot cannot express: a backbone
    other than resnet10, or images whose feature map is not LeRobot's hard-coded 4x4."""
    out = Path(out_dir)
    if (out / CONFIG_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a {CONFIG_FILE}; pass overwrite=True")
    parts = read_classifier_dir(classifier_path)
    # The saved threshold travels in hiljax's config (hiljax_classifier.json).
    config = dataclasses.replace(parts["config"], threshold=parts["threshold"])
    return write_classifier_pretrained(out, to_dict(config), jax.device_get(parts["params"]),
                                       jax.device_get(parts["backbone_params"]),
                                       parts["image_shapes"])


def _read_document(path: Path) -> dict:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ClassifierFileError(f"{path} is missing: not a saved classifier") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClassifierFileError(f"{path} is not valid JSON (truncated?): {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ClassifierFileError(f"{path}: not a {FORMAT} file")
    if document.get("version") != VERSION:
        raise ClassifierFileError(f"{path}: version {document.get('version')!r}; this hiljax "
                                  f"reads version {VERSION}")
    if not isinstance(document.get("config"), dict):
        raise ClassifierFileError(f"{path}: no 'config' object")
    return document


def _image_shapes(document: dict, config: ClassifierConfig, path: Path) -> dict:
    shapes = document.get("image_shapes")
    if not isinstance(shapes, dict) or set(shapes) != set(config.image_keys) or not \
            config.image_keys:
        raise ClassifierFileError(f"{path}: image_shapes must name exactly the image_keys "
                                  f"{list(config.image_keys)}, got {shapes!r}")
    result = {}
    for key, shape in shapes.items():
        if not (isinstance(shape, list) and len(shape) == 3 and shape[2] == 3
                and all(isinstance(d, int) and d > 0 for d in shape)):
            raise ClassifierFileError(f"{path}: image_shapes[{key!r}] must be [H, W, 3], "
                                      f"got {shape!r}")
        result[key] = tuple(shape)
    return result


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ClassifierFileError(f"{path} is missing: the classifier's weights")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            names = handle.keys()  # a safetensors method, not a dict view
            tensors = {name: handle.get_tensor(name) for name in names}
    except Exception as exc:  # safetensors raises its own error types, e.g. for a cut file
        raise ClassifierFileError(f"{path} cannot be read as safetensors (truncated or "
                                  f"corrupt): {exc}") from exc
    if metadata.get("format") != FORMAT or metadata.get("version") != str(VERSION):
        raise ClassifierFileError(f"{path}: metadata {metadata.get('format')!r} version "
                                  f"{metadata.get('version')!r}, expected {FORMAT} {VERSION}")
    try:
        checksums = json.loads(metadata.get("crc32", ""))
    except json.JSONDecodeError as exc:
        raise ClassifierFileError(f"{path}: unreadable checksums in the metadata") from exc
    bad = sorted(n for n, v in tensors.items() if checksums.get(n) != _crc(v))
    if bad or set(checksums) != set(tensors):
        raise ClassifierFileError(f"{path}: corrupt - checksum mismatch in {_listed(bad)}")
    return tensors


def _expected_shapes(config: ClassifierConfig, image_shapes: dict) -> dict[str, tuple]:
    """Every tensor name the config implies, with its shape (nothing is computed)."""
    key = jax.random.key(0)
    first = image_shapes[config.image_keys[0]]
    backbone = jax.eval_shape(lambda k: init_backbone_params(
        _random_backbone(config), k, first), key)
    feature_shapes = backbone_feature_shapes(config, backbone, image_shapes)
    network = jax.eval_shape(lambda k: init_network_params(config, k, feature_shapes), key)
    shapes = {}
    for part, tree in zip(PARTS, (backbone, network)):
        flat = traverse_util.flatten_dict(tree, sep="/")
        shapes.update({f"{part}/{name}": tuple(v.shape) for name, v in flat.items()})
    return shapes


def _random_backbone(config: ClassifierConfig) -> ClassifierConfig:
    # The shapes of a pretrained backbone equal the random one's; never read its file here.
    return dataclasses.replace(config, pretrained_vision_weights=None)


def _check_shapes(tensors: dict[str, np.ndarray], expected: dict[str, tuple], path: Path):
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(f"{n} {tensors[n].shape} (expected {expected[n]})" for n in expected
                   if n in tensors and tuple(tensors[n].shape) != expected[n])
    problems = [f"{what}: {_listed(names)}" for what, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if names]
    if problems:
        raise ClassifierFileError(f"{path} does not fit its config.json: " + "; ".join(problems))


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more
