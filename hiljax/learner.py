"""The learner process: ingest episodes, train SAC with jitted UTD rounds, push parameters.

    python -m hiljax.learner --config CONFIG [--transport grpc|zmq] [--policy.utd_ratio=4 ...]

One loop, as the reference's: poll the transport for episodes and episode statistics, insert
them into the replay buffers (interventions into the offline buffer too), run one UTD round once
the online buffer holds `online_step_before_learning` transitions, push the newest actor
parameters every `policy_parameters_push_frequency` seconds, log, checkpoint every `save_freq`
rounds and on SIGINT/SIGTERM. A payload that cannot be decoded or inserted is logged with the
client's name and dropped; everyone else is still served.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hiljax import wire
from hiljax.agents.device_buffer import DeviceReplay
from hiljax.agents.sac import SACAgent, observation_spec
from hiljax.agents.sharding import (
    batch_sharding,
    check_batch_size,
    initialize_distributed,
    make_mesh,
    replicate,
    shard_batch,
    to_host,
)
from hiljax.config import ConfigError, LearnerConfig, to_dict
from hiljax.interop.lerobot_sac import push_state_dicts
from hiljax.run.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
)
from hiljax.run.device import select_learner_device
from hiljax.run.durability import attach_journal
from hiljax.run.ingest import buffer_batch, fill_offline_buffer, validate_batch
from hiljax.run.metrics import MetricsLogger
from hiljax.run.multihost import gather_rng_states, run_lockstep, sampling_rng, share_checkpoint
from hiljax.run.pipeline import BackgroundLoop, BatchPrefetcher, Tracer
from hiljax.storage.buffer import ReplayBuffer, sample_mixed
from hiljax.transition import TransitionBatch
from transport import lerobot_codec
from transport.errors import PayloadError
from transport.interface import (
    CODEC_HILJAX,
    CODEC_LEROBOT,
    KIND_INTERACTIONS,
    LearnerTransport,
    Received,
)

log = logging.getLogger(__name__)


class Learner:
    def __init__(self, config: LearnerConfig, transport: LearnerTransport, agent: SACAgent,
                 online: ReplayBuffer, offline: ReplayBuffer, rng: np.random.Generator,
                 counters: dict | None = None):
        self.config, self.transport = config, transport
        self.online, self.offline, self.rng = online, offline, rng
        # Data-parallel: the agent replicated on every local device, batch rows split.
        self._mesh = make_mesh() if config.data_parallel else None
        if self._mesh is not None:
            check_batch_size(config.policy.batch_size, self._mesh)
            agent = replicate(agent, self._mesh)
            log.info("data-parallel over %d devices", self._mesh.devices.size)
        self.agent = agent
        # episodes: episode statistics received; transition_payloads: episodes or, when actors
        # stream, parts of episodes.
        self.counters = {"transitions": 0, "transition_payloads": 0, "episodes": 0,
                         "interventions": 0, "rejected_payloads": 0, **(counters or {})}
        self.run_dir = Path(config.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsLogger(self.run_dir, wandb_project=config.wandb_project,
                                     run_config=to_dict(config))
        self._last_push = -float("inf")
        self._pushed_step = -1
        self._max_bytes = int(config.max_payload_mb * 2**20)
        # The device's step counter mirrored on the host: reading agent.step would wait for the
        # round in flight, every round.
        self._host_step = int(agent.step)
        self._window = (self._host_step, time.perf_counter())  # for rounds/s between log lines
        self._rounds_per_s = self._batch_wait_ms = self._batch_wait_s = 0.0
        # A copy of the frozen backbone that no round ever donates: the ingest thread computes
        # cached features with it while rounds run.
        self._frozen = jax.tree.map(jnp.array, agent.frozen_backbone_parameters())
        # What rounds sample from: the host buffers, or their copies on the device.
        self._sources = self._sample_sources(config.policy.storage_device)
        self._prefetch: BatchPrefetcher | None = None
        self._ingest_loop: BackgroundLoop | None = None
        self._donate = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, config: LearnerConfig, transport: LearnerTransport) -> Learner:
        """A fresh run, or the latest checkpoint of `output_dir` when `config.resume`."""
        checkpoints = Path(config.output_dir) / "checkpoints"
        if config.resume:
            if latest_checkpoint(checkpoints) is None:
                raise ConfigError(f"--resume: no checkpoint in {checkpoints}")
            state = load_checkpoint(checkpoints)
            # Checkpoints before the transport kept its own state held the filter at the top.
            transport.restore(state.extra.get("transport")
                              or {"duplicates": state.extra.get("duplicates")})
            return cls(config, transport, state.agent, state.buffers["online"],
                       state.buffers["offline"], sampling_rng(config.policy.seed, state.extra),
                       state.extra.get("counters"))
        if (Path(config.output_dir) / "metrics.jsonl").exists() or checkpoints.exists():
            raise ConfigError(f"{config.output_dir} already holds a run: pass resume=true to "
                              "continue it, or choose another output_dir")
        policy = config.policy
        spec = observation_spec(policy)
        agent = SACAgent.create(policy, jax.random.key(policy.seed))
        offline = ReplayBuffer(policy.offline_buffer_capacity, spec, policy.action_dim)
        if config.dataset:  # before the run directory exists: a bad dataset leaves nothing
            fill_offline_buffer(offline, config, agent.params)
        return cls(config, transport, agent,
                   ReplayBuffer(policy.online_buffer_capacity, spec, policy.action_dim),
                   offline, sampling_rng(policy.seed))

    # ------------------------------------------------------------------ ingest
    def ingest(self, timeout: float = 0.0) -> int:
        """Insert every episode the transport holds; log episode statistics. Returns #transitions."""
        return self.ingest_items(self.poll_items(timeout))

    def poll_items(self, timeout: float = 0.0) -> list[Received]:
        """What the transport holds: episodes, then episode statistics (still encoded)."""
        return [*self.transport.poll_transitions(timeout=timeout),
                *self.transport.poll_interactions()]

    def ingest_items(self, items: list[Received]) -> int:
        """Decode and insert `items` (a multi-host learner's every process inserts the same)."""
        inserted = 0
        for item in items:
            if item.kind == KIND_INTERACTIONS:
                self._log_statistics(item)
                continue
            try:
                batch = wire.decode_transitions(item.codec, item.payload, self._max_bytes)
                validate_batch(batch, self.config.policy, non_finite=self.config.non_finite,
                               source=item.client_id)
                batch = self._prepare(batch)
                self.online.add_batch(**batch.as_kwargs())
            except Exception as error:  # noqa: BLE001 - one bad payload must not stop the learner
                self.counters["rejected_payloads"] += 1
                log.error("dropped an episode from %s: %s: %s", item.client_id,
                          type(error).__name__, error)
                continue
            interventions = batch["is_intervention"]
            if interventions.any():
                self.offline.add_batch(**batch.select(interventions).as_kwargs())
            inserted += len(batch)
            self.counters["transitions"] += len(batch)
            self.counters["transition_payloads"] += 1
            self.counters["interventions"] += int(interventions.sum())
        return inserted

    def _log_statistics(self, item: Received) -> None:
        try:
            stats = wire.decode_interactions(item.codec, item.payload)
        except PayloadError as error:
            self.counters["rejected_payloads"] += 1
            log.error("dropped episode statistics from %s: %s", item.client_id, error)
            return
        self.counters["episodes"] += 1
        self.metrics.log("actor", self.counters["transitions"], {**stats, "client": item.client_id})

    def _prepare(self, batch: TransitionBatch) -> TransitionBatch:
        return buffer_batch(self.config.policy, {"backbone": self._frozen, "critic": {}}, batch)

    # ------------------------------------------------------------------ train
    @property
    def ready_to_learn(self) -> bool:
        return len(self.online) >= max(1, self.config.policy.online_step_before_learning)

    @property
    def rounds_per_s(self) -> float:
        """UTD rounds per second between the last two metric lines."""
        return self._rounds_per_s

    @property
    def step_count(self) -> int:
        """UTD rounds done (dispatched), without waiting for the device."""
        return self._host_step

    def _sample_sources(self, storage_device: str) -> tuple:
        if storage_device != "device":
            return self.online, self.offline
        needed = self.online.nbytes + self.offline.nbytes
        device = jax.devices()[0]
        limit = (device.memory_stats() or {}).get("bytes_limit")
        if limit and needed > 0.8 * limit:
            raise ConfigError(f"storage_device=device: the buffers need {needed / 2**30:.1f} GiB, "
                              f"{device.device_kind} has {limit / 2**30:.1f} GiB; lower the "
                              "buffer capacities or use storage_device=cpu")
        log.info("replay buffers mirrored on %s (%.2f GiB)", device.device_kind, needed / 2**30)
        return DeviceReplay(self.online), DeviceReplay(self.offline)

    def _sample(self, processes: int = 1) -> dict:
        policy = self.config.policy
        online, offline = self._sources
        return sample_mixed(online, offline, policy.batch_size // processes, self.rng,
                            policy.online_ratio, num_batches=policy.utd_ratio)

    @property
    def _batch_sharding(self):
        """Where a round's batch goes: rows split over the mesh, or the default device."""
        return batch_sharding(self._mesh) if self._mesh is not None else None

    def _sample_placed(self) -> dict:
        if jax.process_count() > 1:  # this host's rows of the global batch, from its buffers
            return shard_batch(self._sample(jax.process_count()), self._mesh)
        batch = self._sample()
        sharding = self._batch_sharding
        return batch if sharding is None else jax.device_put(batch, sharding)

    def train_round(self) -> dict | None:
        """Dispatch one UTD round. The device runs it asynchronously: metrics are read (and the
        loop waits for the device) only every log_freq rounds."""
        if not self.ready_to_learn:
            return None
        waited = time.perf_counter()
        with jax.profiler.TraceAnnotation("learner: next batch"):
            batch = (self._prefetch.next() if self._prefetch is not None
                     else self._sample_placed())
        self._batch_wait_s += time.perf_counter() - waited
        with jax.profiler.TraceAnnotation("learner: dispatch round"):
            self.agent, metrics = self.agent.update(batch, donate=self._donate)
        self._host_step += 1
        step = self._host_step
        if step % self.config.log_freq == 0:
            self.metrics.log("train", step, self._summary(metrics))
        if step % self.config.save_freq == 0:
            self.save()
        return metrics

    def _summary(self, metrics: dict) -> dict:
        values = {k: float(v) for k, v in to_host(metrics).items()}  # waits for the round
        steps, since = self._window
        now = time.perf_counter()
        if self._host_step > steps:
            rounds = self._host_step - steps
            self._rounds_per_s = rounds / max(now - since, 1e-9)
            # Time the loop waited for its batch: > 0 means sampling, not the device, is the limit.
            self._batch_wait_ms = 1000 * self._batch_wait_s / rounds
            self._window, self._batch_wait_s = (self._host_step, now), 0.0
        return {**values, "buffer_online": len(self.online), "buffer_offline": len(self.offline),
                "steps_per_s": self._rounds_per_s, "batch_wait_ms": self._batch_wait_ms,
                **self.counters}

    # ------------------------------------------------------------------ parameters
    def push_parameters(self, force: bool = False) -> bool:
        """Publish the newest actor parameters if the push period passed and they changed."""
        period = self.config.actor_learner_config.policy_parameters_push_frequency
        step = self._host_step
        now = time.monotonic()
        if not force and (now - self._last_push < period or step == self._pushed_step):
            return False
        actor_params = to_host(self.agent.actor_parameters())
        payloads = {CODEC_HILJAX: wire.encode_parameters({"actor": actor_params}, version=step,
                                                         meta=self._parameters_meta())}
        if self._serves_lerobot:
            payloads[CODEC_LEROBOT] = self._lerobot_parameters(actor_params)
        self.transport.publish_parameters(payloads, version=step)
        self._last_push, self._pushed_step = now, step
        return True

    @property
    def _serves_lerobot(self) -> bool:
        wanted = self.config.publish_lerobot_parameters
        return self.config.transport == "grpc" if wanted is None else wanted

    def _lerobot_parameters(self, actor_params: dict) -> bytes:
        """torch.save({"policy": ..., "discrete_critic": ...}) bytes, as LeRobot's learner pushes
        (the frozen backbone included: LeRobot's actor loads it strictly; converted once)."""
        if not hasattr(self, "_lerobot_cache"):
            self._lerobot_cache: dict = {}
            self._frozen_numpy = to_host(self._frozen)
            policy = self.config.policy
            if policy.image_keys and policy.image_normalization == "imagenet":
                log.warning("if stock LeRobot actors (0.4) connect: they feed their ResNet10 "
                            "[0, 1] pixels, this policy ImageNet-normalised ones, so their "
                            "actions will differ from hiljax's actors' (set "
                            "policy.image_normalization=none for the same actions)")
        state_dicts = push_state_dicts(self.config.policy, actor_params, self._frozen_numpy,
                                       cache=self._lerobot_cache)
        return lerobot_codec.encode_state_dict(state_dicts)

    def _parameters_meta(self) -> dict:
        """The frozen backbone is not sent (it never changes): actors rebuild it from the same
        config (seed or pretrained file) and check this digest before acting with it."""
        if not hasattr(self, "_backbone_digest"):
            frozen = to_host(self._frozen)
            self._backbone_digest = wire.tree_digest(frozen) if frozen else None
        return {"frozen_backbone_sha256": self._backbone_digest}

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> Path | None:
        # The transport's state (which payloads it already took) lets a restarted learner
        # refuse the actors' retransmissions of episodes it already holds.
        rng_by_process = gather_rng_states(self.rng)  # multi-host: a collective, all call it
        if jax.process_index() != 0:
            return None  # a multi-host run is checkpointed by its process 0
        extra = {"rng": rng_state(self.rng), "counters": self.counters,
                 "transport": self.transport.state()}
        if rng_by_process:
            extra["rng_by_process"] = rng_by_process
        agent = self.agent if jax.process_count() == 1 else _agent_on_host(self.agent)
        return save_checkpoint(self.run_dir / "checkpoints", agent,
                               buffers={"online": self.online, "offline": self.offline},
                               extra=extra, keep=self.config.keep_checkpoints)

    def close(self) -> None:
        self.stop_pipeline()
        self.metrics.close()

    # ------------------------------------------------------------------ loop
    def start_pipeline(self, prefetch: int = 2) -> None:
        """From now on: episodes are ingested on their own thread, the next `prefetch` batches
        are sampled and put on the device while a round runs, and each round's agent buffers
        are donated to the next (no second copy of the parameters and optimiser states).
        `step()` then only trains and pushes. Without it, `step()` does everything in turn."""
        self._donate = True
        self._ingest_loop = BackgroundLoop(lambda: self.ingest(timeout=0.05), "ingest")
        if prefetch > 0:
            self._prefetch = BatchPrefetcher(
                lambda: self._sample() if self.ready_to_learn else None, depth=prefetch,
                sharding=self._batch_sharding)

    def stop_pipeline(self) -> None:
        for part in (self._prefetch, self._ingest_loop):
            if part is not None:
                part.close()
        self._prefetch = self._ingest_loop = None

    def step(self) -> dict | None:
        """One pass of the loop: ingest (unless a thread does), maybe train one round, maybe
        push."""
        if self._ingest_loop is None:
            self.ingest(timeout=0.0 if self.ready_to_learn else 0.05)
        else:
            self._ingest_loop.check()
            if not self.ready_to_learn:
                time.sleep(0.02)  # the ingest thread fills the buffer meanwhile
        metrics = self.train_round()
        self.push_parameters(force=self._pushed_step < 0 and metrics is not None)
        return metrics


