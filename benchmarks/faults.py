"""Faults: hostile payloads and a maximal-payload flood against a real learner's ingest.

    .venv/bin/python benchmarks/faults.py            # grpc and zmq, 16 MiB payloads, 3 cycles
    .venv/bin/python benchmarks/faults.py --short    # 1 MiB payloads, fewer of them, 1 cycle
    .venv/bin/python benchmarks/faults.py --transport zmq

The learner is the real one: `hiljax.learner.Learner` (a small state policy: 18-d state, 3
continuous action dims + a gripper column), behind its real gRPC or ZeroMQ transport on
127.0.0.1 (`transport.factory.make_learner_transport`), ingesting with `Learner.ingest`
(decode, validate, insert) on this process's main thread, as the learner's ingest thread does.

1. Hostile payloads: every class in `hostile_payloads` (both codecs: wrong structure, wrong
   spec, NaN / Inf, memory bombs, bit flips, truncation, oversize...) is sent by a real actor
   transport under a client id of its own. Each must be refused (nothing reaches the replay
   buffer), and afterwards a well-formed episode from another client must still be stored.
2. Flood: `clients` processes (spawn: numpy and the transport only) each send
   `payloads_per_client` maximal payloads as fast as back-pressure lets them: hiljax episodes
   (stored) and LeRobot image episodes (decoded in full, then refused by the spec check: the
   costliest path). A thread samples this process's RSS every 2 ms; the worst RSS above the
   flood's start is compared with the formula of README "Worst-case memory of the ingest path"
   (`ingest_bound_bytes`), plus the replay buffers' own size (they fill in as they are written).

3. Restarts: the learner process SIGKILLed mid-stream and restarted with --resume (an actor
   killed and replaced every second cycle; `benchmarks/kill_restart.py`): transitions
   acknowledged, lost and duplicated.

It prints the figures and ends with ONE line of JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import pickle  # only dumps: hostile statistics to send
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The flood clients import this module too: nothing heavy (JAX, the learner) at the top.
from hiljax import wire
from transport import codec, grpc_server, lerobot_codec, torch_archive, zmq_server
from transport.factory import make_actor_transport

MIB = 1 << 20
log = logging.getLogger("faults")
STATE_DIM, ACTION_DIM = 18, 4  # the LeRobot fixtures' spec (3 continuous + a gripper column)
FIXTURES = ROOT / "tests" / "fixtures" / "lerobot_payloads"


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int  # P
    queue_max_items: int
    queue_max_bytes: int  # Q (per kind); the per-client cap is Q / 4 (PayloadQueue's default)
    clients: int  # N flood clients
    payloads_per_client: int
    max_actors: int  # gRPC: 3 * max_actors + 2 worker threads
    max_calls_per_client: int = 6  # gRPC: payload-carrying calls one client may hold


SHORT = Limits(1 * MIB, 64, 4 * MIB, clients=2, payloads_per_client=3, max_actors=4)
FULL = Limits(16 * MIB, 256, 64 * MIB, clients=4, payloads_per_client=6, max_actors=4)
# Constants of the decoders (see the README section): the most Python objects one payload's
# pickle or msgpack header may become, and zipfile's directory objects.
PICKLE_OBJECT_BYTES = 90 * lerobot_codec.MAX_PICKLE_BYTES
HEADER_OBJECT_BYTES = 75 * codec.MAX_HEADER_BYTES
ZIP_DIRECTORY_BYTES = 12 * torch_archive.MAX_CENTRAL_DIRECTORY_BYTES
DECODER_CONSTANTS = PICKLE_OBJECT_BYTES + HEADER_OBJECT_BYTES + ZIP_DIRECTORY_BYTES  # K
# Bytes allocated while decoding + validating one payload, per payload byte (README).
DECODE_EXPANSION = {"hiljax": 3, "lerobot": 13}
ZMQ_RCVHWM = 16  # transport.zmq_protocol.LEARNER_RCVHWM: messages ZeroMQ buffers per actor
ZMQ_MAX_BACKLOG = zmq_server.MAX_BACKLOG  # accepted payloads waiting for room in the queue
GRPC_INFLIGHT_BYTES = grpc_server.DEFAULT_INFLIGHT  # arriving payloads all calls may hold


def ingest_bound_bytes(limits: Limits, transport: str) -> int:
    """The README's worst case of the learner's ingest path for these limits."""
    p, q, n = limits.max_payload_bytes, limits.queue_max_bytes, limits.clients
    per_client = max(q // 4, p)
    queued = min(max(q, p), n * per_client)  # one kind's queue
    held = 2 * 2 * queued  # 2 kinds x (queued + polled by the learner, not yet decoded)
    if transport == "grpc":
        workers = 3 * limits.max_actors + 2
        calls = 2 * p * min(workers, n * limits.max_calls_per_client)  # chunks + joined
        in_flight = min(calls, 2 * max(p, GRPC_INFLIGHT_BYTES))  # the server's byte budget
    else:
        in_flight = (ZMQ_MAX_BACKLOG + n * ZMQ_RCVHWM) * p  # the backlog + ZeroMQ's pipes
    decode = max(DECODE_EXPANSION.values()) * p
    return held + in_flight + decode + DECODER_CONSTANTS


# ----------------------------------------------------------------------------- payloads


def hiljax_episode(length: int, seed: int = 0, **edits) -> bytes:
    """A valid episode for the benchmark's policy; `edits` replace frames / steps entries."""
    rng = np.random.default_rng(seed)
    frames = {"observation.state": rng.normal(size=(length + 1, STATE_DIM)).astype(np.float32)}
    steps = {"actions": rng.uniform(-1, 1, (length, ACTION_DIM)).astype(np.float32),
             "rewards": rng.normal(size=length).astype(np.float32),
             "dones": np.arange(length) == length - 1, "truncateds": np.zeros(length, bool),
             "is_intervention": np.zeros(length, bool),
             "discrete_penalty": np.zeros(length, np.float32)}
    for name, value in edits.items():
        tree = frames if name.startswith("observation") else steps
        if value is None:
            tree.pop(name)
        else:
            tree[name] = value
    return codec.encode({"frames": frames, "steps": steps},
                        meta={"schema": wire.EPISODE_SCHEMA})


