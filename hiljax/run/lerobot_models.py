"""hiljax runs <-> LeRobot pretrained_model directories (what export_lerobot / import_lerobot do).

    export_run(checkpoint, out_dir)      a run's newest checkpoint -> SACPolicy.from_pretrained dir
    import_pretrained(model_dir, run_dir) a LeRobot SAC dir -> a hiljax run the learner resumes
                                          (`python -m hiljax.learner --config RUN/learner_config.json`)
                                          and eval reads (`python -m hiljax.eval --checkpoint RUN`)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hiljax.agents.sac import SACAgent, observation_spec
from hiljax.config import LearnerConfig, SACConfig, save_config
from hiljax.interop.lerobot_pretrained import (
    SACPretrained,
    read_sac_pretrained,
    write_sac_pretrained,
)
from hiljax.interop.tables import check_shapes, flatten
from hiljax.storage.buffer import ReplayBuffer
from hiljax.storage.files import write_json_atomic

from .checkpoint import load_checkpoint, rng_state, save_checkpoint

log = logging.getLogger(__name__)

LEROBOT_CONFIG_COPY = "lerobot_config.json"  # an imported model's LeRobot config, for the way back


def _run_dir_of(checkpoint: Path) -> Path:
    if (checkpoint / "checkpoints").is_dir():
        return checkpoint
    if checkpoint.name == "checkpoints":
        return checkpoint.parent
    return checkpoint.parent.parent  # a step_* directory


def export_run(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write the newest complete checkpoint of a run (or the given step_*) as a LeRobot
    pretrained_model directory; an imported model gets its original LeRobot config back."""
    checkpoint = Path(checkpoint)
    path = checkpoint / "checkpoints" if (checkpoint / "checkpoints").is_dir() else checkpoint
    agent = load_checkpoint(path, with_buffers=False).agent
    original = _run_dir_of(checkpoint) / LEROBOT_CONFIG_COPY
    lerobot_json = json.loads(original.read_text()) if original.is_file() else None
    out = write_sac_pretrained(out_dir, agent.config, jax.device_get(agent.params),
                               jax.device_get(agent.target_params),
                               lerobot_config_json=lerobot_json)
    log.info("exported step %d of %s to %s", int(agent.step), checkpoint, out)
    return out


def agent_from_pretrained(model: SACPretrained, seed: int | None = None) -> SACAgent:
    """A fresh agent (new optimiser states, step 0) holding the imported parameters; every leaf
    is checked against the shapes the config implies before anything is built."""
    config = model.config if seed is None else dataclasses.replace(model.config, seed=seed)
    abstract = SACAgent.abstract(config)
    for name, ours, spec in (("params", model.params, abstract.params),
                             ("target_params", model.target_params, abstract.target_params)):
        check_shapes(flatten(ours), {p: s.shape for p, s in flatten(spec).items()}, name)
    agent = SACAgent.create(config, jax.random.key(config.seed))
    return agent.replace(params=_like(agent.params, model.params),
                         target_params=_like(agent.target_params, model.target_params))


def _like(template, tree):
    """The leaves of `tree` (numpy) as JAX arrays in the container structure of `template`."""
    flat = flatten(tree)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jnp.asarray(flat["/".join(str(k.key) for k in path)]), template)


def import_pretrained(model_dir: str | Path, run_dir: str | Path, *,
                      learner: LearnerConfig | None = None) -> Path:
    """A hiljax run directory holding a LeRobot SAC model as its step-0 checkpoint, with empty
    buffers, plus `learner_config.json` to resume it and the LeRobot config for the way back."""
    model = read_sac_pretrained(model_dir)
    agent = agent_from_pretrained(model)
    run = Path(run_dir)
    if (run / "checkpoints").exists():
        raise FileExistsError(f"{run} already holds a run: choose another directory")
    config = model.config
    spec = observation_spec(config)
    buffers = {"online": ReplayBuffer(config.online_buffer_capacity, spec, config.action_dim),
               "offline": ReplayBuffer(config.offline_buffer_capacity, spec, config.action_dim)}
    extra = {"rng": rng_state(np.random.default_rng(config.seed)), "counters": {}}
    save_checkpoint(run / "checkpoints", agent, buffers=buffers, extra=extra)
    write_json_atomic(run / LEROBOT_CONFIG_COPY, model.lerobot_config)
    learner = dataclasses.replace(learner or LearnerConfig(), policy=config,
                                  output_dir=str(run), resume=True)
    save_config(learner, run / "learner_config.json")
    log.info("imported %s into %s", model_dir, run)
    return run


def policy_config_of(run_dir: str | Path) -> SACConfig:
    return load_checkpoint(Path(run_dir) / "checkpoints", with_buffers=False).agent.config