def _agent_on_host(agent: SACAgent) -> SACAgent:
    """This process's replica of a multi-host agent, on one local device: what process 0
    checkpoints without asking the other processes for anything."""
    local = jax.local_devices()[0]
    return jax.tree.map(lambda x: jax.device_put(x.addressable_data(0), local), agent)


# ---------------------------------------------------------------------------------------------
# Command line.


def run(learner: Learner, stop, max_steps: int | None = None, status_every_s: float = 10.0,
        trace: Tracer | None = None):
    """Loop until `stop` is set (or `max_steps` rounds); checkpoint on the way out."""
    last_status = time.monotonic()
    learner.start_pipeline(learner.config.prefetch_batches)
    try:
        while not stop.is_set():
            learner.step()
            if trace is not None:
                trace.at_round(learner.step_count)
            if max_steps is not None and learner.step_count >= max_steps:
                break
            if time.monotonic() - last_status > status_every_s:
                last_status = time.monotonic()
                log.info("step %d | online %d offline %d | episodes %d | %.1f rounds/s",
                         learner.step_count, len(learner.online), len(learner.offline),
                         learner.counters["episodes"], learner.rounds_per_s)
    finally:
        if trace is not None:
            trace.stop()
        learner.stop_pipeline()  # no episode arrives half-way through the checkpoint
        path = learner.save()
        log.info("stopped at step %d; checkpoint %s", int(learner.agent.step), path)


