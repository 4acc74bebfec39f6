"""The dependency direction of ARCHITECTURE.md, enforced by walking every module's imports.

A module may only import what its layer allows; nothing points back up. Imports inside
functions count too (a lazy import is still a dependency).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JAX_WORLD = {"jax", "jaxlib", "flax", "optax", "orbax"}
NEVER = {"torch", "torchvision", "tensorflow"}
# The only modules allowed to unpickle: both go through a strict allowlist.
PICKLE_ALLOWED = {"transport.lerobot_codec", "hiljax.networks.resnet_weights"}

# (module prefix, forbidden import prefixes). First matching prefix wins, so list specific first.
RULES: list[tuple[str, set[str]]] = [
    ("transport", {"hiljax"} | JAX_WORLD),
    ("hiljax.kinematics", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax._se3", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax._ik", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax.buffer", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax.array_file", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax.files", {"hiljax", "transport"} | JAX_WORLD),
    ("hiljax.control", {"hiljax.envs", "hiljax.networks", "hiljax.agents", "hiljax.classifier",
                        "hiljax.learner", "hiljax.actor", "hiljax.buffer", "transport"} | JAX_WORLD),
    ("hiljax.envs", {"hiljax.networks", "hiljax.agents", "hiljax.classifier", "hiljax.learner",
                     "hiljax.actor", "transport"} | JAX_WORLD),
    ("hiljax.datasets", {"hiljax.networks", "hiljax.agents", "hiljax.classifier", "hiljax.learner",
                         "hiljax.actor", "hiljax.envs", "hiljax.control", "transport"} | JAX_WORLD),
    ("hiljax.networks", {"hiljax.agents", "hiljax.classifier", "hiljax.learner", "hiljax.actor",
                         "hiljax.envs", "hiljax.control", "transport"}),
    ("hiljax.agents", {"hiljax.classifier", "hiljax.learner", "hiljax.actor", "hiljax.envs",
                       "hiljax.control", "transport"}),
    ("hiljax.classifier", {"hiljax.agents", "hiljax.learner", "hiljax.actor", "hiljax.envs",
                           "hiljax.control", "transport"}),
    ("hiljax.config", {"hiljax.learner", "hiljax.actor"} | JAX_WORLD),
]

# Exceptions to the rules above: numpy-only helpers that a numpy-only layer may use.
ALLOWED = {
    "hiljax.buffer": {"hiljax.array_file"},
    "hiljax.kinematics": {"hiljax._se3", "hiljax._ik"},
    "hiljax._ik": {"hiljax._se3"},
}


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


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_layering(path):
    module = _module_name(path)
    imported = _imports(path)
    for name in imported:
        assert not any(_matches(name, bad) for bad in NEVER), f"{module} imports {name}"
        if _matches(name, "pickle") or _matches(name, "cPickle") or name == "dill":
            assert module in PICKLE_ALLOWED, f"{module} imports pickle; only {PICKLE_ALLOWED} may"
    for prefix, forbidden in RULES:
        if _matches(module, prefix):
            for name in imported:
                if any(_matches(name, ok) for ok in ALLOWED.get(prefix, ())):
                    continue
                bad = [f for f in forbidden if _matches(name, f)]
                assert not bad, f"{module} may not import {name} (layer rule for {prefix})"
            break


def test_layering_check_catches_violations(tmp_path):
    """The walker itself must see relative and lazy imports."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from .. import networks\n    import jax.numpy\n")
    names = _imports(probe, module="hiljax.envs.probe")
    assert "hiljax.networks" in names and "jax.numpy" in names
