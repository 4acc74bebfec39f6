"""Replay buffer: alignment, memory, concurrency, persistence, validation.

Every transition encodes where it came from: episode ``e``, step ``t``. The observation at step
``t`` has state[:2] = (e, t) and images filled with (31 e + t) % 251; the action starts with
(e, t); the reward is 1000 e + t. So any sampled row can be checked on its own: its next
observation must be step t + 1 of the same episode, also at terminals and truncations (the true
final observation, never the next episode's first one).
"""

import threading
import time

import numpy as np
import pytest

from hiljax.storage.buffer import BufferFormatError, ReplayBuffer, sample_mixed

STATE_DIM, ACTION_DIM = 18, 4
SMALL_IMAGE = (8, 8, 3)


def make_spec(image_shape=SMALL_IMAGE):
    return {"observation.state": ((STATE_DIM,), "float32"),
            "observation.images.front": (image_shape, "uint8"),
            "observation.images.wrist": (image_shape, np.uint8)}


def episode_length(e):
    return 2 + (np.asarray(e) * 7) % 9  # 2..10 steps


def is_terminal(e):
    return np.asarray(e) % 3 != 1  # every third episode ends by truncation (time limit)


def observation(e, t, image_shape=SMALL_IMAGE):
    """Observations of steps t (arrays of equal shape) of episodes e: leading dims of e."""
    e, t = np.broadcast_arrays(np.asarray(e), np.asarray(t))
    state = np.zeros((*e.shape, STATE_DIM), np.float32)
    state[..., 0], state[..., 1] = e, t
    fill = ((31 * e + t) % 251).astype(np.uint8)
    image = np.broadcast_to(fill[..., None, None, None], (*e.shape, *image_shape)).copy()
    return {"observation.state": state, "observation.images.front": image,
            "observation.images.wrist": image.copy()}


def episode(e, steps=None, start=0, image_shape=SMALL_IMAGE):
    """add_batch keyword arguments for steps [start, start + steps) of episode e."""
    length = int(episode_length(e))
    t = np.arange(start, length if steps is None else min(length, start + steps))
    actions = np.zeros((t.size, ACTION_DIM), np.float32)
    actions[:, 0], actions[:, 1] = e, t
    last = t == length - 1
    return {"observations": observation(np.full_like(t, e), t, image_shape),
            "actions": actions, "rewards": (1000.0 * e + t).astype(np.float32),
            "next_observations": observation(np.full_like(t, e), t + 1, image_shape),
            "dones": last & is_terminal(e), "truncateds": last & ~is_terminal(e),
            "is_intervention": t % 2 == 1, "discrete_penalty": -(t % 3).astype(np.float32)}


def add_one_by_one(buffer, batch):
    for i in range(batch["rewards"].shape[0]):
        obs = {k: v[i] for k, v in batch["observations"].items()}
        next_obs = {k: v[i] for k, v in batch["next_observations"].items()}
        buffer.add(obs, batch["actions"][i], float(batch["rewards"][i]), next_obs,
                   bool(batch["dones"][i]), bool(batch["truncateds"][i]),
                   is_intervention=bool(batch["is_intervention"][i]),
                   discrete_penalty=float(batch["discrete_penalty"][i]))


def concat_batches(batches):
    def cat(values):
        if isinstance(values[0], dict):
            return {k: cat([v[k] for v in values]) for k in values[0]}
        return np.concatenate(values)
    return {k: cat([b[k] for b in batches]) for k in batches[0]}


def slice_batch(batch, rows):
    return {k: ({kk: vv[rows] for kk, vv in v.items()} if isinstance(v, dict) else v[rows])
            for k, v in batch.items()}


