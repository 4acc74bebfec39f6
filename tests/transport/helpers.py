"""Helpers shared by the transport tests (no timing assertions: waits are bounded polls)."""

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from transport import codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_payloads"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01):
    """Poll until predicate() is truthy; return its value, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def image_episode(steps: int = 4, seed: int = 0, size: int = 32) -> dict:
    """An episode in the hiljax layout: uint8 frames stored once (steps + 1), state, action."""
    rng = np.random.default_rng(seed)
    return {
        "observations": {
            "front": rng.integers(0, 256, (steps + 1, size, size, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 256, (steps + 1, size, size, 3), dtype=np.uint8),
            "state": rng.standard_normal((steps + 1, 18)).astype(np.float32),
        },
        "actions": rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
        "rewards": rng.standard_normal(steps).astype(np.float32),
        "dones": np.zeros(steps, dtype=bool),
    }


def encoded_episode(sender: str, seq: int, steps: int = 4, size: int = 32) -> bytes:
    return codec.encode(
        image_episode(steps, seed=seq, size=size), sender=sender, seq=seq, meta={"episode": seq}
    )


def drain(learner, kind: str = "transitions", timeout: float = 0.2) -> list:
    poll = learner.poll_transitions if kind == "transitions" else learner.poll_interactions
    out = []
    while True:
        got = poll(timeout=timeout)
        if not got:
            return out
        out.extend(got)


def sha256(raw) -> str:
    return hashlib.sha256(bytes(raw)).hexdigest()
