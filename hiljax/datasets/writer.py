"""Write episodes as a LeRobot v3.0 dataset (see format.py for the layout).

Mirrors LeRobot's recording API: `add_frame` per step, `save_episode` at the end of an episode,
`clear_episode_buffer` to drop it (rerecord), `finalize` at the end. Unlike LeRobot, every
saved episode is complete on disk at once: it gets its own data file (and video file per
camera), and the metadata is rewritten atomically after it, so a crash or Ctrl-C loses at most
the episode being recorded, and `DatasetWriter.resume` carries on where a run stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from hiljax.storage.files import write_json_atomic

from . import arrow, stats
from .format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILES_SIZE_IN_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILES_SIZE_IN_MB,
    VIDEO_PATH,
    DatasetError,
    check_features,
    chunk_and_file,
)
from .media import DEFAULT_VCODEC, encode_png, encode_video

log = logging.getLogger(__name__)


class DatasetWriter:
    """Record frames into a LeRobot v3.0 dataset directory."""

    def __init__(self, root: str | Path, info: dict, episodes: list[dict], tasks: list[str],
                 episode_stats: list[dict], vcodec: str):
        self.root = Path(root)
        self.info = info
        self.features = check_features(info["features"], str(self.root / INFO_PATH))
        self.episodes = episodes  # rows of meta/episodes
        self.tasks = tasks
        self.episode_stats = episode_stats
        self.vcodec = vcodec
        self._buffer: dict[str, list] = {}
        self._task: str | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, root: str | Path, *, fps: int, features: Mapping[str, Mapping],
               robot_type: str | None = None, use_videos: bool = True,
               vcodec: str = DEFAULT_VCODEC) -> DatasetWriter:
        """A new dataset at `root` (which must not exist or be empty).

        features: {key: {"dtype", "shape", "names"}} for everything a frame holds, without
        LeRobot's default columns; cameras as dtype "image" (stored as video if use_videos).
        """
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise DatasetError(f"{root} already exists and is not empty; choose a new directory "
                               "or resume recording into it")
        user = check_features(features, "features")
        for key, spec in user.items():
            if key in DEFAULT_FEATURES:
                raise DatasetError(f"feature {key!r} is one of LeRobot's default columns")
            if spec["dtype"] == "string":
                raise DatasetError(f"feature {key!r}: hiljax does not record string features")
            if spec["dtype"] not in ("image", "video") and len(spec["shape"]) != 1:
                raise DatasetError(f"feature {key!r}: numeric features must be 1-D, got shape "
                                   f"{list(spec['shape'])}")
        all_features = {k: _camera_spec(v, use_videos) for k, v in user.items()}
        all_features.update(DEFAULT_FEATURES)
        has_video = any(v["dtype"] == "video" for v in all_features.values())
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
            "total_episodes": 0, "total_frames": 0, "total_tasks": 0,
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB, "fps": int(fps), "splits": {},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH if has_video else None,
            "features": {k: {**v, "shape": list(v["shape"])} for k, v in all_features.items()},
        }
        writer = cls(root, info, [], [], [], vcodec)
        writer._write_metadata()
        return writer

    @classmethod
    def resume(cls, root: str | Path, vcodec: str = DEFAULT_VCODEC) -> DatasetWriter:
        """Append episodes to a dataset hiljax recorded earlier."""
        from .reader import read_dataset

        dataset = read_dataset(root)
        episode_stats = [_unflatten_stats(row) for row in dataset.episode_rows]
        return cls(root, dataset.info, dataset.episode_rows, list(dataset.tasks), episode_stats,
                   vcodec)

    # ------------------------------------------------------------------ recording
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def buffered_frames(self) -> int:
        return len(self._buffer.get("frame_index", ()))

    def _user_features(self) -> dict[str, dict]:
        return {k: v for k, v in self.features.items() if k not in DEFAULT_FEATURES}

    def add_frame(self, frame: Mapping[str, np.ndarray], task: str) -> None:
        """One step: every feature of the dataset, each of its declared shape."""
        expected = self._user_features()
        missing = sorted(set(expected) - set(frame) - {"timestamp"})
        extra = sorted(set(frame) - set(expected) - {"timestamp"})
        if missing or extra:
            raise DatasetError(f"frame keys do not match the dataset's features: missing "
                               f"{missing}, unexpected {extra}")
        if self._task is not None and task != self._task:
            raise DatasetError(f"one task per episode: got {task!r} after {self._task!r}")
        self._task = task
        index = self.buffered_frames
        for key, spec in expected.items():
            self._buffer.setdefault(key, []).append(_checked_value(frame[key], key, spec))
        timestamp = frame.get("timestamp", index / self.info["fps"])
        self._buffer.setdefault("timestamp", []).append(np.float32(timestamp))
        self._buffer.setdefault("frame_index", []).append(index)

    def clear_episode_buffer(self) -> None:
        """Drop the frames of the episode being recorded (the person asked to rerecord it)."""
        self._buffer, self._task = {}, None

    def save_episode(self) -> int:
        """Write the buffered episode; returns its episode_index."""
        length = self.buffered_frames
        if length == 0:
            raise DatasetError("save_episode: no frames were added since the last episode")
        episode = self.num_episodes
        task_index = self._task_index(self._task)
        start = self.num_frames
        columns = {k: np.stack(v) for k, v in self._buffer.items()}
        columns["episode_index"] = np.full(length, episode, np.int64)
        columns["index"] = np.arange(start, start + length, dtype=np.int64)
        columns["task_index"] = np.full(length, task_index, np.int64)
        columns["frame_index"] = columns["frame_index"].astype(np.int64)

        location = chunk_and_file(episode)
        row = {"episode_index": episode, "tasks": [self._task], "length": length,
               "data/chunk_index": location["chunk_index"],
               "data/file_index": location["file_index"],
               "dataset_from_index": start, "dataset_to_index": start + length}
        self._write_frames(columns, location)
        for key in self._video_keys():
            encode_video(columns[key], self.root / VIDEO_PATH.format(video_key=key, **location),
                         self.info["fps"], self.vcodec)
            self.info["features"][key].setdefault("info", self._video_info(columns[key]))
            row.update({f"videos/{key}/chunk_index": location["chunk_index"],
                        f"videos/{key}/file_index": location["file_index"],
                        f"videos/{key}/from_timestamp": 0.0,
                        f"videos/{key}/to_timestamp": length / self.info["fps"]})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        self.episode_stats.append(self._episode_stats(columns))
        self.episodes.append(row)
        self.info["total_episodes"] = self.num_episodes
        self.info["total_frames"] = start + length
        self.clear_episode_buffer()
        self._write_metadata()
        log.info("saved episode %d (%d frames) to %s", episode, length, self.root)
        return episode

    def finalize(self) -> None:
        """Nothing is left open (each episode is complete on disk); frames of an unsaved
        episode are dropped with a warning."""
        if self.buffered_frames:
            log.warning("finalize: dropping %d frames of an episode that was never saved",
                        self.buffered_frames)
            self.clear_episode_buffer()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.finalize()

    # ------------------------------------------------------------------ files
    def _video_keys(self) -> list[str]:
        return [k for k, v in self.features.items() if v["dtype"] == "video"]

    def _video_info(self, frames: np.ndarray) -> dict:
        """The stream description LeRobot keeps beside a video feature."""
        codec = {"libsvtav1": "av1", "libx264": "h264"}.get(self.vcodec, self.vcodec)
        return {"video.height": int(frames.shape[1]), "video.width": int(frames.shape[2]),
                "video.codec": codec, "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                "video.fps": self.info["fps"], "video.channels": 3, "has_audio": False}

    def _task_index(self, task: str) -> int:
        if task not in self.tasks:
            self.tasks.append(task)
        return self.tasks.index(task)

    def _write_frames(self, columns: dict[str, np.ndarray], location: dict) -> None:
        arrays = {}
        for key, spec in self.features.items():
            if spec["dtype"] == "video":
                continue
            if spec["dtype"] == "image":
                arrays[key] = arrow.image_column([encode_png(f) for f in columns[key]])
            else:
                arrays[key] = arrow.numeric_column(columns[key], spec)
        arrow.write_table(self.root / DATA_PATH.format(**location), arrays,
                          arrow.hf_metadata(self.features, arrays))

    def _episode_stats(self, columns: dict[str, np.ndarray]) -> dict:
        return {key: stats.feature_stats(columns[key], spec["dtype"] in ("image", "video"))
                for key, spec in self.features.items()}

    def _write_metadata(self) -> None:
        """Episodes, tasks and stats first, info.json (the counts readers trust) last."""
        if self.episodes:
            rows = [{**row, **_flatten_stats(st)}
                    for row, st in zip(self.episodes, self.episode_stats, strict=True)]
            arrow.write_table(self.root / EPISODES_PATH.format(chunk_index=0, file_index=0),
                              _episode_columns(rows))
            write_json_atomic(self.root / STATS_PATH, stats.aggregate(self.episode_stats))
        arrow.write_table(self.root / TASKS_PATH, {
            "task_index": pa.array(range(len(self.tasks)), pa.int64()),
            "task": pa.array(self.tasks, pa.string())}, _pandas_task_index())
        self.info["total_tasks"] = len(self.tasks)
        self.info["splits"] = {"train": f"0:{self.num_episodes}"} if self.episodes else {}
        write_json_atomic(self.root / INFO_PATH, self.info)


def _camera_spec(spec: dict, use_videos: bool) -> dict:
    if spec["dtype"] not in ("image", "video"):
        return spec
    dtype = "video" if use_videos else "image"
    return {**spec, "dtype": dtype, "names": spec.get("names") or ["height", "width", "channels"]}


def _checked_value(value, key: str, spec: Mapping) -> np.ndarray:
    array = np.asarray(value)
    shape = tuple(spec["shape"])
    if spec["dtype"] in ("image", "video"):
        if array.shape != shape or array.dtype != np.uint8:
            raise DatasetError(f"{key}: expected a uint8 image of shape {shape}, got "
                               f"{array.dtype} {array.shape}")
        return array
    if array.shape != shape and not (shape == (1,) and array.shape == ()):
        raise DatasetError(f"{key}: expected shape {shape}, got {array.shape}")
    if not np.isfinite(array.astype(np.float64)).all():
        raise DatasetError(f"{key}: non-finite value {array}")
    return array.reshape(shape).astype(spec["dtype"])


def _flatten_stats(feature_stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
    return {f"stats/{key}/{name}": np.asarray(value, np.float64).reshape(-1).tolist()
            for key, values in feature_stats.items() for name, value in values.items()}


def _unflatten_stats(row: Mapping) -> dict:
    """Episode statistics back from a meta/episodes row (image stats are (3, 1, 1))."""
    out: dict[str, dict] = {}
    for column, value in row.items():
        if column.startswith("stats/"):
            key, _, name = column[len("stats/"):].rpartition("/")
            array = np.asarray(value, np.float64)
            if name != "count" and key.startswith("observation.images.") and array.size == 3:
                array = array.reshape(3, 1, 1)
            out.setdefault(key, {})[name] = array
    return out


def _episode_columns(rows: list[dict]) -> dict[str, pa.Array]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    columns = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        if key == "tasks":
            columns[key] = pa.array(values, pa.list_(pa.string()))
        elif key.startswith("stats/"):
            columns[key] = pa.array(values, pa.list_(pa.float64()))
        elif key.endswith("timestamp"):
            columns[key] = pa.array(values, pa.float64())
        else:
            columns[key] = pa.array(values, pa.int64())
    return columns


def _pandas_task_index() -> dict[str, str]:
    """pandas metadata making `task` the index, as LeRobot's pandas-written tasks.parquet has."""
    import json

    def column(name: str, kind: str, numpy: str) -> dict:
        return {"name": name, "field_name": name, "pandas_type": kind, "numpy_type": numpy,
                "metadata": None}

    return {"pandas": json.dumps({
        "index_columns": ["task"], "column_indexes": [],
        "columns": [column("task_index", "int64", "int64"),
                    column("task", "unicode", "object")],
        "creator": {"library": "hiljax"}, "pandas_version": "2.2.0"})}
