"""The simulated actors of benchmarks/many_actors.py: processes (spawned once, reused for every
point) that behave like robots at their control rate and send through the real actor transport.
numpy and the transport only: no JAX here, so 16 of them fit beside the learner on two cores."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import psutil

from hiljax import wire
from transport.errors import TransportFull
from transport.factory import make_actor_transport

MAX_LATENCY_RECORDS = 200_000


def observation_layout(config_path: str) -> tuple[dict, int]:
    """{key: (shape, dtype name)} of the policy's observations, and its action dimension."""
    policy = json.loads(Path(config_path).read_text())["policy"]
    layout = {}
    for key, shape in policy["input_features"].items():
        image = key.startswith("observation.image")
        layout[key] = (tuple(shape), "uint8" if image else "float32")
    action_dim = policy["continuous_action_dim"] + (1 if policy.get("num_discrete_actions") else 0)
    return layout, action_dim


class Episode:
    """An episode being recorded, as hiljax.actor.EpisodeRecorder keeps it (frames T + 1)."""

    def __init__(self, layout: dict, action_dim: int, rng: np.random.Generator):
        self.layout, self.action_dim, self.rng = layout, action_dim, rng
        self.frames = {key: [self._observation(key)] for key in layout}
        self.steps = {"actions": [], "rewards": [], "dones": [], "truncateds": [],
                      "is_intervention": [], "discrete_penalty": []}
        self.intervene = set()  # the steps a person takes over (one burst in half the episodes)

    def _observation(self, key: str) -> np.ndarray:
        shape, dtype = self.layout[key]
        if dtype == "uint8":
            return self.rng.integers(0, 256, shape, dtype=np.uint8)
        return self.rng.standard_normal(shape).astype(np.float32)

    def plan(self, length: int) -> None:
        if self.rng.random() < 0.5:
            start = int(self.rng.integers(0, max(1, length - 10)))
            self.intervene = set(range(start, start + 10))

    def step(self, last: bool) -> None:
        index = len(self.steps["rewards"])
        for key in self.layout:
            self.frames[key].append(self._observation(key))
        success = last and self.rng.random() < 0.5
        gripper = float(self.rng.integers(0, 3)) if self.action_dim > 3 else None
        action = self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        if gripper is not None:
            action[-1] = gripper
        self.steps["actions"].append(action)
        self.steps["rewards"].append(1.0 if success else 0.0)
        self.steps["dones"].append(success)
        self.steps["truncateds"].append(last and not success)
        self.steps["is_intervention"].append(index in self.intervene)
        self.steps["discrete_penalty"].append(-0.02 if gripper == 2.0 else 0.0)

    def __len__(self) -> int:
        return len(self.steps["rewards"])

    def payload(self, sender: str, seq: int) -> bytes:
        frames = {key: np.stack(values) for key, values in self.frames.items()}
        steps = {
            "actions": np.stack(self.steps["actions"]),
            "rewards": np.asarray(self.steps["rewards"], np.float32),
            "dones": np.asarray(self.steps["dones"], bool),
            "truncateds": np.asarray(self.steps["truncateds"], bool),
            "is_intervention": np.asarray(self.steps["is_intervention"], bool),
            "discrete_penalty": np.asarray(self.steps["discrete_penalty"], np.float32),
        }
        return wire.encode_episode(frames, steps, sender=sender, seq=seq)

    def statistics(self, interaction_step: int, fps: float) -> dict:
        """hiljax.actor.episode_statistics's keys (LeRobot's names)."""
        interventions = np.asarray(self.steps["is_intervention"], bool)
        return {
            "Episodic reward": float(np.sum(self.steps["rewards"])),
            "Interaction step": int(interaction_step),
            "Episode intervention": int(interventions.any()),
            "Intervention rate": float(interventions.mean()),
            "Policy frequency [Hz]": float(fps or 0.0),
            "Policy frequency 90th-p [Hz]": float(fps or 0.0),
        }


def actor_process(index: int, conn) -> None:
    """A pool worker: waits for a command, runs one simulated actor until told to stop,
    reports, waits for the next command (None: exit)."""
    while True:
        command = conn.recv()
        if command is None:
            return
        try:
            report = run_actor(index, conn, **command)
        except Exception as error:  # noqa: BLE001 - the parent reports it with the point
            report = {"error": f"{type(error).__name__}: {error}"}
        conn.send(("report", report))