def hiljax_steps_episode(steps) -> bytes:
    frames = {"observation.state": np.zeros((4, STATE_DIM), np.float32)}
    return codec.encode({"frames": frames, "steps": steps}, meta={"schema": wire.EPISODE_SCHEMA})


def lerobot_transition(rng, image_side: int = 0) -> dict:
    def state():
        out = {"observation.state": rng.normal(size=(1, STATE_DIM)).astype(np.float32)}
        if image_side:
            out["observation.image.front"] = rng.random((1, 3, image_side, image_side),
                                                        dtype=np.float32)
        return out

    return {"state": state(), "action": rng.uniform(-1, 1, (1, ACTION_DIM)).astype(np.float32),
            "reward": 0.5, "next_state": state(), "done": False, "truncated": False,
            "complementary_info": {"discrete_penalty": np.zeros(1, np.float32),
                                   "is_intervention": np.array(False)}}


def lerobot_episode(length: int = 3, **edits) -> bytes:
    rng = np.random.default_rng(0)
    transitions = [lerobot_transition(rng) for _ in range(length)]
    transitions[-1].update(edits)
    return lerobot_codec.encode_transitions(transitions)


def lerobot_archive(pickle_bytes: bytes, records: dict[str, bytes] | None = None) -> bytes:
    writer = torch_archive._ArchiveWriter()
    writer.add("data.pkl", pickle_bytes)
    for key, raw in (records or {}).items():
        writer.add(f"data/{key}", raw)
    return writer.finish()


def shared_reference_bomb(references: int) -> bytes:
    """ONE transition (a 256 KiB state) referenced `references` times through the pickle memo."""
    transition = lerobot_transition(np.random.default_rng(1))
    transition["state"]["observation.state"] = np.zeros((1, 64 * 1024), np.float32)
    emitter = torch_archive._PickleEmitter()
    emitter.out.write(b"\x80\x02](")
    emitter._emit(transition)
    emitter.out.write(b"q\x00" + b"h\x00" * (references - 1) + b"e.")
    return lerobot_archive(emitter.out.getvalue(), dict(enumerate(emitter.storages)))


