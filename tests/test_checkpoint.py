import jax
import numpy as np
import pytest

from hiljax.agents.sac import SACAgent
from hiljax.run.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    rng_from_state,
    rng_state,
    save_checkpoint,
)
from hiljax.storage.buffer import ReplayBuffer
from tests.sac_helpers import fill_buffer, tiny_config


def _same_tree(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _train(agent, buffer, rng, rounds):
    for _ in range(rounds):
        agent, metrics = agent.update(buffer.sample(agent.config.batch_size, rng,
                                                    num_batches=agent.config.utd_ratio))
    return agent, metrics


@pytest.mark.parametrize("discrete", [False, True])
def test_resume_is_exact(tmp_path, discrete):
    config = tiny_config(num_discrete_actions=3 if discrete else None, utd_ratio=2,
                         temperature_init=0.5)
    buffer = fill_buffer(config, 300)
    rng = np.random.default_rng(7)
    agent = SACAgent.create(config, jax.random.key(0))
    agent, _ = _train(agent, buffer, rng, 3)
    save_checkpoint(tmp_path / "ckpt", agent, buffers={"online": buffer},
                    extra={"rng": rng_state(rng), "interaction_step": 123})

    uninterrupted, _ = _train(agent, buffer, rng, 3)

    restored = load_checkpoint(tmp_path / "ckpt")
    assert restored.extra["interaction_step"] == 123
    assert float(restored.agent.temperature) == float(agent.temperature) != 0.5  # LeRobot PR #2877
    assert int(restored.agent.step) == 3
    resumed, _ = _train(restored.agent, restored.buffers["online"],
                        rng_from_state(restored.extra["rng"]), 3)
    assert _same_tree(resumed.params, uninterrupted.params)
    assert _same_tree(resumed.target_params, uninterrupted.target_params)
    assert _same_tree(resumed.opt_states, uninterrupted.opt_states)
    assert np.array_equal(jax.random.key_data(resumed.key), jax.random.key_data(uninterrupted.key))


def test_latest_and_retention(tmp_path):
    config = tiny_config()
    agent = SACAgent.create(config, jax.random.key(0))
    buffer = fill_buffer(config, 50)
    rng = np.random.default_rng(0)
    for _ in range(4):
        agent, _ = _train(agent, buffer, rng, 1)
        save_checkpoint(tmp_path, agent, keep=2)
    assert latest_checkpoint(tmp_path).name == "step_000000004"
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000000003", "step_000000004"]
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    config = tiny_config()
    path = save_checkpoint(tmp_path, SACAgent.create(config, jax.random.key(0)),
                           buffers={"online": fill_buffer(config, 20)})
    agent_file = path / "agent.arrays"
    agent_file.write_bytes(agent_file.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_checkpoint(tmp_path)


def test_corrupted_byte_is_detected(tmp_path):
    config = tiny_config()
    path = save_checkpoint(tmp_path, SACAgent.create(config, jax.random.key(0)))
    data = bytearray((path / "agent.arrays").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "agent.arrays").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_interrupted_save_is_refused(tmp_path):
    config = tiny_config()
    path = save_checkpoint(tmp_path, SACAgent.create(config, jax.random.key(0)))
    (path / "COMPLETE").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_config_and_arrays_must_agree(tmp_path):
    """A checkpoint whose arrays do not fit its config (edited by hand) is refused."""
    from hiljax.run.checkpoint import AGENT_FORMAT, AGENT_VERSION
    from hiljax.storage.array_file import read_array_file, write_array_file

    config = tiny_config()
    path = save_checkpoint(tmp_path, SACAgent.create(config, jax.random.key(0)))
    meta, arrays = read_array_file(path / "agent.arrays", AGENT_FORMAT, AGENT_VERSION)
    meta["config"]["latent_dim"] = 32
    write_array_file(path / "agent.arrays", AGENT_FORMAT, AGENT_VERSION, meta, arrays)
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(path)


def test_buffer_contents_survive(tmp_path):
    config = tiny_config()
    buffer = fill_buffer(config, 77)
    save_checkpoint(tmp_path, SACAgent.create(config, jax.random.key(0)),
                    buffers={"online": buffer, "offline": fill_buffer(config, 5)})
    restored = load_checkpoint(tmp_path)
    assert isinstance(restored.buffers["online"], ReplayBuffer)
    assert len(restored.buffers["online"]) == 77 and len(restored.buffers["offline"]) == 5
    a = buffer.sample(16, np.random.default_rng(1))
    b = restored.buffers["online"].sample(16, np.random.default_rng(1))
    assert _same_tree(a, b)