def run_actor(index: int, conn, *, kind: str, address: str, config: str, fps: float,
              episode_steps: int, seed: int, point: int) -> dict:
    layout, action_dim = observation_layout(config)
    rng = np.random.default_rng(seed)
    client_id = f"actor-{index}-{os.getpid()}-p{point}"  # unique: a fresh duplicate filter key
    transport = make_actor_transport(kind, address, client_id=client_id)
    if not transport.ready(timeout=120):
        transport.close()
        return {"error": f"no learner answered at {address}"}
    conn.send(("ready", index))

    sends: list[tuple[float, int, int]] = []  # (monotonic at send_transitions, seq, transitions)
    params: list[tuple[float, int]] = []  # (monotonic when decoded, version)
    version, seq, interaction_step = -1, 0, 0
    dropped = late = ticks = 0
    period = 1.0 / fps if fps > 0 else 0.0
    episode = Episode(layout, action_dim, rng)
    episode.plan(episode_steps)
    if fps > 0:  # as if the robot had been running: a random part of its first episode is done
        for _ in range(episode_steps - int(rng.integers(1, episode_steps + 1))):
            episode.step(last=False)
    next_tick = time.monotonic()
    stop = False
    while not stop:
        episode.step(last=len(episode) + 1 == episode_steps)
        interaction_step += 1
        if len(episode) == episode_steps:
            seq += 1
            payload = episode.payload(client_id, seq)
            sent_at = time.monotonic()
            if fps > 0:  # a robot never waits for the learner: hiljax.actor's timeout=0.0
                try:
                    transport.send_transitions(payload, timeout=0.0)
                    sends.append((sent_at, seq, episode_steps))
                except TransportFull:
                    dropped += 1
            else:  # flat out: back-pressure decides the rate
                while not stop:
                    try:
                        transport.send_transitions(payload, timeout=0.5)
                        sends.append((sent_at, seq, episode_steps))
                        break
                    except TransportFull:
                        stop = conn.poll()
            try:
                transport.send_interactions(
                    wire.encode_interactions(episode.statistics(interaction_step, fps)),
                    timeout=0.0)
            except TransportFull:
                pass
            episode = Episode(layout, action_dim, rng)
            episode.plan(episode_steps)
            if len(sends) > MAX_LATENCY_RECORDS:
                sends = sends[-MAX_LATENCY_RECORDS // 2:]
        latest = transport.latest_parameters()
        if latest is not None and latest[0] > version:
            wire.decode_parameters(latest[1])  # a real actor decodes each new version
            version = latest[0]
            params.append((time.monotonic(), version))
        ticks += 1
        if period:
            next_tick += period
            wait = next_tick - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -period:
                late += 1
                if wait < -1.0:  # far behind: start counting from now
                    next_tick = time.monotonic()
        stop = stop or conn.poll()
    conn.recv()  # the "stop" message
    flushed = transport.flush(timeout=60.0)  # what was sent gets in, so every latency counts
    transport.close()
    return {"client_id": client_id, "sends": sends, "params": params, "dropped": dropped,
            "late_ticks": late, "ticks": ticks, "flushed": flushed,
            "rss_mb": psutil.Process().memory_info().rss / 2**20}


class ActorPool:
    """Actor processes, spawned once and reused for every point (spawning 16 Python
    processes on two cores takes longer than a window)."""

    def __init__(self, size: int):
        context = multiprocessing.get_context("spawn")
        self.conns, self.processes = [], []
        for index in range(size):
            parent, child = context.Pipe()
            process = context.Process(target=actor_process, args=(index, child), daemon=True,
                                      name=f"sim-actor-{index}")
            process.start()
            self.conns.append(parent)
            self.processes.append(process)

    def start(self, count: int, timeout: float = 180.0, **command) -> None:
        for index in range(count):
            self.conns[index].send({**command, "seed": 1000 * command["point"] + index})
        deadline = time.monotonic() + timeout
        for index in range(count):
            left = deadline - time.monotonic()
            if not self.conns[index].poll(max(0.0, left)):
                raise RuntimeError(f"actor {index} did not connect within {timeout:.0f} s")
            tag, value = self.conns[index].recv()
            if tag != "ready":
                raise RuntimeError(f"actor {index} failed: {value.get('error')}")

    def stop(self, count: int, timeout: float = 120.0) -> list[dict]:
        for index in range(count):
            self.conns[index].send("stop")
        reports = []
        for index in range(count):
            if not self.conns[index].poll(timeout):
                raise RuntimeError(f"actor {index} did not stop")
            _tag, report = self.conns[index].recv()
            if "error" in report:
                raise RuntimeError(f"actor {index} failed: {report['error']}")
            reports.append(report)
        return reports

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            try:
                times = psutil.Process(process.pid).cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
