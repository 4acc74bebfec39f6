"""Data-parallel SAC learning over a 1-D device mesh, on one host or on several (jax.sharding).

    mesh = make_mesh()                      # every device of every process, axis "data"
    agent = replicate(agent, mesh)          # once: parameters, optimiser states, step, key
    agent, metrics = agent.update(shard_batch(batch, mesh))   # every round: still ONE jit call

Nothing else changes: `SACAgent.update` is the same jitted UTD round, and GSPMD partitions it
from its inputs' shardings - parameters replicated (P()), batch rows split over the "data" axis
(P(None, "data")), so each device computes the losses of its rows and XLA all-reduces the
gradient (and every batch mean) before the replicated optimiser step. The outputs come back
replicated, so the next round needs no re-placement. Random bits inside the round (DrQ shifts,
dropout masks, policy noise) are a function of the key and the array's global shape, never of
its sharding, so one device and N devices give the same round up to the summation order of the
reductions; `jax_threefry_partitionable` (on by default) lets each device draw only its own
rows' bits instead of drawing all and slicing.

Several hosts (`jax.distributed.initialize`, see `initialize_distributed`): every process runs
the same program - same config, same seed, hence the same initial agent - and calls `replicate`
and `update` in lockstep. Each process samples ITS OWN rows of the global batch from ITS OWN
replay buffer and hands them to `shard_batch`, which assembles the global array without moving
rows between hosts (`jax.make_array_from_process_local_data`): the global batch is the
concatenation of the processes' rows in process order. The parameters stay identical on every
process because the gradient all-reduce spans all of them.

Images: the DrQ shift and `apply_backbone` flatten the leading axes; both work batch-major
(`hiljax.agents.sac._batch_major`, cameras stacked after the batch axis), so each device shifts
and encodes only its own rows' frames instead of all-gathering the pixels.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis "data" over `devices` (default: `jax.devices()`, i.e. every device
    of every process), ordered by process so that each process's devices hold a contiguous
    block of batch rows."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("make_mesh needs at least one device")
    devices = sorted(devices, key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Batch arrays (utd_ratio, batch_size, ...): rows split over the "data" axis."""
    return NamedSharding(mesh, P(None, DATA_AXIS))


def local_device_count(mesh: Mesh) -> int:
    """How many of the mesh's devices belong to this process."""
    return sum(d.process_index == jax.process_index() for d in mesh.devices.flat)


def check_batch_size(batch_size: int, mesh: Mesh, *, local: bool = False) -> None:
    """ValueError unless `batch_size` splits evenly over the mesh's devices (`local=True`:
    over this process's devices, `batch_size` being this process's rows)."""
    devices = local_device_count(mesh) if local else mesh.devices.size
    if batch_size % devices:
        where = "this process's" if local else "the"
        raise ValueError(f"data-parallel learning needs the batch size divisible by {where} "
                         f"device count: {batch_size} rows over {devices} devices")


def replicate(tree, mesh: Mesh):
    """`tree` (an SACAgent, or any pytree of arrays) with every array replicated on `mesh`.

    Multi-host: every process must pass the same values (the same config and seed give the
    same `SACAgent.create`, or the same checkpoint); they are not compared.
    """
    sharding = replicated_sharding(mesh)
    return jax.tree.map(lambda x: _put_replicated(x, sharding), tree)


