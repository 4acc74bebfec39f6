"""What keeps the learner's device busy: the next batch is sampled and transferred while the
current round runs, and episodes are decoded and inserted on their own thread.

    prefetch = BatchPrefetcher(sample, depth=2)     # sample() -> numpy batch (None: not yet)
    batch = prefetch.next()                         # already on the device (device_put)
    ingest = BackgroundLoop(lambda: learner.ingest(timeout=0.05), "ingest")

Sampling is numpy fancy indexing and `device_put` is an asynchronous copy: both release the GIL
for their bulk work, so the host prepares round k+1 while the device computes round k. The queue
is bounded (`depth` batches), so memory stays fixed and a slow device simply makes the sampler
wait. An exception on a thread is re-raised where the main loop next asks for its result.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import jax

log = logging.getLogger(__name__)


class BatchPrefetcher:
    """A thread that keeps up to `depth` device-resident batches ready."""

    def __init__(self, sample: Callable[[], dict], depth: int = 2, sharding=None,
                 name: str = "prefetch"):
        self._sample, self._sharding = sample, sharding
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with jax.profiler.TraceAnnotation("prefetch: sample"):
                    batch = self._sample()
                if batch is None:  # nothing to sample yet (the buffer is filling)
                    self._stop.wait(0.05)
                    continue
                on_device = (jax.device_put(batch) if self._sharding is None
                             else jax.device_put(batch, self._sharding))
                while not self._stop.is_set():
                    try:
                        self._queue.put(on_device, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # handed to the consumer, which stops the learner
            self._error = error
            log.exception("the batch prefetch thread failed")

    def next(self, timeout: float = 60.0) -> dict:
        """The next batch (on the device). Raises the thread's error if it died."""
        while True:
            if self._error is not None:
                raise RuntimeError("batch prefetching failed") from self._error
            try:
                return self._queue.get(timeout=min(timeout, 0.5))
            except queue.Empty:
                timeout -= 0.5
                if timeout <= 0:
                    raise TimeoutError("no batch from the prefetch thread") from None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class BackgroundLoop:
    """Call `work()` over and over on a thread until closed (the learner's ingest)."""

    def __init__(self, work: Callable[[], object], name: str):
        self._work = work
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._work()
        except BaseException as error:
            self.error = error
            log.exception("the %s thread failed", self._thread.name)

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the {self._thread.name} thread failed") from self.error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Tracer:
    """A JAX profiler trace of rounds [after, after + rounds): host threads (sampling, ingest,
    dispatch, annotated) and the device's kernels, viewable in Perfetto (ui.perfetto.dev opens
    the .trace.json.gz) or TensorBoard's profile tab."""

    def __init__(self, directory: str, after: int = 20, rounds: int = 50):
        self.directory, self.after, self.rounds = directory, after, rounds
        self._started_at: int | None = None
        self._done = False

    def at_round(self, step: int) -> None:
        if self._done:
            return
        if self._started_at is None and step >= self.after:
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self._started_at = step
            log.info("tracing rounds %d..%d into %s", step, step + self.rounds, self.directory)
        elif self._started_at is not None and step >= self._started_at + self.rounds:
            self.stop()

    def stop(self) -> None:
        if self._started_at is not None and not self._done:
            jax.effects_barrier()
            jax.profiler.stop_trace()
            log.info("trace written to %s", self.directory)
        self._done = True