def assert_consistent(batch):
    """Every row (any leading dims) is one real transition, whole."""
    obs, nxt = batch["observations"], batch["next_observations"]
    e, t = obs["observation.state"][..., 0], obs["observation.state"][..., 1]
    np.testing.assert_array_equal(nxt["observation.state"][..., 0], e)
    np.testing.assert_array_equal(nxt["observation.state"][..., 1], t + 1)
    np.testing.assert_array_equal(batch["actions"][..., :2], np.stack([e, t], -1))
    np.testing.assert_array_equal(batch["rewards"], 1000 * e + t)
    last = t == episode_length(e.astype(int)) - 1
    np.testing.assert_array_equal(batch["dones"], last & is_terminal(e.astype(int)))
    np.testing.assert_array_equal(batch["truncateds"], last & ~is_terminal(e.astype(int)))
    np.testing.assert_array_equal(batch["is_intervention"], t % 2 == 1)
    np.testing.assert_array_equal(batch["discrete_penalty"], -(t % 3))
    for key in ("observation.images.front", "observation.images.wrist"):
        for images, step in ((obs[key], t), (nxt[key], t + 1)):
            flat = images.reshape(*e.shape, -1)
            fill = (31 * e.astype(int) + step.astype(int)) % 251
            np.testing.assert_array_equal(flat.min(-1), fill)
            np.testing.assert_array_equal(flat.max(-1), fill)
    for v in (batch["actions"], batch["rewards"], batch["dones"], batch["truncateds"],
              batch["is_intervention"], batch["discrete_penalty"]):
        assert v.dtype == np.float32


def sampled_ids(buffer, n=4000, seed=0):
    batch = buffer.sample(n, np.random.default_rng(seed))
    assert_consistent(batch)
    state = batch["observations"]["observation.state"]
    return {(int(e), int(t)) for e, t in state[:, :2]}


def ids_of(batch):
    return [(int(e), int(t)) for e, t in batch["observations"]["observation.state"][:, :2]]


# ------------------------------------------------------------------------------ alignment
@pytest.mark.parametrize("method", ["add", "episodes", "chunks"])
def test_alignment_across_wraparound_episode_ends_and_truncations(method):
    buffer = ReplayBuffer(37, make_spec(), ACTION_DIM)
    stream = concat_batches([episode(e) for e in range(80)])  # ~450 transitions, 12 wraps
    if method == "add":
        add_one_by_one(buffer, stream)
    elif method == "episodes":
        for e in range(80):
            buffer.add_batch(**episode(e))
    else:  # chunks that cut episodes anywhere, and one longer than the whole buffer
        rng, start, total = np.random.default_rng(1), 0, stream["rewards"].shape[0]
        while start < total:
            stop = min(total, start + int(rng.choice([1, 3, 7, 50])))
            buffer.add_batch(**slice_batch(stream, slice(start, stop)))
            start = stop
    assert len(buffer) == 37 and buffer.num_inserted == stream["rewards"].shape[0]
    assert sampled_ids(buffer) == set(ids_of(stream)[-37:])


def test_truncation_keeps_true_final_observation():
    buffer = ReplayBuffer(10, make_spec(), ACTION_DIM)
    add_one_by_one(buffer, episode(1))  # length 9, truncated: next episode starts elsewhere
    add_one_by_one(buffer, episode(3, steps=1))
    batch = buffer.sample(500, np.random.default_rng(0))
    assert_consistent(batch)
    rows = batch["truncateds"] == 1
    assert rows.any() and not batch["dones"][rows].any()
    final_states = batch["next_observations"]["observation.state"][rows, :2]
    np.testing.assert_array_equal(np.unique(final_states, axis=0), [[1, 9]])


def test_reset_to_identical_observation_after_truncation_is_not_merged():
    # The next episode starts exactly at the truncated episode's final observation.
    spec = {"s": ((2,), "float32")}
    buffer = ReplayBuffer(8, spec, 1)
    def s(value):
        return {"s": np.full(2, value, np.float32)}

    buffer.add(s(0), [0.0], 0.0, s(1), False, True)
    buffer.add(s(1), [1.0], 1.0, s(2), False)
    batch = buffer.sample(200, np.random.default_rng(0))
    np.testing.assert_array_equal(batch["next_observations"]["s"][:, 0], batch["actions"][:, 0] + 1)
    assert buffer.num_final_frames == 2


def test_interleaved_actors_stay_aligned():
    buffer = ReplayBuffer(64, make_spec(), ACTION_DIM)
    a, b = concat_batches([episode(e) for e in range(0, 40, 2)]), concat_batches(
        [episode(e) for e in range(1, 40, 2)])
    n = min(a["rewards"].shape[0], b["rewards"].shape[0])
    for i in range(n):  # step-by-step interleaving: continuity breaks at every insert
        add_one_by_one(buffer, slice_batch(a, slice(i, i + 1)))
        add_one_by_one(buffer, slice_batch(b, slice(i, i + 1)))
    expected = [x for i in range(n - 32, n) for x in (ids_of(a)[i], ids_of(b)[i])]
    assert sampled_ids(buffer) == set(expected)
    assert buffer.num_final_frames == len(buffer)  # every break costs one frame, nothing worse