def _learner_config(path: str | None, overrides: list[str]) -> LearnerConfig:
    """A LearnerConfig file, or a whole-run TrainConfig file (it has an "env" section)."""
    from hiljax.config import load_config, read_json_object

    if path is None or "env" in read_json_object(path):
        from hiljax.run.train_config import load_train_config

        return load_train_config(path, overrides).learner_config()
    return load_config(LearnerConfig, path, overrides)


def _multihost_config(config: LearnerConfig) -> LearnerConfig:
    """Every process data-parallel over the global mesh; processes other than 0 keep their
    (unshared) logs under <output_dir>/process_<i>."""
    config = dataclasses.replace(config, data_parallel=True, prefetch_batches=0)
    index = jax.process_index()
    if index:
        config = dataclasses.replace(config, output_dir=str(Path(config.output_dir)
                                                            / f"process_{index}"))
    log.info("multi-host learner: process %d of %d, %d devices in all", index,
             jax.process_count(), jax.device_count())
    return config


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    import threading

    from transport.factory import NETWORK_KINDS, make_learner_transport

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="LearnerConfig JSON (default: built-in defaults)")
    parser.add_argument("--transport", choices=NETWORK_KINDS, help="overrides the config")
    parser.add_argument("--resume", action="store_true", help="continue the run in output_dir")
    parser.add_argument("--max-steps", type=int, help="stop after this many UTD rounds")
    parser.add_argument("--dataset", help="a LeRobot v3 dataset directory for the offline buffer")
    parser.add_argument("--trace", metavar="DIR", help="write a profiler trace of --trace-rounds "
                        "rounds (after --trace-after) to DIR (Perfetto / TensorBoard)")
    parser.add_argument("--trace-after", type=int, default=20, help="rounds before the trace "
                        "starts (compilation and warm-up stay out of it)")
    parser.add_argument("--trace-rounds", type=int, default=50)
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.transport:
        overrides.append(f"transport={args.transport}")
    config = _learner_config(args.config, overrides)
    if args.resume:
        config = dataclasses.replace(config, resume=True)
    if args.dataset:
        config = dataclasses.replace(config, dataset=args.dataset)
    multihost = "HILJAX_NUM_PROCESSES" in os.environ  # one learner over several machines
    try:  # before JAX first computes: the backend is chosen then
        if multihost:
            initialize_distributed()
            config = _multihost_config(config)
        select_learner_device(config.device)
        if multihost and config.resume:  # every process loads process 0's checkpoint
            share_checkpoint(Path(config.output_dir) / "checkpoints")
    except ConfigError as error:
        log.error("cannot start the learner: %s", error)
        return 2

    network = config.actor_learner_config
    primary = jax.process_index() == 0  # the only one that serves actors
    kind = config.transport if primary else "inproc"
    try:  # security files are read here: a missing or bad one stops the learner, saying which
        transport = make_learner_transport(
            kind, host=network.learner_host, port=network.learner_port,
            push_frequency_s=network.policy_parameters_push_frequency,
            max_payload_bytes=int(config.max_payload_mb * 2**20),
            options=config.security.transport_options(kind, config.max_actors)
            if primary else None)
    except ValueError as error:  # ConfigError too
        log.error("cannot start the learner's transport: %s", error)
        return 2
    try:  # before the transport starts: a resumed run restores what it had already received
        learner = Learner.create(config, transport)
    except ValueError as error:  # ConfigError, DatasetError, CheckpointError: say why and stop
        log.error("cannot start the learner: %s", error)
        return 2
    if not multihost:  # acknowledge an episode only once it is on the disk (exactly-once)
        attach_journal(learner, transport)
    transport.start()
    log.info("learner serving %s on %s", config.transport, transport.address)
    (learner.run_dir / "learner_address").write_text(transport.address + "\n")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if multihost:
            run_lockstep(learner, stop, args.max_steps)
        else:
            trace = Tracer(args.trace, args.trace_after, args.trace_rounds) if args.trace else None
            run(learner, stop, args.max_steps, trace=trace)
    finally:
        learner.close()
        transport.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
