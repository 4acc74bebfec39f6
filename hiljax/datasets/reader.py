"""Read a LeRobot v3.0 dataset (hiljax's recordings or LeRobot's) into numpy, without torch.

Supported: codebase_version v3.x; numeric features (float32/64, int32/64, bool; scalars and 1-D
vectors); cameras as "image" (PNG/JPEG bytes in the parquet, or a path beside it) or "video"
(MP4 in any codec FFmpeg decodes: AV1, H.264, HEVC), many episodes per file or one. String
features are skipped. Not supported (a clear DatasetError says so): v2.x and older layouts
(convert them with LeRobot's `convert_dataset_v21_to_v30` first), multi-dimensional numeric
features, depth maps. `column` holds a whole column in memory; `episode` decodes one
episode's camera frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import arrow
from .format import (
    DATA_PATH,
    DEFAULT_FEATURES,
    IMAGE_PREFIX,
    INFO_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    DatasetError,
    check_features,
    image_hw,
    read_json,
)
from .media import decode_png, decode_video, frames_at

EPISODE_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index",
                   "dataset_from_index", "dataset_to_index")


def read_dataset(root: str | Path) -> LeRobotDataset:
    return LeRobotDataset(root)


class LeRobotDataset:
    """A dataset on disk. Frames are ordered by episode, then frame_index."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root} is not a directory")
        self.info = read_json(self.root / INFO_PATH,
                              "a LeRobot dataset has meta/info.json; is this the dataset root?")
        self._check_version()
        # LeRobot lists its default columns among the features; older writers may not.
        self.features = check_features({**DEFAULT_FEATURES, **self._required(
            self.info, "features", dict)}, str(self.root / INFO_PATH))
        self.fps = float(self._required(self.info, "fps", (int, float)))
        self.episode_rows = self._read_episodes()
        self.tasks = self._read_tasks()
        self._table = self._read_frames()
        self._columns: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"LeRobotDataset({str(self.root)!r}, episodes={self.num_episodes}, "
                f"frames={self.num_frames}, fps={self.fps:g}, cameras={list(self.image_keys)})")

    # ------------------------------------------------------------------ summary
    @property
    def num_episodes(self) -> int:
        return len(self.episode_rows)

    @property
    def num_frames(self) -> int:
        return self._table.num_rows

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.features.items()
                     if v["dtype"] in ("image", "video") and k.startswith(IMAGE_PREFIX))

    @property
    def keys(self) -> tuple[str, ...]:
        """Every readable feature (strings are skipped)."""
        return tuple(k for k, v in self.features.items() if v["dtype"] != "string")

    def episode_bounds(self) -> Iterator[tuple[int, int, int]]:
        """(episode_index, first frame, end frame) in frame order."""
        start = 0
        for row in self.episode_rows:
            yield int(row["episode_index"]), start, start + int(row["length"])
            start += int(row["length"])

    # ------------------------------------------------------------------ columns
    def column(self, key: str) -> np.ndarray:
        """Every frame's value of `key`: images (N, H, W, 3) uint8, vectors (N, D), scalars (N,)."""
        if key not in self._columns:
            self._columns[key] = self._load_column(key)
        return self._columns[key]

    def episode(self, position: int, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The frames of the `position`-th episode (in episode order) for `keys`, decoding only
        that episode's camera frames: memory for one episode, not the whole dataset."""
        _, start, end = list(self.episode_bounds())[position]
        out = {}
        for key in keys:
            spec = self._spec(key)
            if spec["dtype"] in ("image", "video") and key not in self._columns:
                out[key] = self._camera_frames(key, spec, position, start, end)
            else:
                out[key] = self.column(key)[start:end]
        return out

    def _spec(self, key: str) -> dict:
        if key not in self.features:
            raise DatasetError(f"{self.root}: no feature {key!r}; it has {list(self.keys)}")
        return self.features[key]

    def _load_column(self, key: str) -> np.ndarray:
        spec = self._spec(key)
        if spec["dtype"] in ("image", "video"):
            bounds = list(self.episode_bounds())
            parts = [self._camera_frames(key, spec, i, start, end)
                     for i, (_, start, end) in enumerate(bounds)]
            height, width = image_hw(spec)
            return np.concatenate(parts) if parts else np.empty((0, height, width, 3), np.uint8)
        where = str(self.root / "data")
        self._require_column(key)
        if spec["dtype"] == "string" or len(spec["shape"]) > 1:
            raise DatasetError(f"{key!r}: hiljax reads numeric features of 1-D shapes, not "
                               f"{spec['dtype']} {list(spec['shape'])}")
        values = arrow.to_numpy(self._table.column(key), key, where)
        width = int(spec["shape"][0])
        if width == 1 and values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if (values.ndim == 1 and width != 1) or (values.ndim == 2 and values.shape[1] != width):
            raise DatasetError(f"{where}: column {key!r} holds shape {values.shape[1:]}, "
                               f"meta/info.json says {list(spec['shape'])}")
        return values.astype(spec["dtype"], copy=False)

    def _require_column(self, key: str) -> None:
        if key not in self._table.column_names:
            raise DatasetError(f"{self.root / 'data'}: the frame files lack the column {key!r} "
                               "that meta/info.json declares")

    def _camera_frames(self, key: str, spec: dict, position: int, start: int, end: int
                       ) -> np.ndarray:
        """Frames start:end (one episode, the `position`-th) of camera `key`."""
        if spec["dtype"] == "video":
            frames = self._video_frames(key, self.episode_rows[position], start, end)
        else:
            self._require_column(key)
            frames = self._image_frames(key, start, end)
        height, width = image_hw(spec)
        if len(frames) and frames.shape[1:3] != (height, width):
            raise DatasetError(f"{self.root}: {key!r} frames are {frames.shape[1:3]}, "
                               f"meta/info.json says {(height, width)}")
        return frames

    def _image_frames(self, key: str, start: int, end: int) -> np.ndarray:
        structs = self._table.column(key).slice(start, end - start).combine_chunks()
        if not pa.types.is_struct(structs.type):
            raise DatasetError(f"{key!r}: expected image structs {{bytes, path}}, got "
                               f"{structs.type}")
        return np.stack([self._decode_image(item, key, start + i)
                         for i, item in enumerate(structs.to_pylist())])

    def _decode_image(self, item: dict | None, key: str, row: int) -> np.ndarray:
        where = f"{self.root}: {key!r} frame {row}"
        data = (item or {}).get("bytes")
        if data is None and (item or {}).get("path"):
            path = self.root / item["path"]
            if not path.is_file():
                raise DatasetError(f"{where}: image file {path} is missing")
            data = path.read_bytes()
        if data is None:
            raise DatasetError(f"{where}: neither image bytes nor a path")
        return decode_png(data, where)

    def _video_frames(self, key: str, row: dict, start: int, end: int) -> np.ndarray:
        """An episode's frames from its video file, matched by timestamp (LeRobot packs many
        episodes into one file; the episode starts at `from_timestamp`)."""
        try:
            location = {"chunk_index": int(row[f"videos/{key}/chunk_index"]),
                        "file_index": int(row[f"videos/{key}/file_index"])}
            offset = float(row.get(f"videos/{key}/from_timestamp") or 0.0)
        except (KeyError, TypeError):
            raise DatasetError(f"{self.root}: meta/episodes lacks where episode "
                               f"{row['episode_index']}'s {key!r} video is") from None
        template = self.info.get("video_path") or VIDEO_PATH
        path = self.root / template.format(video_key=key, **location)
        wanted = offset + self.column("timestamp")[start:end].astype(np.float64)
        margin = 0.5 / self.fps  # frames_at accepts a frame within half a period
        video = decode_video(path, max(0.0, wanted.min() - margin), wanted.max() + margin)
        return frames_at(video, wanted, self.fps, str(path))

    # ------------------------------------------------------------------ metadata
    def _check_version(self) -> None:
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3."):
            raise DatasetError(
                f"{self.root / INFO_PATH}: codebase_version {version or 'missing'!r}; hiljax "
                "reads LeRobot datasets v3.x (convert older ones with LeRobot's "
                "convert_dataset_v21_to_v30)")

    def _required(self, data: dict, key: str, kind):
        if not isinstance(data.get(key), kind):
            raise DatasetError(f"{self.root / INFO_PATH}: {key!r} is missing or malformed")
        return data[key]

    def _read_episodes(self) -> list[dict]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(f"{self.root}/meta/episodes/ holds no parquet files: the dataset "
                               "has no episode metadata")
        rows: list[dict] = []
        for path in files:
            table = arrow.read_table(path, "per-episode metadata")
            missing = [c for c in EPISODE_COLUMNS if c not in table.column_names]
            if missing:
                raise DatasetError(f"{path}: missing columns {missing}")
            rows.extend(table.to_pylist())
        rows.sort(key=lambda r: r["episode_index"])
        total = self.info.get("total_episodes")
        if total is not None and total != len(rows):
            raise DatasetError(f"{self.root}: meta/info.json counts {total} episodes, "
                               f"meta/episodes holds {len(rows)}")
        return rows

    def _read_tasks(self) -> list[str]:
        path = self.root / TASKS_PATH
        if not path.exists():
            return []
        table = arrow.read_table(path, "task descriptions")
        names = [n for n in table.column_names if n != "task_index"]
        if "task_index" not in table.column_names or not names:
            raise DatasetError(f"{path}: expected columns task_index and task")
        order = np.argsort(arrow.to_numpy(table.column("task_index"), "task_index", str(path)))
        return [str(table.column(names[0])[int(i)]) for i in order]

    def _read_frames(self) -> pa.Table:
        template = self.info.get("data_path") or DATA_PATH
        paths = list(dict.fromkeys(
            self.root / template.format(chunk_index=int(r["data/chunk_index"]),
                                        file_index=int(r["data/file_index"]))
            for r in self.episode_rows))
        wanted = [k for k, v in self.features.items()
                  if v["dtype"] not in ("video", "string") and k not in ("index", "task_index")]
        tables = []
        for path in paths:
            table = arrow.read_table(path, "frames named in meta/episodes")
            missing = [k for k in wanted if k not in table.column_names]
            if missing:
                raise DatasetError(f"{path}: missing columns {missing} that meta/info.json "
                                   "declares")
            optional = [k for k in ("index", "task_index") if k in table.column_names]
            tables.append(table.select(wanted + optional))
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        return self._ordered(table, str(self.root / "data"))

    def _ordered(self, table: pa.Table, where: str) -> pa.Table:
        """Frames by episode (in meta/episodes order), then frame_index; counts checked."""
        episode = arrow.to_numpy(table.column("episode_index"), "episode_index", where)
        frame = arrow.to_numpy(table.column("frame_index"), "frame_index", where)
        rank = {int(r["episode_index"]): i for i, r in enumerate(self.episode_rows)}
        known = np.isin(episode, list(rank))
        episode_rank = np.array([rank.get(int(e), -1) for e in episode])
        order = np.lexsort((frame, episode_rank))
        order = order[known[order]]
        counts = np.bincount(episode_rank[known], minlength=len(rank))
        for row, count in zip(self.episode_rows, counts, strict=True):
            if count != int(row["length"]):
                raise DatasetError(f"{where}: episode {row['episode_index']} has {count} "
                                   f"frames, meta/episodes says {row['length']}")
        return table.take(pa.array(order))