def nested_list_bomb(depth: int) -> bytes:
    """A transition whose reward is a list nested `depth` deep, each level holding the one below
    twice (pickle memo): 2**depth floats for a few hundred bytes."""
    marker = "@nested@"
    emitter = torch_archive._PickleEmitter()
    pickle_bytes = emitter.dump([{**lerobot_transition(np.random.default_rng(0)),
                                  "reward": marker}])
    nested = b"](" + (b"G" + bytes(8)) * 2 + b"eq\x00"
    for level in range(1, depth + 1):
        below = bytes([level - 1])
        nested += b"0](h" + below + b"h" + below + b"eq" + bytes([level])  # POP the one below
    written = b"X" + len(marker).to_bytes(4, "little") + marker.encode()
    return lerobot_archive(pickle_bytes.replace(written, nested),
                           dict(enumerate(emitter.storages)))


def stride_zero_bomb() -> bytes:
    """One stored float claimed as a 10**9-element tensor (torch's expand())."""
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage"
              b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00J\x00\xca\x9a;\x85K\x00\x85"
              b"\x89ccollections\nOrderedDict\n)RtR")
    return lerobot_archive(b"\x80\x02]" + tensor + b"a.", {"0": bytes(4)})


def declared_size_bomb() -> bytes:
    import msgpack

    nbytes = 2**40 * STATE_DIM * 4
    header = msgpack.packb({"sender": "", "seq": 0, "meta": {"schema": wire.EPISODE_SCHEMA},
                            "arrays": [["frames/observation.state", "<f4", [2**40, STATE_DIM], 0,
                                        nbytes]], "data_bytes": nbytes})
    return codec._PREFIX.pack(codec.MAGIC, codec.SCHEMA_VERSION, 0, len(header)) + header


