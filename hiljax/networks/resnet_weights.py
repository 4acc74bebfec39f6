"""Load and save pretrained ResNet10 weights, from local files only (nothing is downloaded).

Three layouts are read, all into the parameter tree of `hiljax.networks.resnet.ResNet10`
(the dict that goes under {"params": ...}; numpy float32 leaves, kernels HWIO):

- "berkeley-pickle": `resnet10_params.pkl` from the rail-berkeley/serl release, a pickled
  (Frozen)Dict {"conv_init": {"kernel": ...}, ..., "ResNetBlock_3": {...}} whose leaves are
  numpy or jax arrays. It is read with an allowlisted unpickler that rebuilds numpy arrays
  and plain containers only; anything else raises UnsafePickleError before it can run.
  The released file also carries the ImageNet classifier head (`output_head`), which a
  backbone does not use: it is dropped.
- "hf-safetensors": the PyTorch port `helper2424/resnet10` (keys `embedder.0.weight`,
  `encoder.stages.{i}.conv1.conv.weight`, ..., kernels OIHW). Its GroupNorm keys exist both
  as `...norm1.group_norm.weight` and `...norm1.weight` across versions of the port; both
  are accepted.
- "hiljax-safetensors": our own format, flat keys "ResNetBlock_0/Conv_0/kernel" with
  metadata {"format": "hiljax-resnet10", "version": "1"}; written by `save_resnet10`.

CLI: `python -m hiljax.networks.resnet_weights convert IN OUT` (or `hiljax-convert-resnet10
convert IN OUT`) turns any readable layout into the hiljax format.
"""

from __future__ import annotations

import argparse
import codecs
import io
import logging
import os
import pickle
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from hiljax.interop.tables import unflatten
from hiljax.networks.resnet import resnet10_param_shapes
from hiljax.storage.files import write_atomic

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
HILJAX_METADATA = {"format": "hiljax-resnet10", "version": "1"}
BERKELEY_PICKLE, HF_SAFETENSORS, HILJAX_SAFETENSORS = (
    "berkeley-pickle", "hf-safetensors", "hiljax-safetensors")
# Top-level entries of the Berkeley release that are not part of the backbone.
_BERKELEY_UNUSED = frozenset({"output_head"})
_MAX_LISTED = 8  # how many offending keys an error message spells out


class WeightFormatError(ValueError):
    """The file is not a ResNet10 weight file we can read (layout, keys, shapes, truncation)."""


class UnsafePickleError(WeightFormatError):
    """The pickle asks for a global outside the allowlist (it could run code): refused."""


# ---------------------------------------------------------------------------------------------
# Allowlisted unpickling
# ---------------------------------------------------------------------------------------------

# Taken from numpy itself, so the same objects serve pickles written under numpy 1.x
# (`numpy.core.multiarray`) and numpy 2.x (`numpy._core.multiarray`).
_NP_RECONSTRUCT = np.empty(0).__reduce__()[0]
_NP_SCALAR = np.float32(0).__reduce__()[0]
_NP_FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]


def _latin1_encode(text: str, encoding: str) -> bytes:
    # Protocol-2 pickles spell bytes objects as _codecs.encode(str, "latin1"); nothing else.
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, encoding)


def _jax_array_as_numpy(fun, args, arr_state, aval_state):
    # jax.Array pickles as jax._src.array._reconstruct_array(numpy reduce parts); rebuild
    # only the numpy part, never importing or calling into jax.
    del aval_state
    if fun is not _NP_RECONSTRUCT:
        raise UnsafePickleError("jax array pickle with an unexpected reconstructor")
    array = fun(*args)
    array.__setstate__(arr_state)
    return array


def _plain_dict(*args, **kwargs) -> dict:
    return dict(*args, **kwargs)


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("flax.core.frozen_dict", "FrozenDict"): _plain_dict,
    ("jax._src.array", "_reconstruct_array"): _jax_array_as_numpy,
}
for _core in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = _NP_RECONSTRUCT
    _SAFE_GLOBALS[(f"{_core}.multiarray", "scalar")] = _NP_SCALAR
    _SAFE_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = _NP_FROMBUFFER


class _AllowlistUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain containers; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        found = _SAFE_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"refusing to unpickle global '{module}.{name}': only numpy arrays and plain "
                "containers are allowed in a weight file")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing persistent id {pid!r} in a weight file")


