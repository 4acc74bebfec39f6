"""Name tables between hiljax's parameter trees and LeRobot's state dicts, and the small engine
that applies them. The tables are data (`hiljax.interop.layouts`); this module only knows how to
expand a template and how each transform moves an array between the two conventions.

A rule is (hiljax path, LeRobot key, transform). Paths are "/"-joined keys of a nested dict;
"{name}" placeholders are filled from bindings (camera, state branch, MLP layer index ...). A
hiljax path ending in "#{k}" names slice k of a stacked leaf: hiljax vectorises its critic
ensemble (one leaf with a leading num_critics axis), LeRobot keeps one module per critic.

Transforms (hiljax -> LeRobot; the inverse is applied on import):
    same       the array as it is
    transpose  Flax Dense kernel (in, out) -> torch Linear weight (out, in)
    conv       Flax conv kernel HWIO -> torch OIHW
    spatial    hiljax spatial embedding (H, W, C, F) -> LeRobot's (C, H, W, F)
    scalar     a 0-d leaf -> LeRobot's (1,) parameter (log_alpha)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

SAME, TRANSPOSE, CONV, SPATIAL, SCALAR = "same", "transpose", "conv", "spatial", "scalar"

_TO_LEROBOT = {
    SAME: lambda a: a,
    TRANSPOSE: lambda a: a.T,
    CONV: lambda a: a.transpose(3, 2, 0, 1),
    SPATIAL: lambda a: a.transpose(2, 0, 1, 3),
    SCALAR: lambda a: a.reshape(1),
}
_FROM_LEROBOT = {
    SAME: lambda a: a,
    TRANSPOSE: lambda a: a.T,
    CONV: lambda a: a.transpose(2, 3, 1, 0),
    SPATIAL: lambda a: a.transpose(1, 2, 0, 3),
    SCALAR: lambda a: a.reshape(()),
}
_NDIM = {TRANSPOSE: 2, CONV: 4, SPATIAL: 4, SCALAR: None}


class LayoutError(ValueError):
    """Parameters do not fit the layout: names missing or left over, shapes or dtypes wrong."""


@dataclasses.dataclass(frozen=True)
class Rule:
    hiljax: str
    lerobot: str
    transform: str = SAME


Table = tuple[Rule, ...]


def rules(*rows: tuple[str, str] | tuple[str, str, str]) -> Table:
    return tuple(Rule(*row) for row in rows)


def expand(table: Table, bindings: Iterable[Mapping[str, object]], *,
           hiljax_prefix: str = "", lerobot_prefix: str = "") -> list[Rule]:
    """Every rule of `table` once per binding, with the prefixes put in front."""
    out = []
    for binding in bindings:
        for rule in table:
            out.append(Rule(hiljax_prefix + rule.hiljax.format(**binding),
                            lerobot_prefix + rule.lerobot.format(**binding), rule.transform))
    return out


# ---------------------------------------------------------------------------------------------
# Flat trees.


def flatten(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, path + "/"))
        else:
            flat[path] = value
    return flat


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


# ---------------------------------------------------------------------------------------------
# Applying rules.


def _split_index(path: str) -> tuple[str, int | None]:
    base, _, index = path.partition("#")
    return base, (int(index) if index else None)


def to_lerobot(flat: Mapping[str, np.ndarray], table: list[Rule], *,
               memo: dict | None = None) -> dict[str, np.ndarray]:
    """LeRobot state dict (float32, C-contiguous) from hiljax leaves. Every rule must find its
    leaf and every leaf must be used: a partial export would be a silently broken model.
    `memo` maps hiljax path -> converted array: a leaf several LeRobot keys share (the shared
    encoder) becomes ONE array object, which a torch archive or safetensors writer stores once."""
    memo = {} if memo is None else memo
    used, out = set(), {}
    for rule in table:
        base, index = _split_index(rule.hiljax)
        if base not in flat:
            raise LayoutError(f"hiljax parameter {base} is missing (for LeRobot {rule.lerobot})")
        used.add(base)
        if rule.hiljax not in memo:
            array = np.asarray(flat[base], dtype=np.float32)
            if index is not None:
                array = array[index]
            memo[rule.hiljax] = np.ascontiguousarray(_TO_LEROBOT[rule.transform](array))
        out[rule.lerobot] = memo[rule.hiljax]
    unused = sorted(set(flat) - used)
    if unused:
        raise LayoutError(f"hiljax parameters with no LeRobot name: {', '.join(unused[:8])}")
    return out


def from_lerobot(state: Mapping[str, np.ndarray], table: list[Rule], *, where: str,
                 allow_extra: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """hiljax leaves (float32) from a LeRobot state dict. Missing or unexpected keys, a
    non-float tensor or a wrong number of dimensions raise LayoutError naming them."""
    expected = {rule.lerobot for rule in table}
    missing = sorted(expected - set(state))
    extra = sorted(set(state) - expected - set(allow_extra))
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else ""))
    if extra:
        problems.append(f"unexpected {', '.join(extra[:8])}" + (" ..." if len(extra) > 8 else ""))
    if problems:
        raise LayoutError(f"{where}: not the expected LeRobot layout: " + "; ".join(problems))
    stacked: dict[str, dict[int, np.ndarray]] = {}
    flat: dict[str, np.ndarray] = {}
    for rule in table:
        array = np.asarray(state[rule.lerobot])
        if not np.issubdtype(array.dtype, np.floating):
            raise LayoutError(f"{where}: {rule.lerobot} is {array.dtype}, not a float tensor")
        ndim = _NDIM.get(rule.transform)
        if ndim is not None and array.ndim != ndim:
            raise LayoutError(f"{where}: {rule.lerobot} has shape {array.shape}, "
                              f"expected {ndim} dimensions")
        if rule.transform == SCALAR and array.size != 1:
            raise LayoutError(f"{where}: {rule.lerobot} has shape {array.shape}, expected (1,)")
        converted = np.array(_FROM_LEROBOT[rule.transform](array), dtype=np.float32, order="C")
        base, index = _split_index(rule.hiljax)
        if index is None:
            if base in flat and not np.array_equal(flat[base], converted):
                raise LayoutError(f"{where}: {rule.lerobot} differs from another copy of the "
                                  f"same shared parameter ({base})")
            flat[base] = converted
        else:
            stacked.setdefault(base, {})[index] = converted
    for base, slices in stacked.items():
        flat[base] = np.stack([slices[k] for k in sorted(slices)])
    return flat


def check_shapes(flat: Mapping[str, np.ndarray], expected: Mapping[str, tuple], where: str) -> None:
    """Every leaf the shape the config says (a LeRobot model of another size names the leaf)."""
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    wrong = [f"{path} {tuple(np.shape(flat[path]))} (expected {tuple(shape)})"
             for path, shape in expected.items()
             if path in flat and tuple(np.shape(flat[path])) != tuple(shape)]
    problems = ([f"missing {', '.join(missing[:8])}"] if missing else []) \
        + ([f"unexpected {', '.join(extra[:8])}"] if extra else []) \
        + ([f"wrong shape: {'; '.join(wrong[:8])}"] if wrong else [])
    if problems:
        raise LayoutError(f"{where}: parameters do not fit the config: " + "; ".join(problems))
