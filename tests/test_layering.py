"""The dependency direction of the project's architecture note, enforced by walking every
module's imports. The note is `../shared/ARCHITECTURE.md`, beside the project rather than in
it; the README's "Layout" section says the same for this repository.

Each layer lists what of hiljax and transport it may import (besides itself); nothing points back
up, the numpy world never imports JAX, and the processes (`python -m hiljax.X`) are siblings that
never import each other. Imports inside functions count too (a lazy import is still a
dependency). Every module must belong to a layer, so a new folder has to be placed here, and
every entry point is either a listed process or a listed tool of its package.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JAX_WORLD = {"jax", "jaxlib", "flax", "optax", "orbax"}
NEVER = {"torch", "torchvision", "tensorflow"}
# The only modules allowed to unpickle: both go through a strict allowlist.
PICKLE_ALLOWED = {"transport.lerobot_codec", "hiljax.networks.resnet_weights"}

# The processes and tools: entry points that share what they share from the layers below.
PROCESSES = {"hiljax.learner", "hiljax.actor", "hiljax.eval", "hiljax.record", "hiljax.train",
             "hiljax.calibrate", "hiljax.virtual_robot", "hiljax.find_cameras",
             "hiljax.find_port", "hiljax.find_ee_bounds", "hiljax.crop_roi",
             "hiljax.export_lerobot", "hiljax.import_lerobot", "hiljax.keys"}

# Entry points below the top level (`python -m hiljax.<package>.<tool>`): tools that belong to
# their package and use only its layer (checked like any module there), unlike the processes
# above. Listed, with the reason they live there, so that no new one appears unnoticed.
PACKAGE_TOOLS = {
    "hiljax.classifier.train": "the reward classifier's training run: the notebook's calls as a "
                               "command, nothing the classifier package does not already hold",
    "hiljax.datasets": "prints a recorded dataset's summary (its __main__.py): a view of the "
                       "datasets package's reader",
    "hiljax.networks.resnet_weights": "converts a pretrained ResNet10 file to hiljax's layout "
                                      "(also the hiljax-convert-resnet10 script): the loader's "
                                      "own module",
}

# layer -> what of hiljax / transport it may import besides itself. Lower layers first.
LAYERS: dict[str, set[str]] = {
    "transport": set(),  # transport.security (TLS, tokens, CURVE, key generation) included
    "hiljax.kinematics": set(),
    "hiljax.transition": set(),
    "hiljax.storage": {"hiljax.transition"},
    "hiljax.config": {"transport.factory"},
    "hiljax.hardware": {"hiljax.config", "hiljax.kinematics", "hiljax.storage"},
    "hiljax.control": {"hiljax.kinematics", "hiljax.hardware"},
    "hiljax.envs": {"hiljax.config", "hiljax.control", "hiljax.kinematics", "hiljax.hardware"},
    "hiljax.datasets": {"hiljax.storage", "hiljax.transition"},
    "hiljax.interop": {"hiljax.config", "hiljax.storage"},
    "hiljax.wire": {"hiljax.transition", "transport"},
    "hiljax.networks": {"hiljax.config", "hiljax.storage", "hiljax.interop"},
    "hiljax.agents": {"hiljax.config", "hiljax.networks", "hiljax.transition", "hiljax.storage"},
    "hiljax.classifier": {"hiljax.config", "hiljax.networks", "hiljax.storage", "hiljax.datasets",
                          "hiljax.interop"},
    "hiljax.policy": {"hiljax.config", "hiljax.agents", "hiljax.networks"},
    "hiljax.run": {"hiljax.config", "hiljax.transition", "hiljax.storage", "hiljax.envs",
                   "hiljax.interop", "hiljax.datasets",
                   "hiljax.networks", "hiljax.agents", "hiljax.classifier", "transport.factory",
                   "transport.interface", "transport.errors", "hiljax.wire"},
    "hiljax": set(),  # the package's __init__
}
# The numpy world: no JAX (the reward classifier reaches the env as a plain callable).
NUMPY_ONLY = {"transport", "hiljax.kinematics", "hiljax.transition", "hiljax.storage",
              "hiljax.config", "hiljax.hardware", "hiljax.control", "hiljax.envs",
              "hiljax.datasets", "hiljax.wire", "hiljax.interop"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> list[str]:
    """Absolute names of everything `path` imports (relative imports resolved)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.append(prefix)
            # `from hiljax import networks` imports hiljax.networks.
            names.extend(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _sources() -> list[Path]:
    files = []
    for top in ("hiljax", "transport"):
        files.extend(p for p in (ROOT / top).rglob("*.py") if "_generated" not in p.parts)
    return sorted(files)


def _layer(module: str) -> str:
    """The layer `module` belongs to: the longest layer name it starts with."""
    if module in PROCESSES:
        return module
    matches = [layer for layer in LAYERS if _matches(module, layer)]
    assert matches, f"{module} belongs to no layer: place it in tests/test_layering.py"
    return max(matches, key=len)


def _first_party(name: str) -> bool:
    return name != "hiljax" and (_matches(name, "hiljax") or _matches(name, "transport"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_layering(path):
    module = _module_name(path)
    imported = _imports(path)
    for name in imported:
        assert not any(_matches(name, bad) for bad in NEVER), f"{module} imports {name}"
        if _matches(name, "pickle") or _matches(name, "cPickle") or name == "dill":
            assert module in PICKLE_ALLOWED, f"{module} imports pickle; only {PICKLE_ALLOWED} may"
    layer = _layer(module)
    if layer in PROCESSES:
        siblings = [n for n in imported for p in PROCESSES - {layer} if _matches(n, p)]
        assert not siblings, f"{module} imports the process {siblings[0]}: share it from below"
        return
    if layer in NUMPY_ONLY:
        jax = [n for n in imported if any(_matches(n, j) for j in JAX_WORLD)]
        assert not jax, f"{module} imports {jax[0]}; the {layer} layer is numpy-only"
    allowed = LAYERS[layer] | {layer}
    for name in filter(_first_party, imported):
        if layer == "hiljax":  # the package __init__ imports nothing of its own
            raise AssertionError(f"hiljax/__init__.py imports {name}")
        assert any(_matches(name, ok) for ok in allowed), (
            f"{module} may not import {name} (the {layer} layer may import {sorted(allowed)})")


def _is_entry_point(path: Path) -> bool:
    """A `__main__.py`, or a module with a top-level `if __name__ == "__main__":`."""
    if path.name == "__main__.py":
        return True
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
                    isinstance(n, ast.Constant) and n.value == "__main__" for n in names):
                return True
    return False


def _entry_points() -> dict[str, bool]:
    """What `python -m` runs in hiljax, at any depth -> whether it is a module at the top level
    (a package's __main__.py runs as the package, so it is not, even as `hiljax.datasets`)."""
    found = {}
    for path in (ROOT / "hiljax").rglob("*.py"):
        if _is_entry_point(path):
            top_level = path.parent == ROOT / "hiljax" and path.name != "__main__.py"
            found[_module_name(path).removesuffix(".__main__")] = top_level
    return found


def test_every_entry_point_is_a_listed_process_or_package_tool():
    """A new `python -m hiljax.X` at the top level is a process (it may not be imported); one
    in a package is a tool of that package, listed in PACKAGE_TOOLS with why it lives there."""
    found = _entry_points()
    for module, top_level in sorted(found.items()):
        if top_level:
            assert module in PROCESSES, f"add {module} to PROCESSES"
        else:
            assert module in PACKAGE_TOOLS, (
                f"{module} is an entry point inside a package: add it to PACKAGE_TOOLS, saying "
                f"why it lives there (or make it a process at the top level)")
    assert set(PACKAGE_TOOLS) <= set(found), (
        f"no longer entry points: {set(PACKAGE_TOOLS) - set(found)}")


def test_entry_point_detection(tmp_path):
    """The detector sees the guard in either order, and not the word in a docstring."""
    guarded, reversed_guard, mention = (tmp_path / n for n in ("a.py", "b.py", "c.py"))
    guarded.write_text('if __name__ == "__main__":\n    pass\n')
    reversed_guard.write_text('if "__main__" == __name__:\n    pass\n')
    mention.write_text('"""Run me as __main__."""\n')
    assert _is_entry_point(guarded) and _is_entry_point(reversed_guard)
    assert not _is_entry_point(mention)
    assert _is_entry_point(tmp_path / "__main__.py")


def test_layering_check_catches_violations(tmp_path):
    """The walker itself must see relative and lazy imports."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from .. import networks\n    import jax.numpy\n")
    names = _imports(probe, module="hiljax.envs.probe")
    assert "hiljax.networks" in names and "jax.numpy" in names
    assert _layer("hiljax.envs.probe") == "hiljax.envs" and _layer("hiljax.actor") == "hiljax.actor"
    # The keys tool is a process; what it runs (key generation) sits in hiljax-free transport.
    assert _layer("hiljax.keys") == "hiljax.keys" and _layer("transport.security") == "transport"


def test_no_two_modules_import_each_other():
    """No import loops of two modules, not even lazy or TYPE_CHECKING ones."""
    graph = {_module_name(p): {n for n in _imports(p) if _first_party(n)} for p in _sources()}
    for module, names in graph.items():
        for other in names & set(graph):
            # A package's __init__ re-exporting a submodule that imports a sibling through
            # the package (`from . import x`) is not a loop.
            related = _matches(module, other) or _matches(other, module)
            assert related or module not in graph[other], f"{module} and {other} import each other"