def flipped(payload: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    raw = bytearray(payload)
    for position in rng.integers(0, len(raw), 8):
        raw[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(raw)


def hostile_payloads(max_payload_bytes: int) -> dict[str, tuple[str, bytes]]:
    """{class name: (kind, payload)}: one payload per hostile class. None may reach the buffer."""
    T, good = 4, hiljax_episode(4)
    deep = lerobot_transition(np.random.default_rng(3))
    for _ in range(100):
        deep["state"] = {"s": deep["state"]}
    evil = (FIXTURES / "evil_transitions.pt").read_bytes()
    t = "transitions"
    return {
        # hiljax codec: framing
        "garbage bytes": (t, b"\x00not a payload" * 8),
        "truncated episode": (t, good[: len(good) // 2]),
        "bit flips": (t, flipped(good, 1)),
        "declared size beyond the payload": (t, declared_size_bomb()),
        "oversize payload": (t, b"HJXP" + bytes(max_payload_bytes + 64)),
        "not an episode (schema)": (t, codec.encode({"x": np.zeros(3)})),
        # hiljax codec: structure
        "steps a dict of dicts": (t, hiljax_episode(T, dones={"a": np.zeros(T, bool)})),
        "steps an array": (t, codec.encode({"frames": {"observation.state": np.zeros((5, 18))},
                                            "steps": np.zeros(T)},
                                           meta={"schema": wire.EPISODE_SCHEMA})),
        "0-d rewards": (t, hiljax_episode(T, rewards=np.float32(1))),
        "missing field": (t, hiljax_episode(T, dones=None)),
        "rows of different lengths": (t, hiljax_steps_episode(
            {"actions": np.zeros((3, ACTION_DIM), np.float32), "rewards": np.zeros(3, np.float32),
             "dones": np.zeros(2, bool), "truncateds": np.zeros(3, bool),
             "is_intervention": np.zeros(3, bool), "discrete_penalty": np.zeros(3, np.float32)})),
        # hiljax codec: the learner's spec
        "missing observation key": (t, hiljax_episode(T, **{"observation.state": None,
                                                            "observation.other": np.zeros((5, 2))})),
        "extra observation key": (t, hiljax_episode(T, **{"observation.extra": np.zeros((5, 2))})),
        "wrong observation shape": (t, hiljax_episode(
            T, **{"observation.state": np.zeros((T + 1, STATE_DIM + 1), np.float32)})),
        "wrong action dim": (t, hiljax_episode(T, actions=np.zeros((T, ACTION_DIM - 1), np.float32))),
        "NaN observation": (t, hiljax_episode(
            T, **{"observation.state": np.full((T + 1, STATE_DIM), np.nan, np.float32)})),
        "Inf reward": (t, hiljax_episode(T, rewards=np.array([0, np.inf, 0, 0], np.float32))),
        "float64 reward beyond float32": (t, hiljax_episode(T, rewards=np.full(T, 1e300))),
        # LeRobot codec
        "reward a dict": (t, lerobot_episode(reward={"r": 1.0})),
        "reward None": (t, lerobot_episode(reward=None)),
        "state a bare tensor": (t, lerobot_episode(state=np.zeros((1, STATE_DIM), np.float32))),
        "nested list (shared references)": (t, nested_list_bomb(30)),
        "nesting 100 deep": (t, lerobot_codec.encode_transitions([deep])),
        "shared tensor stacked 10 000 times": (t, shared_reference_bomb(10_000)),
        "stride-0 tensor view": (t, stride_zero_bomb()),
        "empty-dict pickle bomb": (t, lerobot_archive(
            b"\x80\x02](" + b"}" * (lerobot_codec.MAX_PICKLE_BYTES + 1) + b"e.")),
        "disallowed pickle global": (t, evil),
        "LeRobot NaN reward": (t, lerobot_episode(reward=float("nan"))),
        # episode statistics
        "statistics memo index": (
            "interactions", b"\x80\x02Nr" + (0xFFFFFFF0).to_bytes(4, "little") + b"."),
        "statistics not numbers": ("interactions", codec.encode(
            {}, meta={"schema": wire.INTERACTIONS_SCHEMA, "stats": {"x": [1, 2]}})),
        "statistics a huge int": ("interactions", pickle.dumps({"x": 10**400})),
    }


# ----------------------------------------------------------------------------- the learner


def make_learner(kind: str, limits: Limits, run_dir: Path):
    from hiljax.config import (
        ActorLearnerConfig,
        ActorNetworkConfig,
        CriticNetworkConfig,
        LearnerConfig,
        SACConfig,
    )
    from hiljax.learner import Learner
    from transport.factory import make_learner_transport

    policy = SACConfig(input_features={"observation.state": (STATE_DIM,)},
                       continuous_action_dim=ACTION_DIM - 1, num_discrete_actions=3,
                       latent_dim=16, batch_size=8, online_buffer_capacity=200_000,
                       offline_buffer_capacity=1_000,
                       critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16, 16)),
                       actor_network_kwargs=ActorNetworkConfig(hidden_dims=(16, 16)),
                       discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16,)))
    config = LearnerConfig(policy=policy, output_dir=str(run_dir), transport=kind,
                           max_payload_mb=limits.max_payload_bytes / MIB,
                           max_actors=limits.max_actors,
                           actor_learner_config=ActorLearnerConfig(learner_port=0))
    options = None
    if kind == "grpc":
        from transport.factory import GrpcServerOptions

        options = GrpcServerOptions(max_actors=limits.max_actors)
    transport = make_learner_transport(
        kind, "127.0.0.1", 0, max_payload_bytes=limits.max_payload_bytes,
        queue_max_items=limits.queue_max_items, queue_max_bytes=limits.queue_max_bytes,
        options=options).start()
    return Learner.create(config, transport), transport


def send(kind: str, address: str, client_id: str, payload_kind: str, payload: bytes) -> None:
    """One payload from a real actor transport; returns once it was acknowledged or refused."""
    actor = make_actor_transport(kind, address, client_id=client_id,
                                 max_payload_bytes=len(payload) + MIB)
    try:
        if not actor.ready(timeout=10):
            raise RuntimeError(f"{client_id}: no handshake with the learner")
        getattr(actor, f"send_{payload_kind}")(payload)
        actor.flush(timeout=10)
    finally:
        actor.close()


