"""Transport throughput: gRPC and ZeroMQ with hiljax's codec, against a raw loopback socket.

    python benchmarks/transport_throughput.py [--quick]

For each transport, the learner runs in this process and the actor in a child process (as in
a real run; two processes also sidestep the GIL):
  (a) image episodes: 100 transitions, two 128x128x3 uint8 cameras + state 18 + action 4
      (hiljax layout: the 101 frames of an episode stored once, uint8), encoded by the actor,
      header-checked and decoded (zero-copy) by the learner;
  (b) state-only episodes of 100 transitions;
  (c) 20 MB parameter pushes: time from publish_parameters to the actor holding the decoded
      payload, median over several pushes;
  (d) a raw loopback TCP socket's MB/s, the physical ceiling on this machine.
The last line printed is one JSON object holding every figure.
"""

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transport import codec
from transport.factory import NETWORK_KINDS, make_actor_transport, make_learner_transport

STEPS = 100
# LeRobot's own LearnerService and actor code (torch.save payloads, float32 images) on this
# machine class, as given in issue 3; and the goals set there.
REFERENCE = {
    "image_transitions_per_s": 220,
    "image_mb_per_s": 88,
    "state_transitions_per_s": 2700,
    "push_20mb_median_ms": 105,
}
GOALS = {
    "zmq": {
        "image_transitions_per_s": 2200,
        "state_transitions_per_s": 27000,
        "push_20mb_median_ms": 50,
    },
    "grpc": {"image_transitions_per_s": 900},
}


