"""Transport to replay buffer: transitions/s from an actor's send to "in the learner's buffer".

    .venv/bin/python benchmarks/ingest_throughput.py            # both transports, codecs, obs
    .venv/bin/python benchmarks/ingest_throughput.py --quick    # fewer episodes

LeRobot measured its transport as transitions into the learner's replay buffer, so this counts
everything on the way: the actor transport's send, the wire, the learner transport, decoding
(hiljax's codec, or a stock LeRobot actor's torch.save list of transition dicts, read
torch-free), validation against the policy's spec, and the insertion into the online buffer
(`Learner.ingest`, on this process's main thread as on the learner's ingest thread).

One actor process (spawn: numpy and the transport only) pre-encodes its episodes (100 steps
each: a 10 s episode at 10 Hz), then sends them as fast as back-pressure lets it through the real
actor transport; the clock starts at its first send (CLOCK_MONOTONIC is shared by the processes)
and stops when the learner's buffer holds every transition. Observations: an 18-d state
("state"), or the state plus two 128x128 cameras ("images"; LeRobot's codec carries float32
pixels in [0, 1], hiljax's uint8). No training runs meanwhile: this is the ingest path's own
ceiling on this machine. Prints a table and ends with ONE line of JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiljax import wire
from transport import lerobot_codec

STATE_DIM, ACTION_DIM, STEPS, SIDE = 18, 4, 100, 128
CAMERAS = ("front", "wrist")


# ----------------------------------------------------------------------------- the actor


def hiljax_episode(images: bool, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    frames = {"observation.state": rng.normal(size=(STEPS + 1, STATE_DIM)).astype(np.float32)}
    if images:
        for camera in CAMERAS:
            frames[f"observation.images.{camera}"] = rng.integers(
                0, 256, (STEPS + 1, SIDE, SIDE, 3), dtype=np.uint8)
    steps = {"actions": rng.uniform(-1, 1, (STEPS, ACTION_DIM)).astype(np.float32),
             "rewards": np.zeros(STEPS, np.float32), "dones": np.eye(STEPS, dtype=bool)[-1],
             "truncateds": np.zeros(STEPS, bool), "is_intervention": np.zeros(STEPS, bool),
             "discrete_penalty": np.zeros(STEPS, np.float32)}
    return wire.encode_episode(frames, steps)


def lerobot_episode(images: bool, seed: int) -> bytes:
    """As a stock LeRobot actor sends it: one dict of (1, ...) tensors per transition."""
    rng = np.random.default_rng(seed)

    def observation():
        out = {"observation.state": rng.normal(size=(1, STATE_DIM)).astype(np.float32)}
        if images:
            for camera in CAMERAS:
                out[f"observation.images.{camera}"] = rng.random((1, 3, SIDE, SIDE),
                                                                 dtype=np.float32)
        return out

    transitions = [{"state": observation(), "action": rng.uniform(-1, 1, (1, ACTION_DIM)).astype(
                        np.float32),
                    "reward": 0.0, "next_state": observation(), "done": step == STEPS - 1,
                    "truncated": False,
                    "complementary_info": {"discrete_penalty": np.zeros(1, np.float32),
                                           "is_intervention": np.array(False)}}
                   for step in range(STEPS)]
    return lerobot_codec.encode_transitions(transitions)


def actor_process(kind: str, address: str, codec: str, images: bool, episodes: int,
                  started) -> None:
    from transport.factory import make_actor_transport

    make = hiljax_episode if codec == "hiljax" else lerobot_episode
    payloads = [make(images, seed) for seed in range(episodes)]
    actor = make_actor_transport(kind, address, client_id=f"bench-{codec}",
                                 max_payload_bytes=1 << 30, max_queue_bytes=1 << 30)
    assert actor.ready(timeout=30)
    started.value = time.monotonic()
    for payload in payloads:
        actor.send_transitions(payload)  # blocks while the queue is full: back-pressure
    actor.flush(timeout=600)
    actor.close()


# ----------------------------------------------------------------------------- the learner


def make_learner(kind: str, images: bool, run_dir: Path):
    from hiljax.config import (
        ActorLearnerConfig,
        ActorNetworkConfig,
        CriticNetworkConfig,
        LearnerConfig,
        SACConfig,
    )
    from hiljax.learner import Learner
    from transport.factory import make_learner_transport

    features = {"observation.state": (STATE_DIM,)}
    if images:
        features.update({f"observation.images.{c}": (SIDE, SIDE, 3) for c in CAMERAS})
    policy = SACConfig(input_features=features, continuous_action_dim=ACTION_DIM - 1,
                       num_discrete_actions=3, latent_dim=16, batch_size=8,
                       vision_encoder_name="resnet10" if images else None,
                       online_buffer_capacity=20_000, offline_buffer_capacity=1_000,
                       critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16, 16)),
                       actor_network_kwargs=ActorNetworkConfig(hidden_dims=(16, 16)),
                       discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=(16,)))
    config = LearnerConfig(policy=policy, output_dir=str(run_dir), transport=kind,
                           max_payload_mb=1024, save_freq=10**9,
                           actor_learner_config=ActorLearnerConfig(learner_port=0))
    transport = make_learner_transport(kind, "127.0.0.1", 0, max_payload_bytes=1 << 30).start()
    return Learner.create(config, transport), transport


def measure(kind: str, codec: str, images: bool, episodes: int, learner) -> dict:
    context = multiprocessing.get_context("spawn")
    started = context.Value("d", 0.0)
    before = learner.counters["transitions"]
    expected = before + episodes * STEPS
    process = context.Process(target=actor_process, daemon=True,
                              args=(kind, learner.transport.address, codec, images, episodes,
                                    started))
    process.start()
    rejected = learner.counters["rejected_payloads"]
    deadline = time.monotonic() + 600
    while learner.counters["transitions"] < expected:
        learner.ingest(timeout=0.05)
        if learner.counters["rejected_payloads"] > rejected:
            raise SystemExit(f"{kind}/{codec}: the learner refused a payload (see the log)")
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind}/{codec}: not every transition arrived within 10 minutes")
    seconds = time.monotonic() - started.value
    process.join(timeout=30)
    return {"transport": kind, "codec": codec, "observations": "images" if images else "state",
            "transitions": episodes * STEPS, "seconds": seconds,
            "transitions_per_s": episodes * STEPS / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transport", choices=("grpc", "zmq"), nargs="+",
                        default=["grpc", "zmq"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    episodes = {"state": 20 if args.quick else 100, "images": 3 if args.quick else 10}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for kind in args.transport:
            for observations in ("state", "images"):
                images = observations == "images"
                run_dir = Path(scratch) / f"{kind}_{observations}"
                learner, transport = make_learner(kind, images, run_dir)
                try:
                    for codec in ("hiljax", "lerobot"):
                        row = measure(kind, codec, images, episodes[observations], learner)
                        rows.append(row)
                        print(f"{kind:5s} {codec:8s} {observations:7s} "
                              f"{row['transitions']:6d} transitions in {row['seconds']:6.2f} s: "
                              f"{row['transitions_per_s']:9,.0f} transitions/s into the buffer",
                              flush=True)
                finally:
                    learner.close()
                    transport.stop()
    print(json.dumps({"ingest_transitions_per_s": {
        f"{r['transport']}/{r['codec']}/{r['observations']}": round(r["transitions_per_s"])
        for r in rows}, "quick": args.quick}))


if __name__ == "__main__":
    main()