def ingest_for(learner, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        learner.ingest(timeout=0.05)


def try_hostile(kind: str, learner, transport, limits: Limits) -> dict:
    """Each hostile class from its own client; then a good episode from another one."""
    refused, stored_by = 0, []
    payloads = hostile_payloads(limits.max_payload_bytes)
    for index, (name, (payload_kind, payload)) in enumerate(payloads.items()):
        before = (len(learner.online), len(learner.offline), learner.counters["episodes"])
        try:
            send(kind, transport.address, f"hostile-{index}", payload_kind, payload)
        except Exception as error:  # noqa: BLE001 - a client-side refusal is a refusal too
            log.info("%s: the client refused to send it: %s", name, error)
        ingest_for(learner, 0.3)
        if (len(learner.online), len(learner.offline), learner.counters["episodes"]) == before:
            refused += 1
        else:
            stored_by.append(name)
    before = len(learner.online)
    send(kind, transport.address, "honest", "transitions", hiljax_episode(10, seed=5))
    ingest_for(learner, 0.5)
    return {"hostile_classes_tried": len(payloads), "refused": refused,
            "stored_anyway": stored_by, "still_serving": len(learner.online) == before + 10}


# ----------------------------------------------------------------------------- the flood


def flood_payload(index: int, max_payload_bytes: int) -> bytes:
    """Just under the payload limit: a long hiljax episode, or a LeRobot image episode."""
    budget = int(max_payload_bytes * 0.9)
    if index % 2 == 0:
        step_bytes = STATE_DIM * 4 + ACTION_DIM * 4 + 4 + 3 + 4
        return hiljax_episode(max(1, budget // step_bytes), seed=index)
    side = 64
    frame_bytes = 3 * side * side * 4
    rng = np.random.default_rng(index)
    transitions = [lerobot_transition(rng, side) for _ in range(max(1, budget // (2 * frame_bytes)))]
    return lerobot_codec.encode_transitions(transitions)


def flood_client(kind: str, address: str, client_id: str, count: int, index: int,
                 max_payload_bytes: int) -> None:
    """A flood process: `count` maximal payloads, as fast as back-pressure allows."""
    payload = flood_payload(index, max_payload_bytes)
    actor = make_actor_transport(kind, address, client_id=client_id,
                                 max_payload_bytes=max_payload_bytes)
    actor.ready(timeout=30)
    for _ in range(count):
        actor.send_transitions(payload)
    actor.flush(timeout=120)
    actor.close()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def flood(kind: str, learner, transport, limits: Limits) -> dict:
    gc.collect()
    baseline = rss_bytes()
    worst, stop = [baseline], threading.Event()

    def sample():
        while not stop.is_set():
            worst[0] = max(worst[0], rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    spawn = multiprocessing.get_context("spawn")
    clients = [spawn.Process(target=flood_client, args=(
        kind, transport.address, f"flood-{i}", limits.payloads_per_client, i,
        limits.max_payload_bytes)) for i in range(limits.clients)]
    rejected_before, payloads_before = (learner.counters["rejected_payloads"],
                                        learner.counters["transition_payloads"])
    started = time.monotonic()
    for client in clients:
        client.start()
    expected = limits.clients * limits.payloads_per_client
    while time.monotonic() - started < 300:
        learner.ingest(timeout=0.05)
        done = (learner.counters["rejected_payloads"] - rejected_before
                + learner.counters["transition_payloads"] - payloads_before)
        if done >= expected and not any(c.is_alive() for c in clients):
            break
    for client in clients:
        client.join(timeout=30)
    stop.set()
    sampler.join()
    bound = ingest_bound_bytes(limits, kind) + learner.online.nbytes + learner.offline.nbytes
    return {"flood_payloads": expected, "flood_seconds": round(time.monotonic() - started, 1),
            "flood_stored": learner.counters["transition_payloads"] - payloads_before,
            "flood_refused": learner.counters["rejected_payloads"] - rejected_before,
            "flood_worst_rss_mb": round((worst[0] - baseline) / MIB, 1),
            "formula_bound_mb": round(bound / MIB, 1),
            # K is reached by pickle / header bombs (refused in phase 1), not by a flood.
            "formula_bound_without_constants_mb": round((bound - DECODER_CONSTANTS) / MIB, 1)}


def restart_cycles(kind: str, cycles: int) -> dict:
    """The third phase: the learner SIGKILLed mid-stream and restarted `cycles` times, an actor
    killed and replaced every second cycle (benchmarks/kill_restart.py), then every
    acknowledged transition counted in the final buffer."""
    from kill_restart import run_kill_cycles  # benchmarks/ is on sys.path when run as a script

    tally = run_kill_cycles(kind, cycles)
    return {"restart_cycles": cycles, "transitions_acknowledged": tally["transitions_acknowledged"],
            "transitions_lost": tally["transitions_lost"],
            "transitions_duplicated": tally["transitions_duplicated"]}


def run(kind: str, limits: Limits) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        learner, transport = make_learner(kind, limits, Path(tmp) / "run")
        try:
            hostile = try_hostile(kind, learner, transport, limits)
            flooded = flood(kind, learner, transport, limits)
        finally:
            learner.close()
            transport.stop()
    return {**hostile, **flooded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="small payloads, fewer of them")
    parser.add_argument("--transport", choices=("grpc", "zmq", "both"), default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the refusals are expected: keep them quiet
    limits = SHORT if args.short else FULL
    kinds = ("grpc", "zmq") if args.transport == "both" else (args.transport,)
    results = {kind: run(kind, limits) for kind in kinds}
    for kind in kinds:
        results[kind].update(restart_cycles(kind, 1 if args.short else 3))
    print(f"limits: payload {limits.max_payload_bytes / MIB:g} MiB, queue "
          f"{limits.queue_max_bytes / MIB:g} MiB x {limits.queue_max_items} per kind, "
          f"{limits.clients} flood clients x {limits.payloads_per_client} payloads")
    for kind, r in results.items():
        print(f"{kind:5s} hostile: {r['refused']}/{r['hostile_classes_tried']} refused"
              f"{' (stored: ' + ', '.join(r['stored_anyway']) + ')' if r['stored_anyway'] else ''}"
              f", still serving: {r['still_serving']}; flood: {r['flood_payloads']} payloads in "
              f"{r['flood_seconds']} s ({r['flood_stored']} stored, {r['flood_refused']} refused),"
              f" worst RSS +{r['flood_worst_rss_mb']} MiB vs bound {r['formula_bound_mb']} MiB"
              f" ({r['formula_bound_without_constants_mb']} MiB without the decoder constants)")
        print(f"{kind:5s} {r['restart_cycles']} learner SIGKILL/restart cycles: "
              f"{r['transitions_acknowledged']} transitions acknowledged, "
              f"{r['transitions_lost']} lost, {r['transitions_duplicated']} duplicated")
    summary = {  # classes count once; "refused" are those refused over every transport
        "hostile_classes_tried": max(r["hostile_classes_tried"] for r in results.values()),
        "refused": min(r["refused"] for r in results.values()),
        "still_serving": all(r["still_serving"] for r in results.values()),
        "flood_worst_rss_mb": max(r["flood_worst_rss_mb"] for r in results.values()),
        "formula_bound_mb": min(r["formula_bound_mb"] for r in results.values()),
        "formula_bound_without_constants_mb": min(
            r["formula_bound_without_constants_mb"] for r in results.values()),
        "restart_cycles_survived": sum(r["restart_cycles"] for r in results.values()
                                       if r["transitions_lost"] == r["transitions_duplicated"] == 0),
        "transitions_lost": sum(r["transitions_lost"] for r in results.values()),
        "transitions_duplicated": sum(r["transitions_duplicated"] for r in results.values()),
        "transports": list(kinds),
        "short": args.short,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