def _unpickle(path: Path) -> Any:
    data = path.read_bytes()
    try:
        return _AllowlistUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or corrupt: EOFError, UnpicklingError, ValueError...
        raise WeightFormatError(
            f"{path}: cannot read the pickle (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Trees: flatten, check, unflatten
# ---------------------------------------------------------------------------------------------

def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            raise WeightFormatError(f"non-string key {key!r} under '{prefix or '/'}'")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = value
    return flat


def _listed(items: list) -> str:
    more = f" ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return ", ".join(str(i) for i in items[:_MAX_LISTED]) + more


def _checked(flat: Mapping[str, Any], source: str,
             unexpected: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every expected key present with its shape and a float dtype; returns float32 arrays.
    `unexpected` names keys the caller could not map (reported with the rest)."""
    expected = resnet10_param_shapes()
    problems = []
    missing = sorted(expected.keys() - flat.keys())
    extra = sorted(flat.keys() - expected.keys()) + sorted(unexpected)
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if extra:
        problems.append(f"unexpected keys: {_listed(extra)}")
    arrays, bad = {}, []
    for key in sorted(expected.keys() & flat.keys()):
        value = flat[key]
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            bad.append(f"{key} is {type(value).__name__} {getattr(value, 'dtype', '')}".strip())
        elif value.shape != expected[key]:
            bad.append(f"{key} has shape {value.shape}, expected {expected[key]}")
        else:
            arrays[key] = np.ascontiguousarray(value, dtype=np.float32)
    if bad:
        problems.append(f"bad tensors: {_listed(bad)}")
    if problems:
        raise WeightFormatError(f"{source}: not a ResNet10 parameter set; " + "; ".join(problems))
    return arrays


def _unwrap_params(tree: Mapping) -> Mapping:
    # Accept a whole variables dict ({"params": {...}}) as well as the bare params tree.
    if "params" in tree and "conv_init" not in tree and isinstance(tree["params"], Mapping):
        return tree["params"]
    return tree


# ---------------------------------------------------------------------------------------------
# The three layouts
# ---------------------------------------------------------------------------------------------

def load_berkeley_pickle(path: PathLike) -> dict:
    """Read the Berkeley `resnet10_params.pkl` (allowlisted unpickling) into a ResNet10 tree."""
    path = Path(path)
    tree = _unpickle(path)
    if not isinstance(tree, Mapping):
        raise WeightFormatError(f"{path}: pickle holds a {type(tree).__name__}, not a dict")
    tree = dict(_unwrap_params(tree))
    dropped = sorted(_BERKELEY_UNUSED & tree.keys())
    for key in dropped:
        del tree[key]
    if dropped:
        log.info("%s: ignoring %s (not part of the backbone)", path, ", ".join(dropped))
    return unflatten(_checked(_flatten(tree), str(path)))


def _hf_key_map() -> dict[str, str]:
    """Flax flat key -> canonical key of the PyTorch port (wrapper segments removed)."""
    mapping = {"conv_init/kernel": "embedder.0.weight",
               "norm_init/scale": "embedder.1.weight", "norm_init/bias": "embedder.1.bias"}
    torch_names = {"Conv_0": "conv1", "MyGroupNorm_0": "norm1", "Conv_1": "conv2",
                   "MyGroupNorm_1": "norm2", "conv_proj": "shortcut.0", "norm_proj": "shortcut.1"}
    for key in resnet10_param_shapes():
        if not key.startswith("ResNetBlock_"):
            continue
        block, layer, leaf = key.split("/")
        stage = f"encoder.stages.{block.removeprefix('ResNetBlock_')}.{torch_names[layer]}"
        mapping[key] = f"{stage}.{'bias' if leaf == 'bias' else 'weight'}"
    return mapping


def _canonical_hf_keys(keys: list[str], source: str) -> dict[str, str]:
    """canonical key -> key in the file. Strips a common prefix and the `.conv` /
    `.group_norm` wrapper modules of the port (Conv2dJax, MyGroupNorm)."""
    stems = [k for k in keys if k.endswith("embedder.0.weight")]
    if len(stems) != 1:
        raise WeightFormatError(f"{source}: expected one '*embedder.0.weight', found {len(stems)}")
    prefix = stems[0][: -len("embedder.0.weight")]
    canonical: dict[str, str] = {}
    for key in keys:
        if not key.startswith(prefix):
            raise WeightFormatError(f"{source}: unexpected key '{key}' (prefix '{prefix}')")
        parts = [p for p in key[len(prefix):].split(".") if p not in ("conv", "group_norm")]
        name = ".".join(parts)
        if name in canonical:
            raise WeightFormatError(f"{source}: keys '{canonical[name]}' and '{key}' collide")
        canonical[name] = key
    return canonical


def _read_safetensors(path: Path, with_tensors: bool = True
                      ) -> tuple[dict[str, str], dict[str, np.ndarray | None]]:
    """(metadata, {key: tensor}); with_tensors=False reads only the header (tensors None)."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) if with_tensors else None
                       for key in handle.keys()}
    except Exception as exc:  # SafetensorError, OSError, ...: truncated or corrupt
        raise WeightFormatError(
            f"{path}: cannot read the safetensors file (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}") from exc
    return metadata, tensors


def load_hf_safetensors(path: PathLike) -> dict:
    """Read the PyTorch port (`helper2424/resnet10`, OIHW kernels) into a ResNet10 tree."""
    path = Path(path)
    _, tensors = _read_safetensors(path)
    return _from_hf_tensors(tensors, str(path))


def _from_hf_tensors(tensors: Mapping[str, np.ndarray], source: str) -> dict:
    canonical = _canonical_hf_keys(sorted(tensors), source)
    mapping = _hf_key_map()
    flat: dict[str, Any] = {}
    for flax_key, hf_key in mapping.items():
        if hf_key in canonical:
            value = tensors[canonical.pop(hf_key)]
            if flax_key.endswith("/kernel") and getattr(value, "ndim", 0) == 4:
                value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            flat[flax_key] = value
    return unflatten(_checked(flat, source, unexpected=tuple(canonical.values())))


def load_hiljax_safetensors(path: PathLike) -> dict:
    """Read a file written by `save_resnet10`."""
    path = Path(path)
    metadata, tensors = _read_safetensors(path)
    if metadata.get("format") != HILJAX_METADATA["format"]:
        raise WeightFormatError(f"{path}: metadata format is {metadata.get('format')!r}, "
                                f"expected {HILJAX_METADATA['format']!r}")
    if metadata.get("version") != HILJAX_METADATA["version"]:
        raise WeightFormatError(f"{path}: unsupported hiljax-resnet10 version "
                                f"{metadata.get('version')!r}")
    return unflatten(_checked(tensors, str(path)))


def detect_layout(path: PathLike) -> str:
    """One of BERKELEY_PICKLE, HF_SAFETENSORS, HILJAX_SAFETENSORS, from the file's content."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return BERKELEY_PICKLE
    if len(head) == 9 and head[8:9] == b"{":  # u64 header length, then the JSON header
        metadata, tensors = _read_safetensors(path, with_tensors=False)
        if metadata.get("format") == HILJAX_METADATA["format"]:
            return HILJAX_SAFETENSORS
        if any("embedder." in key for key in tensors):
            return HF_SAFETENSORS
        raise WeightFormatError(f"{path}: safetensors file, but neither hiljax metadata nor "
                                "the helper2424/resnet10 key names")
    raise WeightFormatError(f"{path}: neither a pickle (protocol 2-5) nor a safetensors file")


_LOADERS = {BERKELEY_PICKLE: load_berkeley_pickle, HF_SAFETENSORS: load_hf_safetensors,
            HILJAX_SAFETENSORS: load_hiljax_safetensors}


def load_resnet10(path: PathLike) -> dict:
    """ResNet10 params (numpy float32, HWIO) from any supported layout, detected from content."""
    return _LOADERS[detect_layout(path)](path)


def save_resnet10(path: PathLike, params: Mapping) -> None:
    """Write `params` (a ResNet10 tree, numpy or jax leaves) in the hiljax safetensors format."""
    path = Path(path)
    flat = {key: np.asarray(value) for key, value in _flatten(_unwrap_params(params)).items()}
    arrays = _checked(flat, "params to save")
    # never leave a half-written weight file behind
    write_atomic(path, lambda tmp: save_file(arrays, str(tmp), metadata=dict(HILJAX_METADATA)))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hiljax-convert-resnet10",
        description="Convert pretrained ResNet10 weights (Berkeley pickle, helper2424/resnet10 "
                    "safetensors, or hiljax) to the hiljax safetensors format.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="read IN (any layout), write OUT (hiljax)")
    convert.add_argument("input", type=Path, help="resnet10_params.pkl or a .safetensors file")
    convert.add_argument("output", type=Path, help="where to write the hiljax .safetensors")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        layout = detect_layout(args.input)
        params = _LOADERS[layout](args.input)
        save_resnet10(args.output, params)
    except (OSError, WeightFormatError) as exc:
        log.error("conversion failed: %s", exc)
        return 1
    count = sum(leaf.size for leaf in _flatten(params).values())
    log.info("converted %s (%s) -> %s (%s v%s): %d tensors, %.3fM parameters", args.input,
             layout, args.output, HILJAX_METADATA["format"], HILJAX_METADATA["version"],
             len(resnet10_param_shapes()), count / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
