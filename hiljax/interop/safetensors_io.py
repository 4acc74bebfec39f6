"""safetensors files as LeRobot's `save_pretrained` writes them: a tensor shared by several
state-dict keys is stored ONCE, under the alphabetically first of its names, and the metadata maps
every other name to it (what `safetensors.torch.save_model` does; `load_model` reads it back)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from hiljax.storage.files import write_atomic

from .tables import LayoutError


def write_shared(path: str | Path, state: Mapping[str, np.ndarray]) -> None:
    """Write `state`; keys holding the same array object become one tensor plus aliases."""
    groups: dict[int, list[str]] = {}
    for key, array in state.items():
        groups.setdefault(id(array), []).append(key)
    tensors, aliases = {}, {}
    for keys in groups.values():
        kept, *others = sorted(keys)
        tensors[kept] = np.ascontiguousarray(state[kept])
        aliases.update({other: kept for other in others})
    write_atomic(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=aliases or None))


def read_shared(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({key: array} with every alias filled in, the non-alias metadata)."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise LayoutError(f"{path}: cannot read the safetensors file (truncated or corrupt?): "
                          f"{error}") from error
    other = {}
    for key, value in metadata.items():
        if value in state and key not in state:
            state[key] = state[value]
        else:
            other[key] = value
    return state, other
