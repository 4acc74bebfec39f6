"""One learner over several machines (JAX multi-process), in lockstep.

Every process runs `python -m hiljax.learner` with the same config and
HILJAX_COORDINATOR / HILJAX_NUM_PROCESSES / HILJAX_PROCESS_ID. Process 0 serves the actors
(transport, metrics, checkpoints, parameter pushes); the others only compute. Each pass of the
loop, process 0 broadcasts what it received (episodes and statistics, still encoded) and its
decisions (stop?) with JAX's own collectives; every process inserts the same episodes into its
own buffers - identical copies - samples ITS rows of the global batch with its own generator,
and joins the one jitted data-parallel round (hiljax.agents.sharding). Because every process
makes the same sequence of global calls, nobody waits forever on a collective.

Resuming (`--resume` on every process): process 0's newest complete checkpoint is copied to
every other process's own `checkpoints` folder through the same collectives (each machine has
its own disk), so all of them load the same state. Each process samples with its own
generator (seeded with its index); a checkpoint holds every process's generator state
(`rng_by_process`), so a resumed run samples as the uninterrupted one would have.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
import msgpack
import numpy as np

from hiljax import wire
from hiljax.agents.sharding import allgather_bytes, broadcast_from_process0, to_host
from hiljax.config import ConfigError
from hiljax.run.checkpoint import rng_from_state, rng_state
from hiljax.run.checkpoint_dir import COMPLETE_MARKER, commit_checkpoint, latest_checkpoint
from transport.interface import Received

log = logging.getLogger(__name__)
CHUNK_BYTES = 32 << 20  # one broadcast of a checkpoint file's bytes


def encode_pass(items: list[Received], stop: bool) -> bytes:
    return msgpack.packb({"stop": stop, "items": [
        [item.client_id, item.codec, bytes(item.payload), item.kind] for item in items]})


def decode_pass(data: bytes) -> tuple[list[Received], bool]:
    message = msgpack.unpackb(data)
    items = [Received(client, codec, payload, kind)
             for client, codec, payload, kind in message["items"]]
    return items, bool(message["stop"])


def run_lockstep(learner, stop, max_steps: int | None = None, poll_s: float = 0.02) -> str:
    """The learner loop of every process; returns the sha256 of the final parameters (equal on
    every process: the test's and a person's check that the replicas agree)."""
    primary = jax.process_index() == 0
    while True:
        data = None
        if primary:
            done = stop.is_set() or (max_steps is not None and learner.step_count >= max_steps)
            data = encode_pass([] if done else learner.poll_items(poll_s), done)
        items, done = decode_pass(broadcast_from_process0(data))
        if done:
            break
        learner.ingest_items(items)
        learner.train_round()
        if primary:
            learner.push_parameters()
    digest = wire.tree_digest(to_host(learner.agent.params))
    (learner.run_dir / "final_params_sha256").write_text(digest + "\n")
    path = learner.save()
    log.info("process %d stopped at step %d (params %s)%s", jax.process_index(),
             learner.step_count, digest[:12], f"; checkpoint {path}" if path else "")
    return digest


# ---------------------------------------------------------------------------------------------
# Each process its own sampling generator, saved and restored.


def sampling_rng(seed: int, extra: dict | None = None) -> np.random.Generator:
    """This process's generator: fresh (`extra` None) or from a checkpoint's `extra`. One
    process keeps the single-host seeding; several each get their own stream (the same one
    would make every process sample the same rows, and the global batch repeat itself)."""
    index, count = jax.process_index(), jax.process_count()
    if extra is None:
        return np.random.default_rng(seed if count == 1 else [seed, index])
    per_process = extra.get("rng_by_process")
    if per_process and len(per_process) == count:
        return rng_from_state(per_process[index])
    if index == 0:
        return rng_from_state(extra["rng"])
    step = int(extra.get("counters", {}).get("transitions", 0))
    log.warning("the checkpoint has no sampling state for process %d (saved by a run of another "
                "size): a new stream", index)
    return np.random.default_rng([seed, index, step])


def gather_rng_states(rng: np.random.Generator) -> list[dict] | None:
    """Every process's generator state, in process order (every process must call it); None
    for a single process."""
    if jax.process_count() == 1:
        return None
    states = allgather_bytes(json.dumps(rng_state(rng)).encode())
    return [json.loads(state) for state in states]


# ---------------------------------------------------------------------------------------------
# Resuming: process 0's checkpoint on every process.


def share_checkpoint(checkpoints: str | Path) -> None:
    """Copy process 0's newest complete checkpoint into every other process's `checkpoints`
    (every process must call it, before Learner.create with resume). ConfigError on every
    process when process 0 has none."""
    checkpoints = Path(checkpoints)
    primary = jax.process_index() == 0
    source = latest_checkpoint(checkpoints) if primary else None
    manifest = _manifest(source, checkpoints) if primary else None
    manifest = msgpack.unpackb(broadcast_from_process0(
        msgpack.packb(manifest) if primary else None))
    if "error" in manifest:
        raise ConfigError(manifest["error"])
    files = manifest["files"]
    if primary:
        for name, size in files:
            with open(source / name, "rb") as file:
                for _ in range(0, size, CHUNK_BYTES):
                    broadcast_from_process0(file.read(CHUNK_BYTES))
        log.info("shared checkpoint %s with %d processes", source.name, jax.process_count() - 1)
        return

    def receive(staging: Path) -> None:
        for name, size in files:
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as file:
                for _ in range(0, size, CHUNK_BYTES):
                    file.write(broadcast_from_process0(None))

    path = commit_checkpoint(checkpoints, manifest["step"], receive)
    log.info("received process 0's checkpoint into %s", path)


def _manifest(source: Path | None, checkpoints: Path) -> dict:
    if source is None:
        return {"error": f"--resume: process 0 has no checkpoint in {checkpoints}"}
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
    return {"step": int(source.name.removeprefix("step_")),
            "files": [[str(p.relative_to(source)), p.stat().st_size] for p in files]}
