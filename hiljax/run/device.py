"""Which device a JAX process computes on: the learner on the accelerator, actors on the CPU.

JAX picks its backend when it first computes, so these run before anything else:
    select_learner_device("auto" | "cpu" | "gpu")  in the learner process
    process_env(role, device)                       the environment of a child process (hiljax.train)

On a GPU, a JAX process would take 75 % of its memory up front; a learner is told to allocate
as it goes instead (XLA_PYTHON_CLIENT_PREALLOCATE=false) so that several processes fit on one
card, and an actor is kept off the GPU altogether (JAX_PLATFORMS=cpu), so it never takes it by
accident.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from hiljax.config import ConfigError

log = logging.getLogger(__name__)

_NO_PREALLOCATE = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def process_env(role: str, device: str = "auto", base: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """The environment for a child process: `role` "learner" or "actor"."""
    env = dict(os.environ if base is None else base)
    if role != "learner":
        env["JAX_PLATFORMS"] = "cpu"
        return env
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    elif device == "gpu":
        env["JAX_PLATFORMS"] = "cuda"
    env.update({k: v for k, v in _NO_PREALLOCATE.items() if k not in env})
    return env


def select_learner_device(device: str = "auto"):
    """Choose the backend before JAX first computes; returns the device the learner uses.
    "gpu" without a usable GPU is a ConfigError that says how to get one."""
    for key, value in _NO_PREALLOCATE.items():
        os.environ.setdefault(key, value)
    import jax

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    elif device == "gpu":
        try:
            devices = jax.devices("gpu")
        except RuntimeError as error:
            raise ConfigError("learner.device is 'gpu' but JAX sees no GPU (install the CUDA "
                              "build: pip install -e '.[cuda12]' or '.[cuda13]'): "
                              f"{error}") from error
        jax.config.update("jax_default_device", devices[0])
    chosen = jax.devices()[0] if device != "gpu" else jax.devices("gpu")[0]
    log.info("learner computes on %s (%s; %d device(s) of that kind)", chosen.device_kind,
             chosen.platform, len(jax.devices(chosen.platform)))
    return chosen


def describe(device) -> str:
    """'NVIDIA H200 (gpu)' / 'cpu (cpu)': what benchmarks print beside their figures."""
    return f"{device.device_kind} ({device.platform})"
