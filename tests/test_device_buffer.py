"""The replay buffer's device mirror samples exactly what the host buffer samples (same indices,
same next observations across episode ends, breaks and wrap-around), while inserts continue."""

import jax
import numpy as np
import pytest

from hiljax.agents.device_buffer import DeviceReplay
from hiljax.config import ConfigError, SACConfig
from hiljax.storage.buffer import ReplayBuffer, sample_mixed

SPEC = {"observation.state": ((5,), np.float32),
        "observation.images.front": ((8, 8, 3), np.uint8)}


def add_episode(buffer: ReplayBuffer, length: int, seed: int, truncated: bool = False) -> None:
    rng = np.random.default_rng(seed)
    frames = {"observation.state": rng.normal(size=(length + 1, 5)).astype(np.float32),
              "observation.images.front": rng.integers(0, 255, (length + 1, 8, 8, 3),
                                                       dtype=np.uint8)}
    end = np.eye(length, dtype=bool)[-1]
    buffer.add_batch({k: v[:-1] for k, v in frames.items()},
                     rng.normal(size=(length, 4)).astype(np.float32),
                     rng.normal(size=length).astype(np.float32),
                     {k: v[1:] for k, v in frames.items()},
                     dones=end & (not truncated), truncateds=end & truncated,
                     is_intervention=rng.random(length) < 0.3)


def assert_same(host: dict, device: dict) -> None:
    flat_host, flat_device = jax.tree.leaves_with_path(host), jax.tree.leaves(device)
    assert len(flat_host) == len(flat_device)
    for (path, a), b in zip(flat_host, flat_device, strict=True):
        assert isinstance(b, jax.Array), path
        np.testing.assert_array_equal(a, np.asarray(b), err_msg=jax.tree_util.keystr(path))


def test_mirror_samples_what_the_host_samples_while_episodes_arrive():
    online, offline = ReplayBuffer(60, SPEC, 4), ReplayBuffer(40, SPEC, 4)
    add_episode(online, 7, 1)
    mirror_online, mirror_offline = DeviceReplay(online), DeviceReplay(offline)
    rng = np.random.default_rng(0)
    for i in range(25):  # wraps both rings several times; final store grows on the way
        add_episode(online, int(rng.integers(1, 15)), 100 + i, truncated=i % 3 == 0)
        add_episode(offline, 3, 200 + i)
        host = sample_mixed(online, offline, 16, np.random.default_rng(i), 0.5, num_batches=2)
        device = sample_mixed(mirror_online, mirror_offline, 16, np.random.default_rng(i), 0.5,
                              num_batches=2)
        assert_same(host, device)
    assert mirror_online.nbytes > 0 and len(mirror_online) == len(online)


def test_a_mirror_of_a_restored_buffer_is_exact(tmp_path):
    buffer = ReplayBuffer(30, SPEC, 4)
    for i in range(6):
        add_episode(buffer, 9, i)
    buffer.save(tmp_path / "buffer.arrays")
    restored = ReplayBuffer.load(tmp_path / "buffer.arrays")
    mirror = DeviceReplay(restored)
    assert_same(buffer.sample(32, np.random.default_rng(5)),
                mirror.sample(32, np.random.default_rng(5)))


def test_storage_device_names():
    assert SACConfig(storage_device="cuda").storage_device == "device"
    assert SACConfig().storage_device == "cpu"
    with pytest.raises(ConfigError, match="storage_device"):
        SACConfig(storage_device="tpu0")