def test_add_and_add_batch_are_equivalent():
    one, many = ReplayBuffer(50, make_spec(), ACTION_DIM), ReplayBuffer(50, make_spec(), ACTION_DIM)
    stream = concat_batches([episode(e) for e in range(30)])
    add_one_by_one(one, stream)
    total = stream["rewards"].shape[0]
    cuts = np.sort(np.random.default_rng(2).choice(np.arange(1, total), 12, replace=False))
    for rows in np.split(np.arange(total), cuts):
        many.add_batch(**slice_batch(stream, rows))
    assert (len(one), one.num_final_frames, one.num_inserted) == (
        len(many), many.num_final_frames, many.num_inserted)
    assert_same_samples(one, many)


def test_masked_subset_like_interventions_is_aligned():
    # The learner copies only the intervention steps to the offline buffer.
    buffer = ReplayBuffer(100, make_spec(), ACTION_DIM)
    stream = concat_batches([episode(e) for e in range(20)])
    buffer.add_batch(**slice_batch(stream, stream["is_intervention"]))
    batch = buffer.sample(500, np.random.default_rng(0))
    assert_consistent(batch)
    assert batch["is_intervention"].all()


def test_capacity_one():
    buffer = ReplayBuffer(1, make_spec(), ACTION_DIM)
    for e in range(4):
        buffer.add_batch(**episode(e))
        add_one_by_one(buffer, episode(e, steps=2))
        assert sampled_ids(buffer, 20) == {(e, 1)}


# ------------------------------------------------------------------------------ sampling
def test_sample_shapes_dtypes_and_num_batches():
    buffer = ReplayBuffer(40, make_spec(), ACTION_DIM)
    for e in range(6):
        buffer.add_batch(**episode(e))
    batch = buffer.sample(16, np.random.default_rng(0), num_batches=3)
    assert_consistent(batch)
    assert batch["actions"].shape == (3, 16, ACTION_DIM) and batch["rewards"].shape == (3, 16)
    assert batch["observations"]["observation.images.front"].shape == (3, 16, *SMALL_IMAGE)
    assert batch["next_observations"]["observation.images.front"].dtype == np.uint8
    assert batch["observations"]["observation.state"].dtype == np.float32
    assert buffer.sample(5, np.random.default_rng(0))["dones"].shape == (5,)


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, make_spec(), ACTION_DIM).sample(2, np.random.default_rng(0))


def test_sample_mixed_ratio_and_shapes():
    online = ReplayBuffer(60, make_spec(), ACTION_DIM)
    offline = ReplayBuffer(60, make_spec(), ACTION_DIM)
    for e in range(10):
        online.add_batch(**episode(e))
        offline.add_batch(**episode(5000 + e))
    rng = np.random.default_rng(0)
    batch = sample_mixed(online, offline, 8, rng, online_ratio=0.25, num_batches=3)
    assert_consistent(batch)
    episodes = batch["observations"]["observation.state"][..., 0]
    assert episodes.shape == (3, 8)
    assert (episodes[:, :2] < 5000).all() and (episodes[:, 2:] >= 5000).all()
    assert (sample_mixed(online, offline, 10, rng)["rewards"] >= 5e6).sum() == 5  # default 0.5
    for other in (None, ReplayBuffer(5, make_spec(), ACTION_DIM)):  # no / empty offline: all online
        assert (sample_mixed(online, other, 12, rng)["rewards"] < 5e6).all()
    assert (sample_mixed(online, offline, 12, rng, online_ratio=0.0)["rewards"] >= 5e6).all()
    with pytest.raises(ValueError, match="online_ratio"):
        sample_mixed(online, offline, 8, rng, online_ratio=1.5)
    with pytest.raises(ValueError, match="specs"):
        sample_mixed(online, ReplayBuffer(5, {"x": ((1,), "float32")}, ACTION_DIM), 8, rng)


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("change, match", [
    (lambda o, n: o.pop("observation.state"), r"missing \['observation.state'\]"),
    (lambda o, n: o.update(extra=np.zeros(1)), r"unexpected \['extra'\]"),
    (lambda o, n: o.update({"observation.images.front": np.zeros((8, 8, 3), np.float32)}),
     r"observation\['observation.images.front'\]: expected shape \(8, 8, 3\) dtype uint8, "
     r"got shape \(8, 8, 3\) dtype float32"),
    (lambda o, n: n.update({"observation.state": np.zeros(17, np.float32)}),
     r"next_observation\['observation.state'\]: expected shape \(18,\) dtype float32, "
     r"got shape \(17,\)"),
])
def test_add_validates_observations(change, match):
    buffer = ReplayBuffer(4, make_spec(), ACTION_DIM)
    batch = episode(0, steps=1)
    obs = {k: v[0] for k, v in batch["observations"].items()}
    nxt = {k: v[0] for k, v in batch["next_observations"].items()}
    change(obs, nxt)
    with pytest.raises(ValueError, match=match):
        buffer.add(obs, np.zeros(ACTION_DIM), 0.0, nxt, False)
    assert len(buffer) == 0


