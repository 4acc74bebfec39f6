"""The subset of LeRobot's dataset format (v3.0) that hiljax writes and reads.

    <root>/meta/info.json                                  schema, fps, counts, path templates
    <root>/meta/stats.json                                 per-feature min / max / mean / std / count
    <root>/meta/tasks.parquet                              task string (pandas index) -> task_index
    <root>/meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks,
                                                           where its frames and videos live, stats
    <root>/data/chunk-XXX/file-YYY.parquet                 one row per frame
    <root>/videos/<camera key>/chunk-XXX/file-YYY.mp4      camera streams (dtype "video")

Frame columns: every feature of `info["features"]` except videos, plus timestamp, frame_index,
episode_index, index and task_index. Shape-(1,) features are scalar columns, shape-(N,) ones
fixed-size lists, "image" features the Hugging Face image struct {bytes: PNG, path}.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from hiljax.transition import step_field

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory (LeRobot's default)
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"

# Columns every frame has; LeRobot adds them to `features` itself.
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
NUMERIC_DTYPES = ("float32", "float64", "int32", "int64", "bool")
MEDIA_DTYPES = ("image", "video")

# The HIL-SERL keys of a recorded frame (reference_facts §4; LeRobot's gym_manipulator): the
# dataset names of hiljax.transition's fields.
REWARD = step_field("rewards").dataset_key  # next.reward
DONE = step_field("dones").dataset_key  # next.done
TRUNCATED = step_field("truncateds").dataset_key  # hiljax's: the episode hit its time limit
DISCRETE_PENALTY = step_field("discrete_penalty").dataset_key
IS_INTERVENTION = step_field("is_intervention").dataset_key
ACTION = step_field("actions").dataset_key
IMAGE_PREFIX = "observation.images."


class DatasetError(ValueError):
    """A dataset hiljax cannot read or write; the message says which file and why."""


def chunk_and_file(position: int) -> dict[str, int]:
    """The `position`-th file of a kind lives in chunk position // 1000, file position % 1000."""
    return {"chunk_index": position // CHUNKS_SIZE, "file_index": position % CHUNKS_SIZE}


def check_features(features: Mapping[str, Mapping], where: str) -> dict[str, dict]:
    """Validate a `features` mapping; returns it with shapes as tuples. Raises DatasetError."""
    checked = {}
    for key, spec in features.items():
        if not isinstance(spec, Mapping) or "dtype" not in spec or "shape" not in spec:
            raise DatasetError(f"{where}: feature {key!r} needs 'dtype' and 'shape', got {spec!r}")
        dtype, shape = spec["dtype"], spec["shape"]
        if not isinstance(shape, (list, tuple)) or not all(
                isinstance(n, int) and n > 0 for n in shape):
            raise DatasetError(f"{where}: feature {key!r} has a bad shape {shape!r}")
        if dtype in MEDIA_DTYPES:
            if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
                raise DatasetError(f"{where}: {dtype} feature {key!r} must be (H, W, 3) or "
                                   f"(3, H, W), got {list(shape)}")
        elif dtype not in NUMERIC_DTYPES and dtype != "string":
            raise DatasetError(f"{where}: feature {key!r} has dtype {dtype!r}; hiljax reads "
                               f"{', '.join(NUMERIC_DTYPES + MEDIA_DTYPES)} and string")
        checked[key] = {**spec, "shape": tuple(shape)}
    return checked


def image_hw(feature: Mapping) -> tuple[int, int]:
    """(height, width) of an image/video feature stored channel-last or channel-first."""
    shape = tuple(feature["shape"])
    names = feature.get("names") or ()
    channel_first = (len(names) == 3 and str(names[0]).startswith("c")) or (
        shape[0] == 3 and shape[-1] != 3)
    return (shape[1], shape[2]) if channel_first else (shape[0], shape[1])


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: {what}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}): {what}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
