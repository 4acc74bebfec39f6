"""Timing, FLOP and memory helpers for the learner benchmark (not a test utility)."""

from __future__ import annotations

import logging
import resource
import statistics
import time
from collections.abc import Callable

import jax
import jax.monitoring
import jax.numpy as jnp
import psutil

log = logging.getLogger("learner_throughput")

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_TRACE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                 "/jax/core/compile/jaxpr_to_mlir_module_duration")

# ---------------------------------------------------------------------------------------------
# Small measuring tools.


class CompileWatch:
    """Collects JAX's compile-phase durations (trace, lowering, XLA backend compile)."""

    def __init__(self):
        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **_) -> None:
        if event == _COMPILE_EVENT or event in _TRACE_EVENTS:
            self.events.append((event, duration))

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> dict:
        new = self.events[mark:]
        return {
            "backend_compile_s": sum(d for e, d in new if e == _COMPILE_EVENT),
            "trace_lower_s": sum(d for e, d in new if e in _TRACE_EVENTS),
            "num_compiles": sum(e == _COMPILE_EVENT for e, _ in new),
        }


def block(tree) -> None:
    jax.block_until_ready(tree)


def time_calls(fn: Callable[[], object], budget_s: float, max_calls: int = 50) -> list[float]:
    """Wall seconds of repeated blocking calls: at least one, more while within `budget_s`."""
    times: list[float] = []
    start = time.perf_counter()
    while not times or (time.perf_counter() - start < budget_s and len(times) < max_calls):
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
    return times


def flops_of(jitted, *args) -> dict:
    """XLA's cost analysis of the compiled computation (a cache hit once it has run)."""
    try:
        analysis = jitted.lower(*args).compile().cost_analysis()
    except Exception as exc:  # noqa: BLE001 - cost analysis is best effort; never fail the benchmark on it
        log.warning("cost analysis failed: %r", exc)
        return {}
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return {"flops": float(analysis.get("flops", 0.0)),
            "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}


def matmul_gflops(n: int = 1024, budget_s: float = 0.5) -> float:
    """A ceiling for context: f32 (n x n) @ (n x n) GFLOP/s on this machine right now."""
    a = jnp.ones((n, n), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    block(matmul(a))
    seconds = statistics.median(time_calls(lambda: matmul(a), budget_s))
    return 2 * n**3 / seconds / 1e9


def matmul_gflops_at(m: int, n: int, budget_s: float = 0.5, chain: int = 32) -> float:
    """f32 (m x n) @ (n x n) GFLOP/s: the rate a network's own layer shape allows (small
    matmuls run far below the large-matmul ceiling on a CPU). `chain` matmuls run in one call,
    one after the other as in a network, so the figure is not the cost of a dispatch."""
    x, w = jnp.ones((m, n), jnp.float32), jnp.full((n, n), 1.0 / n, jnp.float32)
    chained = jax.jit(lambda x, w: jax.lax.fori_loop(0, chain, lambda _, y: y @ w, x))
    block(chained(x, w))
    seconds = statistics.median(time_calls(lambda: chained(x, w), budget_s))
    return 2 * m * n * n * chain / seconds / 1e9


class OtherCpu:
    """Cores used by OTHER processes since construction (the machine is shared: noise gauge)."""

    def __init__(self):
        self.wall, self.busy, self.own = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) \
            - getattr(t, "guest_nice", 0.0)  # guest time is already counted in user

    @staticmethod
    def _own() -> float:
        t = psutil.Process().cpu_times()
        return t.user + t.system

    def cores(self) -> float:
        wall = time.perf_counter() - self.wall
        others = (self._busy() - self.busy) - (self._own() - self.own)
        return max(0.0, others / wall) if wall > 0 else 0.0


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
