"""A real learner (ZeroMQ) refuses every hostile payload class of benchmarks/faults.py, keeps
serving, and a flood of maximal payloads from several processes keeps its memory under the
README's worst-case formula (the benchmark's short limits)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def faults():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the flood clients import it by name too
    spec = importlib.util.spec_from_file_location("faults", ROOT / "benchmarks" / "faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["faults"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("faults", None)
    sys.path.remove(str(ROOT / "benchmarks"))


def test_hostile_payloads_are_refused_and_a_flood_stays_under_the_bound(faults):
    result = faults.run("zmq", faults.SHORT)
    assert result["refused"] == result["hostile_classes_tried"] >= 30
    assert result["still_serving"]
    assert result["flood_stored"] + result["flood_refused"] == result["flood_payloads"]
    assert 0 <= result["flood_worst_rss_mb"] <= result["formula_bound_mb"]
