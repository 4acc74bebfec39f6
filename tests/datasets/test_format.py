"""LeRobot v3.0 datasets: write, read back, read LeRobot's multi-episode files, clear errors."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hiljax.datasets import DatasetError, DatasetWriter, read_dataset
from hiljax.datasets.arrow import numeric_column, write_table
from hiljax.datasets.media import encode_video
from hiljax.datasets.transitions import dataset_transitions

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": None},
    "observation.images.front": {"dtype": "image", "shape": [32, 48, 3], "names": None},
    "action": {"dtype": "float32", "shape": [3], "names": None},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "next.done": {"dtype": "bool", "shape": [1], "names": None},
}
LENGTHS = (5, 3, 4)


def frame(episode: int, t: int, done: bool) -> dict:
    image = np.zeros((32, 48, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 20 * t, 60 * episode, 128
    return {"observation.state": np.full(4, episode * 10 + t, np.float32),
            "observation.images.front": image,
            "action": np.array([t, -t, episode], np.float32),
            "next.reward": np.float32(done), "next.done": done}


def write(root, use_videos: bool, lengths=LENGTHS):
    with DatasetWriter.create(root, fps=10, features=FEATURES, use_videos=use_videos,
                              robot_type="test") as writer:
        for episode, length in enumerate(lengths):
            for t in range(length):
                writer.add_frame(frame(episode, t, t == length - 1), task="pick the cube")
            writer.save_episode()
    return root


@pytest.mark.parametrize("use_videos", [False, True], ids=["images", "video"])
def test_round_trip(tmp_path, use_videos):
    dataset = read_dataset(write(tmp_path / "ds", use_videos))
    assert (dataset.num_episodes, dataset.num_frames, dataset.fps) == (3, 12, 10)
    assert dataset.tasks == ["pick the cube"]
    assert list(dataset.episode_bounds()) == [(0, 0, 5), (1, 5, 8), (2, 8, 12)]
    expected = [frame(e, t, t == n - 1) for e, n in enumerate(LENGTHS) for t in range(n)]
    np.testing.assert_array_equal(dataset.column("observation.state"),
                                  np.stack([f["observation.state"] for f in expected]))
    np.testing.assert_array_equal(dataset.column("next.done"),
                                  [f["next.done"] for f in expected])
    assert dataset.column("next.reward").shape == (12,)
    frames = dataset.column("observation.images.front")
    error = np.abs(frames.astype(int) - np.stack([f["observation.images.front"]
                                                   for f in expected])).max()
    assert error <= (4 if use_videos else 0)  # video is lossy (yuv420p, crf 30)
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_frames"] == 12
    camera = info["features"]["observation.images.front"]
    assert camera["dtype"] == ("video" if use_videos else "image")
    if use_videos:
        assert camera["info"]["video.codec"] == "av1" and camera["info"]["video.height"] == 32
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [12]
    assert np.allclose(stats["observation.state"]["mean"],
                       dataset.column("observation.state").mean(axis=0))


def test_tasks_parquet_has_lerobots_pandas_index(tmp_path):
    write(tmp_path / "ds", use_videos=False)
    table = pq.read_table(tmp_path / "ds/meta/tasks.parquet")
    assert json.loads(table.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert table.column("task").to_pylist() == ["pick the cube"]


def test_resume_appends_episodes(tmp_path):
    write(tmp_path / "ds", use_videos=True, lengths=(3,))
    writer = DatasetWriter.resume(tmp_path / "ds")
    for t in range(2):
        writer.add_frame(frame(1, t, t == 1), task="another task")
    assert writer.save_episode() == 1
    dataset = read_dataset(tmp_path / "ds")
    assert (dataset.num_episodes, dataset.num_frames) == (2, 5)
    assert dataset.tasks == ["pick the cube", "another task"]
    assert dataset.column("observation.images.front").shape == (5, 32, 48, 3)


def test_rerecord_discards_the_buffer(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", fps=10, features=FEATURES, use_videos=False)
    writer.add_frame(frame(0, 0, False), task="t")
    writer.clear_episode_buffer()
    with pytest.raises(DatasetError, match="no frames"):
        writer.save_episode()
    writer.add_frame(frame(0, 0, True), task="t")
    writer.save_episode()
    assert read_dataset(tmp_path / "ds").num_frames == 1


@pytest.mark.parametrize("change, message", [
    (lambda f: f.pop("action"), "missing"),
    (lambda f: f.update(extra=np.zeros(1)), "unexpected"),
    (lambda f: f.update(action=np.zeros(4, np.float32)), "expected shape"),
    (lambda f: f.update({"observation.images.front": np.zeros((32, 48, 3), np.float32)}),
     "uint8 image"),
    (lambda f: f.update(action=np.array([np.nan, 0, 0], np.float32)), "non-finite"),
])
def test_bad_frames_are_refused(tmp_path, change, message):
    writer = DatasetWriter.create(tmp_path / "ds", fps=10, features=FEATURES, use_videos=False)
    bad = frame(0, 0, False)
    change(bad)
    with pytest.raises(DatasetError, match=message):
        writer.add_frame(bad, task="t")


def test_create_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter.create(tmp_path / "ds", fps=10, features=FEATURES)
    assert (tmp_path / "ds/precious.txt").read_text() == "keep me"


def _corrupt(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "meta/info.json").unlink(), "info.json is missing"),
    (lambda r: (r / "meta/info.json").write_text("{not json"), "not valid JSON"),
    (lambda r: _edit_info(r, codebase_version="v2.1"), "v3.x"),
    (lambda r: _edit_info(r, total_episodes=7), "counts 7 episodes"),
    (lambda r: _edit_info(r, fps="fast"), "'fps' is missing or malformed"),
    (lambda r: (r / "data/chunk-000/file-001.parquet").unlink(), "file-001.parquet is missing"),
    (lambda r: _corrupt(r / "data/chunk-000/file-002.parquet"), "not a readable parquet"),
    (lambda r: _corrupt(r / "meta/episodes/chunk-000/file-000.parquet"),
     "not a readable parquet"),
    (lambda r: [p.unlink() for p in (r / "meta/episodes").rglob("*.parquet")],
     "no episode metadata"),
])
def test_damaged_datasets_give_clear_errors(tmp_path, damage, message):
    root = write(tmp_path / "ds", use_videos=False)
    damage(root)
    with pytest.raises(DatasetError, match=message):
        read_dataset(root)


def test_missing_or_broken_video_is_named(tmp_path):
    root = write(tmp_path / "ds", use_videos=True)
    video = root / "videos/observation.images.front/chunk-000/file-001.mp4"
    _corrupt(video)
    with pytest.raises(DatasetError, match="file-001.mp4"):
        read_dataset(root).column("observation.images.front")
    video.unlink()
    with pytest.raises(DatasetError, match="file-001.mp4 is missing"):
        read_dataset(root).column("observation.images.front")


def test_missing_declared_column(tmp_path):
    root = write(tmp_path / "ds", use_videos=False)
    path = root / "data/chunk-000/file-000.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["action"]), path)
    with pytest.raises(DatasetError, match=r"missing columns \['action'\]"):
        read_dataset(root)


def _edit_info(root, **changes):
    info = json.loads((root / "meta/info.json").read_text())
    info.update(changes)
    (root / "meta/info.json").write_text(json.dumps(info))


def test_reads_lerobots_multi_episode_files(tmp_path):
    """LeRobot packs many episodes into one parquet and one MP4; episodes find their frames by
    index range and their video by from_timestamp."""
    root, fps, lengths = tmp_path / "lerobot", 10, (4, 6)
    frames = [frame(e, t, t == n - 1) for e, n in enumerate(lengths) for t in range(n)]
    episode = np.repeat(np.arange(2), lengths)
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    numeric = {k: v for k, v in FEATURES.items() if v["dtype"] != "image"}
    columns = {k: numeric_column(np.stack([f[k] for f in frames]), spec)
               for k, spec in numeric.items()}
    columns.update({
        "timestamp": pa.array(frame_index / fps, pa.float32()),
        "frame_index": pa.array(frame_index, pa.int64()),
        "episode_index": pa.array(episode, pa.int64()),
        "index": pa.array(np.arange(len(frames)), pa.int64()),
        "task_index": pa.array(np.zeros(len(frames)), pa.int64())})
    write_table(root / "data/chunk-000/file-000.parquet", columns)
    images = np.stack([f["observation.images.front"] for f in frames])
    encode_video(images, root / "videos/observation.images.front/chunk-000/file-000.mp4", fps)
    key = "videos/observation.images.front"
    write_table(root / "meta/episodes/chunk-000/file-000.parquet", {
        "episode_index": pa.array([0, 1], pa.int64()), "length": pa.array(lengths, pa.int64()),
        "data/chunk_index": pa.array([0, 0], pa.int64()),
        "data/file_index": pa.array([0, 0], pa.int64()),
        "dataset_from_index": pa.array([0, 4], pa.int64()),
        "dataset_to_index": pa.array([4, 10], pa.int64()),
        f"{key}/chunk_index": pa.array([0, 0], pa.int64()),
        f"{key}/file_index": pa.array([0, 0], pa.int64()),
        f"{key}/from_timestamp": pa.array([0.0, 0.4]),
        f"{key}/to_timestamp": pa.array([0.4, 1.0])})
    features = {**numeric, "observation.images.front": {
        "dtype": "video", "shape": [3, 32, 48], "names": ["channels", "height", "width"]}}
    (root / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "fps": fps, "total_episodes": 2, "total_frames": 10,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features}))
    dataset = read_dataset(root)
    assert list(dataset.episode_bounds()) == [(0, 0, 4), (1, 4, 10)]
    assert np.abs(dataset.column("observation.images.front").astype(int) - images).max() <= 4
    np.testing.assert_array_equal(dataset.column("action"),
                                  np.stack([f["action"] for f in frames]))


def test_transitions_for_the_offline_buffer(tmp_path):
    dataset = read_dataset(write(tmp_path / "ds", use_videos=False))
    batch = dataset_transitions(dataset, ["observation.state", "observation.images.front"],
                                action_dim=3)
    state, next_state = batch["observations"]["observation.state"], \
        batch["next_observations"]["observation.state"]
    np.testing.assert_array_equal(next_state[:4], state[1:5])  # within an episode: s' = s_{t+1}
    np.testing.assert_array_equal(next_state[4], state[4])  # last frame: its own observation
    np.testing.assert_array_equal(batch["dones"], dataset.column("next.done"))
    assert not batch["truncateds"].any() and not batch["is_intervention"].any()
    with pytest.raises(DatasetError, match="actions have 3 dims"):
        dataset_transitions(dataset, ["observation.state"], action_dim=4)
    with pytest.raises(DatasetError, match="missing features"):
        dataset_transitions(dataset, ["observation.environment_state"])


@pytest.mark.parametrize("use_videos", [False, True], ids=["images", "video"])
def test_one_episode_at_a_time_equals_the_whole_column(tmp_path, use_videos):
    dataset = read_dataset(write(tmp_path / "ds", use_videos))
    keys = ["observation.images.front", "action"]
    parts = [read_dataset(tmp_path / "ds").episode(i, keys) for i in range(dataset.num_episodes)]
    for key in keys:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]),
                                      dataset.column(key))
    assert parts[1]["observation.images.front"].shape == (3, 32, 48, 3)


def test_video_ranges_are_found_by_seeking_past_sparse_keyframes(tmp_path):
    """Decoding a range seeks to the keyframe before it (one every 25 frames here) and keeps
    exactly the frames in the range."""
    from hiljax.datasets.media import decode_video, frames_at

    frames = np.zeros((60, 32, 32, 3), np.uint8)
    frames[..., 0] = np.arange(60)[:, None, None] * 4  # frame i has red 4 i
    encode_video(frames, tmp_path / "v.mp4", fps=10, gop=25)
    decoded, times = decode_video(tmp_path / "v.mp4", 3.0, 4.45)
    np.testing.assert_allclose(times, np.arange(30, 45) / 10)
    picked = frames_at((decoded, times), np.array([3.0, 3.5, 4.4]), 10, "v.mp4")
    assert np.abs(picked[..., 0].mean(axis=(1, 2)) - [120, 140, 176]).max() < 4
    with pytest.raises(DatasetError, match="no frames between"):
        decode_video(tmp_path / "v.mp4", 7.0, 8.0)


def test_summary_command(tmp_path, capsys):
    from hiljax.datasets.__main__ import main

    write(tmp_path / "ds", use_videos=False)
    assert main([str(tmp_path / "ds"), "--episodes"]) == 0
    out = capsys.readouterr().out
    assert "3 episodes, 12 frames at 10 fps" in out and "['pick the cube']" in out
    assert "frames with next.reward >= 1: 3 of 12" in out
    assert "episode     1:    3 frames, success yes" in out
    (tmp_path / "ds/meta/info.json").unlink()
    assert main([str(tmp_path / "ds")]) == 1
    assert "info.json is missing" in capsys.readouterr().err
