"""One learner over several machines (JAX multi-process), in lockstep.

Every process runs `python -m hiljax.learner` with the same config and
HILJAX_COORDINATOR / HILJAX_NUM_PROCESSES / HILJAX_PROCESS_ID. Process 0 serves the actors
(transport, metrics, checkpoints, parameter pushes); the others only compute. Each pass of the
loop, process 0 broadcasts what it received (episodes and statistics, still encoded) and its
decisions (stop?) with JAX's own collectives; every process inserts the same episodes into its
own buffers - identical copies - samples ITS rows of the global batch with its own generator,
and joins the one jitted data-parallel round (hiljax.agents.sharding). Because every process
makes the same sequence of global calls, nobody waits forever on a collective.
"""

from __future__ import annotations

import logging

import jax
import msgpack

from hiljax import wire
from hiljax.agents.sharding import broadcast_from_process0, to_host
from transport.interface import Received

log = logging.getLogger(__name__)


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