def test_add_and_add_batch_validate_other_fields():
    buffer = ReplayBuffer(4, make_spec(), ACTION_DIM)
    one = episode(0, steps=1)
    obs = {k: v[0] for k, v in one["observations"].items()}
    with pytest.raises(ValueError, match=r"action: expected shape \(4,\).*got shape \(3,\)"):
        buffer.add(obs, np.zeros(3), 0.0, obs, False)
    with pytest.raises(ValueError, match="done: expected 0/1"):
        buffer.add(obs, np.zeros(4), 0.0, obs, 0.5)
    batch = episode(0)
    with pytest.raises(ValueError, match=r"dones: expected shape \(\d+,\)"):
        buffer.add_batch(**{**batch, "dones": batch["dones"][:-1]})
    with pytest.raises(ValueError, match=r"next_observations\['observation.images.wrist'\]"):
        nxt = {**batch["next_observations"], "observation.images.wrist": batch[
            "next_observations"]["observation.images.wrist"][:-1]}
        buffer.add_batch(**{**batch, "next_observations": nxt})
    assert len(buffer) == 0


# ------------------------------------------------------------------------------ memory
FRAME_BYTES = STATE_DIM * 4 + 2 * 128 * 128 * 3  # one observation of every key, 128x128 cameras


def fill_with_episodes(buffer, length, num_episodes, image_shape=(128, 128, 3)):
    for e in range(num_episodes):
        t, es = np.arange(length), np.full(length, e)
        buffer.add_batch(observation(es, t, image_shape), np.zeros((length, ACTION_DIM)),
                         np.zeros(length), observation(es, t + 1, image_shape), t == length - 1)


