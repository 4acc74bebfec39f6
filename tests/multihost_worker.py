"""One "host" of tests/test_multihost.py: a learner process of a two-process JAX run.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu \\
        python -m tests.multihost_worker PORT PROCESS_ID NUM_PROCESSES OUT_DIR

Joins the run through `jax.distributed.initialize` (coordinator 127.0.0.1:PORT, run by process
0; gloo collectives on CPU), builds the same agent as every other process from the same seed,
and runs ROUNDS UTD rounds on the mesh of all processes' devices, feeding ITS OWN rows of each
global batch (process i holds rows [i * B / P, (i + 1) * B / P)). Writes its final state and
metrics to OUT_DIR/process{ID}.npz and what it saw of the run to OUT_DIR/process{ID}.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROUNDS, GLOBAL_BATCH = 3, 8
CONFIG = {"utd_ratio": 2, "num_discrete_actions": 3, "num_critics": 3, "num_subsample_critics": 2}


def global_batches(config) -> list[dict]:
    """The whole batch of every round, the same in every process (a stand-in for the rows each
    host would sample from its own buffer: the test needs to know the global batch)."""
    from tests.sac_helpers import fill_buffer

    buffer = fill_buffer(config, 40)
    rng = np.random.default_rng(0)
    return [buffer.sample(GLOBAL_BATCH, rng, num_batches=config.utd_ratio)
            for _ in range(ROUNDS)]


def local_rows(batch: dict, process_id: int, num_processes: int) -> dict:
    rows = GLOBAL_BATCH // num_processes
    take = slice(process_id * rows, (process_id + 1) * rows)

    def cut(x):
        return {k: cut(v) for k, v in x.items()} if isinstance(x, dict) else x[:, take]
    return cut(batch)


def flat(tree) -> dict[str, np.ndarray]:
    import jax

    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def main(argv: list[str]) -> int:
    port, process_id, num_processes, out = int(argv[0]), int(argv[1]), int(argv[2]), Path(argv[3])
    from hiljax.agents import sharding

    sharding.initialize_distributed(f"127.0.0.1:{port}", num_processes, process_id,
                                    initialization_timeout=60)
    import jax

    from hiljax.agents.sac import SACAgent
    from tests.sac_helpers import tiny_config

    config = tiny_config(**CONFIG)
    mesh = sharding.make_mesh()
    agent = sharding.replicate(SACAgent.create(config, jax.random.key(0)), mesh)
    for batch in global_batches(config):
        sharded = sharding.shard_batch(local_rows(batch, process_id, num_processes), mesh)
        agent, metrics = agent.update(sharded)
    state = {"params": agent.params, "target_params": agent.target_params,
             "opt_states": agent.opt_states}
    leaves = jax.tree.leaves(state)
    seen = {
        "process_index": jax.process_index(), "process_count": jax.process_count(),
        "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
        "step": int(agent.step),  # a replicated global scalar reads on every process
        "params_global": all(not x.is_fully_addressable and x.is_fully_replicated
                             for x in leaves),
        "batch_global_rows": int(sharded["rewards"].shape[1]),
        "batch_local_rows": sorted({s.data.shape[1] for s in sharded["rewards"].addressable_shards}),
    }
    # The learner's transport runs on process 0: what it received reaches the others this way.
    payload = bytes(range(256)) * 20 + b"end"  # 5123 bytes: padded to 8 KiB on the way
    received = sharding.broadcast_from_process0(payload if process_id == 0 else None)
    seen["broadcast_ok"] = received == payload
    if process_id == 0:
        # What only process 0 does (publish parameters, checkpoint) must not start a global
        # computation: `to_host` reads its own replica, then everything is process-local.
        local = sharding.to_host(agent)
        total = jax.jit(lambda p: sum(x.sum() for x in jax.tree.leaves(p)))(local.params)
        seen["process0_local_ok"] = bool(np.isfinite(float(total))) and int(local.step) == ROUNDS
        seen["process0_local_ok"] &= jax.random.key_data(local.key).shape == (2,)
    host = sharding.to_host({"state": state, "metrics": metrics})
    np.savez(out / f"process{process_id}.npz", **flat(host))
    (out / f"process{process_id}.json").write_text(json.dumps(seen))
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