def make_episode(images: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    observations = {"state": rng.standard_normal((STEPS + 1, 18)).astype(np.float32)}
    if images:
        for camera in ("front", "wrist"):
            observations[camera] = rng.integers(0, 256, (STEPS + 1, 128, 128, 3), dtype=np.uint8)
    return {
        "observations": observations,
        "actions": rng.uniform(-1, 1, (STEPS, 4)).astype(np.float32),
        "rewards": np.zeros(STEPS, np.float32),
        "dones": np.zeros(STEPS, bool),
        "truncateds": np.zeros(STEPS, bool),
        "interventions": np.zeros(STEPS, bool),
    }


# ----------------------------------------------------------------------------- actor process


def actor_sends(kind: str, address: str, images: bool, episodes: int, started, done) -> None:
    actor = make_actor_transport(kind, address, client_id="bench-actor", max_queue_items=8)
    assert actor.ready(timeout=30)
    template = make_episode(images, seed=0)  # payload content does not change the cost
    started.set()
    for seq in range(episodes):
        actor.send_transitions(codec.encode(template, sender=actor.client_id, seq=seq))
    actor.flush(timeout=300)
    done.set()
    actor.close()


def actor_watches_parameters(kind: str, address: str, pushes: int, pipe) -> None:
    actor = make_actor_transport(kind, address, client_id="bench-params")
    assert actor.ready(timeout=30)
    pipe.send("ready")
    seen = -1
    while seen < pushes - 1:
        newest = actor.latest_parameters()
        if newest is not None and newest[0] > seen:
            seen = newest[0]
            codec.decode(newest[1])  # the actor has usable arrays only after this
            pipe.send(seen)
        else:
            time.sleep(0.0002)
    actor.close()


# ----------------------------------------------------------------------------- learner side


def measure_episodes(kind: str, images: bool, episodes: int) -> dict:
    learner = make_learner_transport(kind, port=0, push_frequency_s=0.0).start()
    context = multiprocessing.get_context("spawn")
    started, done = context.Event(), context.Event()
    child = context.Process(
        target=actor_sends, args=(kind, learner.address, images, episodes, started, done)
    )
    child.start()
    try:
        if not started.wait(60):
            raise RuntimeError("actor did not start")
        begin, received, payload_bytes = time.perf_counter(), 0, 0
        while received < episodes:
            for item in learner.poll_transitions(timeout=1.0):
                decoded = codec.decode(item.payload)
                assert decoded.arrays["actions"].shape == (STEPS, 4)
                received += 1
                payload_bytes += len(item.payload)
        elapsed = time.perf_counter() - begin
    finally:
        child.join(timeout=60)
        learner.stop(grace=0)
    return {
        "transitions_per_s": episodes * STEPS / elapsed,
        "mb_per_s": payload_bytes / elapsed / 1e6,
        "payload_mb": payload_bytes / episodes / 1e6,
        "episodes": episodes,
    }


def measure_pushes(kind: str, pushes: int, megabytes: int = 20) -> dict:
    learner = make_learner_transport(kind, port=0, push_frequency_s=0.0).start()
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(
        target=actor_watches_parameters, args=(kind, learner.address, pushes, child_end)
    )
    child.start()
    weights = {
        "w": np.random.default_rng(0).standard_normal(megabytes * 250_000).astype(np.float32)
    }
    latencies = []
    try:
        assert parent_end.poll(60) and parent_end.recv() == "ready"
        for version in range(pushes):
            begin = time.perf_counter()
            learner.publish_parameters(
                codec.encode(weights, sender="learner", seq=version), version
            )
            while True:
                if not parent_end.poll(30):
                    raise RuntimeError(f"push {version} never arrived")
                if parent_end.recv() == version:
                    break
            latencies.append(time.perf_counter() - begin)
            time.sleep(0.05)
    finally:
        child.join(timeout=60)
        learner.stop(grace=0)
    return {
        "push_median_ms": 1000 * statistics.median(latencies),
        "push_min_ms": 1000 * min(latencies),
        "pushes": pushes,
        "push_mb": megabytes,
    }


def measure_raw_tcp(total_mb: int) -> float:
    """MB/s through one loopback TCP connection, 4 MiB writes: the physical ceiling."""
    server = socket.create_server(("127.0.0.1", 0))
    block = bytes(4 << 20)
    total = total_mb * 1_000_000

    def sink():
        connection, _ = server.accept()
        buffer, got = bytearray(4 << 20), 0
        while got < total:
            count = connection.recv_into(buffer)
            if count == 0:
                break
            got += count
        connection.close()

    reader = threading.Thread(target=sink)
    reader.start()
    client = socket.create_connection(server.getsockname())
    begin, sent = time.perf_counter(), 0
    while sent < total:
        client.sendall(block[: min(len(block), total - sent)])
        sent += min(len(block), total - sent)
    reader.join()
    elapsed = time.perf_counter() - begin
    client.close()
    server.close()
    return total / elapsed / 1e6


# ----------------------------------------------------------------------------- report


def run(quick: bool) -> dict:
    counts = {
        "image": 6 if quick else 30,
        "state": 100 if quick else 1000,
        "pushes": 5 if quick else 15,
    }
    figures = {"raw_tcp_mb_per_s": measure_raw_tcp(500 if quick else 2000)}
    print(f"raw loopback TCP: {figures['raw_tcp_mb_per_s']:.0f} MB/s (physical ceiling)")
    for kind in NETWORK_KINDS:
        image = measure_episodes(kind, images=True, episodes=counts["image"])
        state = measure_episodes(kind, images=False, episodes=counts["state"])
        push = measure_pushes(kind, counts["pushes"])
        figures[kind] = {
            "image_transitions_per_s": image["transitions_per_s"],
            "image_mb_per_s": image["mb_per_s"],
            "image_episode_mb": image["payload_mb"],
            "state_transitions_per_s": state["transitions_per_s"],
            "state_mb_per_s": state["mb_per_s"],
            "push_20mb_median_ms": push["push_median_ms"],
            "push_20mb_min_ms": push["push_min_ms"],
        }
        report(kind, figures[kind])
    figures["reference"] = REFERENCE
    figures["goals"] = GOALS
    figures["counts"] = counts
    figures["cpu_count"] = os.cpu_count()
    return figures


def report(kind: str, figures: dict) -> None:
    ref = REFERENCE
    print(f"\n{kind}:")
    print(
        f"  image episodes : {figures['image_transitions_per_s']:8.0f} transitions/s "
        f"({figures['image_mb_per_s']:.0f} MB/s of payload, {figures['image_episode_mb']:.1f} MB/episode) "
        f"= {figures['image_transitions_per_s'] / ref['image_transitions_per_s']:.1f}x reference "
        f"({ref['image_transitions_per_s']}/s, {ref['image_mb_per_s']} MB/s)"
    )
    print(
        f"  state episodes : {figures['state_transitions_per_s']:8.0f} transitions/s "
        f"= {figures['state_transitions_per_s'] / ref['state_transitions_per_s']:.1f}x reference "
        f"({ref['state_transitions_per_s']}/s)"
    )
    print(
        f"  20 MB push     : {figures['push_20mb_median_ms']:8.1f} ms median "
        f"(reference {ref['push_20mb_median_ms']} ms)"
    )
    for name, goal in GOALS[kind].items():
        value = figures[name]
        met = value <= goal if name.endswith("_ms") else value >= goal
        print(
            f"  goal {name} {'<=' if name.endswith('_ms') else '>='} {goal}: {'met' if met else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="transport throughput benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer episodes and pushes")
    figures = run(parser.parse_args().quick)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