def _put_replicated(x, sharding: NamedSharding):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put_replicated(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if jax.process_count() == 1:
        # A copy (device_put may reuse x's buffer as one replica): the agent given stays valid
        # when the replicated one is donated to a round.
        return jax.device_put(jnp.copy(x), sharding)
    # Multi-host: device_put would compare the value across processes (a collective per leaf)
    # or refuse a committed single-device array; every process holds the whole value, so each
    # one fills its own devices from it.
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """This process's rows of a UTD round's batch (arrays (utd_ratio, rows, ...)) as global
    arrays sharded P(None, "data").

    One process: `batch` is the whole batch. Several: `batch` is this process's part (each host
    samples its own rows from its own buffers); the global batch has process_count() times as
    many rows, process 0's first. Raises ValueError when the rows do not split evenly over this
    process's devices.
    """
    sharding = batch_sharding(mesh)
    leaves = jax.tree.leaves(batch)
    if not leaves:
        return batch
    rows = {np.shape(x)[1] if np.ndim(x) >= 2 else None for x in leaves}
    if len(rows) != 1 or None in rows:
        raise ValueError("shard_batch needs every batch array shaped (utd_ratio, batch_size, "
                         f"...); got batch sizes {sorted(map(str, rows))}")
    (local_rows,) = rows
    processes = len({d.process_index for d in mesh.devices.flat})
    check_batch_size(local_rows, mesh, local=processes > 1)

    def put(x):
        x = np.asarray(x)
        global_shape = (x.shape[0], x.shape[1] * processes) + x.shape[2:]
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return jax.tree.map(put, batch)


def to_host(tree):
    """numpy copies of a pytree of replicated arrays (parameters to publish, metrics to log);
    works on every process of a multi-host run (each reads its own replica)."""
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.is_fully_replicated:
                raise ValueError(f"to_host: array of shape {x.shape} is sharded across hosts")
            x = x.addressable_data(0)
        return jax.device_get(x)
    return jax.tree.map(get, tree)


def broadcast_from_process0(data: bytes | None) -> bytes:
    """Process 0's `data` on every process (the others pass None); every process must call it.

    For a multi-host learner whose transport runs on process 0 only: the episodes it received
    (and its decisions: train now? stop?) reach the other processes through JAX's own
    collectives. Payloads are padded to a power of two (at least 4 KiB), so a handful of
    compilations cover every size.
    """
    if jax.process_count() == 1:
        return bytes(data or b"")
    from jax.experimental import multihost_utils

    source = jax.process_index() == 0
    if source and data is None:
        raise ValueError("process 0 must pass the bytes to broadcast")
    size = int(multihost_utils.broadcast_one_to_all(np.int32(len(data) if source else 0)))
    padded = np.zeros(max(4096, 1 << (size - 1).bit_length()), np.uint8)
    if source:
        padded[:size] = np.frombuffer(data, np.uint8)
    return multihost_utils.broadcast_one_to_all(padded)[:size].tobytes()


def allgather_bytes(data: bytes, size: int = 4096) -> list[bytes]:
    """Every process's `data` (at most `size` - 4 bytes) on every process, in process order;
    every process must call it."""
    if jax.process_count() == 1:
        return [bytes(data)]
    from jax.experimental import multihost_utils

    if len(data) > size - 4:
        raise ValueError(f"allgather_bytes: {len(data)} bytes > {size - 4}")
    padded = np.zeros(size, np.uint8)
    padded[:4] = np.frombuffer(np.uint32(len(data)).tobytes(), np.uint8)
    padded[4:4 + len(data)] = np.frombuffer(data, np.uint8)
    rows = np.asarray(multihost_utils.process_allgather(padded)).reshape(-1, size)
    return [row[4:4 + int(row[:4].view(np.uint32)[0])].tobytes() for row in rows]


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None,
                           local_device_ids=None, **kwargs) -> None:
    """`jax.distributed.initialize`, before anything else touches JAX's devices.

    Arguments left None come from HILJAX_COORDINATOR (host:port of process 0),
    HILJAX_NUM_PROCESSES and HILJAX_PROCESS_ID, else JAX's own detection (SLURM, TPU pods, ...).
    On CPU the cross-process collectives are gloo (JAX's default for CPU, set explicitly here).
    `kwargs` go to `jax.distributed.initialize` (e.g. initialization_timeout).
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("HILJAX_COORDINATOR")
    if num_processes is None and "HILJAX_NUM_PROCESSES" in env:
        num_processes = int(env["HILJAX_NUM_PROCESSES"])
    if process_id is None and "HILJAX_PROCESS_ID" in env:
        process_id = int(env["HILJAX_PROCESS_ID"])
    # Only the CPU backend reads this (GPUs use NCCL); without it CPU hosts could not all-reduce.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id,
                               local_device_ids=local_device_ids, **kwargs)


__all__ = ["DATA_AXIS", "allgather_bytes", "batch_sharding", "broadcast_from_process0",
           "check_batch_size", "initialize_distributed", "local_device_count", "make_mesh",
           "replicate", "replicated_sharding", "shard_batch", "to_host"]