@pytest.mark.parametrize("length, overhead", [(100, 0.03), (50, 0.06)])
def test_an_image_transition_costs_about_one_frame(length, overhead):
    buffer = ReplayBuffer(400, make_spec((128, 128, 3)), ACTION_DIM)
    fill_with_episodes(buffer, length, 2 * 400 // length + 1)  # wraps twice
    assert len(buffer) == 400
    assert buffer.num_final_frames == 400 // length  # one per episode end, nothing else
    ring_only = (buffer.nbytes - buffer._final_rows * FRAME_BYTES) / buffer.capacity
    assert FRAME_BYTES < ring_only < FRAME_BYTES + 64  # next_obs is not a second copy
    assert buffer.bytes_per_transition() < (1 + overhead) * FRAME_BYTES


def test_short_episodes_cost_one_extra_frame_per_end():
    buffer = ReplayBuffer(200, make_spec(), ACTION_DIM)
    stream = concat_batches([episode(e) for e in range(60)])
    buffer.add_batch(**stream)
    ends = (stream["dones"] | stream["truncateds"])[-200:].sum()
    assert buffer.num_final_frames == ends


# ------------------------------------------------------------------------------ concurrency
def test_concurrent_insert_and_sample_never_tears_a_batch():
    buffer = ReplayBuffer(150, make_spec(), ACTION_DIM)
    buffer.add_batch(**episode(0))
    stop, errors, counts = threading.Event(), [], {"batches": 0, "inserts": 0}

    def writer(parity):
        e = parity
        try:
            while not stop.is_set():
                e += 2
                if e % 4 < 2:
                    add_one_by_one(buffer, episode(e))
                else:
                    buffer.add_batch(**episode(e))
                counts["inserts"] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def sampler(seed):
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                assert_consistent(buffer.sample(32, rng, num_batches=2))
                counts["batches"] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in (0, 1)]
    threads += [threading.Thread(target=sampler, args=(s,)) for s in (0, 1)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not errors, errors[0]
    assert counts["batches"] > 20 and counts["inserts"] > 20
    assert_consistent(buffer.sample(1000, np.random.default_rng(0)))


# ------------------------------------------------------------------------------ persistence
def filled_buffer():
    buffer = ReplayBuffer(45, make_spec(), ACTION_DIM)
    for e in range(12):
        buffer.add_batch(**episode(e))
    buffer.add_batch(**episode(12, steps=2))  # the newest episode is still running
    return buffer


def assert_same_samples(a, b, seed=3):
    x = a.sample(64, np.random.default_rng(seed), num_batches=2)
    y = b.sample(64, np.random.default_rng(seed), num_batches=2)
    assert_consistent(x)
    for key in ("actions", "rewards", "dones", "truncateds", "is_intervention", "discrete_penalty"):
        np.testing.assert_array_equal(x[key], y[key])
    for group in ("observations", "next_observations"):
        for key in x[group]:
            np.testing.assert_array_equal(x[group][key], y[group][key])


def test_save_load_round_trip(tmp_path):
    buffer = filled_buffer()
    path = tmp_path / "online.buffer"
    buffer.save(path)
    buffer.save(path)  # overwriting is fine
    loaded = ReplayBuffer.load(path, observation_spec=make_spec(), action_dim=ACTION_DIM)
    assert [p.name for p in tmp_path.iterdir()] == ["online.buffer"]  # no temp files left
    assert (len(loaded), loaded.num_inserted, loaded.num_final_frames) == (
        len(buffer), buffer.num_inserted, buffer.num_final_frames)
    assert loaded.observation_spec == buffer.observation_spec
    assert_same_samples(buffer, loaded)
    for b in (buffer, loaded):  # the running episode continues after a resume
        b.add_batch(**episode(12, start=2))
    assert loaded.num_final_frames == buffer.num_final_frames
    assert_same_samples(buffer, loaded, seed=4)


def test_empty_buffer_round_trip(tmp_path):
    ReplayBuffer(5, make_spec(), ACTION_DIM).save(tmp_path / "b")
    loaded = ReplayBuffer.load(tmp_path / "b")
    assert len(loaded) == 0 and loaded.capacity == 5


def test_load_refuses_a_mismatched_spec(tmp_path):
    filled_buffer().save(tmp_path / "b")
    with pytest.raises(BufferFormatError, match="observation_spec"):
        ReplayBuffer.load(tmp_path / "b", observation_spec={"observation.state": ((18,), "f4")})
    with pytest.raises(BufferFormatError, match="action_dim"):
        ReplayBuffer.load(tmp_path / "b", action_dim=7)


@pytest.mark.parametrize("damage", ["empty", "header_only", "half", "minus_one", "flip_data",
                                    "flip_header", "extra_bytes", "npy_file", "random"])
def test_damaged_file_raises_a_clear_error(tmp_path, damage):
    path = tmp_path / "b"
    filled_buffer().save(path)
    data = bytearray(path.read_bytes())
    if damage == "empty":
        data = b""
    elif damage == "header_only":
        data = data[:300]
    elif damage == "half":
        data = data[: len(data) // 2]
    elif damage == "minus_one":
        data = data[:-1]
    elif damage == "flip_data":
        data[len(data) // 2] ^= 0x01
    elif damage == "flip_header":
        data[200] ^= 0x04
    elif damage == "extra_bytes":
        data += b"\0"
    elif damage == "random":
        data = np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8).tobytes()
    if damage == "npy_file":
        np.save(tmp_path / "x.npy", np.arange(10))
        path = tmp_path / "x.npy"
    else:
        path.write_bytes(bytes(data))
    with pytest.raises(BufferFormatError, match=str(path.name)):
        ReplayBuffer.load(path)


def test_inconsistent_but_checksummed_file_is_refused(tmp_path):
    from hiljax.storage.array_file import read_array_file, write_array_file
    from hiljax.storage.buffer import FILE_FORMAT, FILE_VERSION

    filled_buffer().save(tmp_path / "b")
    meta, arrays = read_array_file(tmp_path / "b", FILE_FORMAT, FILE_VERSION)
    arrays["next_ref"][:] = -1  # no final frames at episode ends
    write_array_file(tmp_path / "b", FILE_FORMAT, FILE_VERSION, meta, arrays)
    with pytest.raises(BufferFormatError, match="next"):
        ReplayBuffer.load(tmp_path / "b")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        ReplayBuffer.load(tmp_path / "nope")
