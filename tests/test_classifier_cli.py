"""`python -m hiljax.classifier.train` and `from_dataset`.

The dataset reader (hiljax.datasets.read_dataset) is replaced by an in-memory stand-in with
the reader's API where a test needs one (no files); the last two tests go through a dataset
that hiljax.datasets' writer records on disk.
"""

import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from hiljax.classifier import ClassifierData, from_dataset, load_classifier
from hiljax.classifier.train import main
from tests.test_classifier import FRONT, WRIST, synthetic_data

ROOT = Path(__file__).resolve().parents[1]
TINY_OVERRIDES = ["latent_dim=16", "hidden_dim=32", "image_embedding_pooling_dim=4",
                  "batch_size=16", "max_steps=50", "eval_every=25", "learning_rate=0.003"]


class DatasetError(ValueError):
    pass


class InMemoryDataset:
    """The reader's API (ds.features, ds.image_keys, ds.column(key), ...) over arrays."""

    def __init__(self, data: ClassifierData, rewards: np.ndarray):
        self._columns = {**data.images, "next.reward": rewards.astype(np.float32),
                         "episode_index": data.episode_index}
        self.fps = 10
        self.num_frames = data.num_frames
        self.num_episodes = len(np.unique(data.episode_index))
        self.image_keys = tuple(data.images)
        self.features = {key: {"dtype": "video" if key in data.images else "float32",
                               "shape": list(values.shape[1:]) or [1]}
                         for key, values in self._columns.items()}

    def column(self, key: str) -> np.ndarray:
        return self._columns[key]


@pytest.fixture
def fake_reader(monkeypatch):
    """Installs an in-memory hiljax.datasets; returns {path: dataset} to fill."""
    datasets = {}

    def read_dataset(path):
        if str(path) not in datasets:
            raise DatasetError(f"{path}: no meta/info.json")
        return datasets[str(path)]

    module = types.ModuleType("hiljax.datasets")
    module.read_dataset, module.DatasetError = read_dataset, DatasetError
    monkeypatch.setitem(sys.modules, "hiljax.datasets", module)
    return datasets


def recorded(data: ClassifierData) -> InMemoryDataset:
    rewards = data.labels.astype(np.float32)  # next.reward: 1 on success frames
    return InMemoryDataset(data, rewards)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "hiljax.classifier.train", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------------------------------------
# from_dataset against the reader's API.


def test_from_dataset_labels_frames_by_next_reward(fake_reader):
    data = synthetic_data(num_episodes=3)
    rewards = data.labels.astype(np.float32)
    rewards[0] = 0.5  # partial reward: not a success
    fake_reader["ds"] = InMemoryDataset(data, rewards)
    loaded = from_dataset("ds")
    np.testing.assert_array_equal(loaded.labels[1:], data.labels[1:])
    assert loaded.labels[0] == 0
    np.testing.assert_array_equal(loaded.episode_index, data.episode_index)
    assert loaded.image_keys == (FRONT, WRIST)
    assert from_dataset("ds", image_keys=[WRIST]).image_keys == (WRIST,)


def test_from_dataset_names_what_is_missing(fake_reader):
    data = synthetic_data(num_episodes=2)
    fake_reader["ds"] = recorded(data)
    with pytest.raises(DatasetError, match="observation.images.side"):
        from_dataset("ds", image_keys=["observation.images.side"])
    del fake_reader["ds"].features["next.reward"]
    with pytest.raises(DatasetError, match="next.reward"):
        from_dataset("ds")
    with pytest.raises(DatasetError, match="info.json"):
        from_dataset("elsewhere")


# ---------------------------------------------------------------------------------------------
# The CLI.


def test_help_works():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--dataset", "--output", "--config", "--overwrite", "key=value"):
        assert flag in result.stdout


def test_a_bad_config_value_exits_2_naming_the_field(tmp_path):
    result = run_cli("--dataset", str(tmp_path), "--output", str(tmp_path / "out"),
                     "--config", "configs/classifier_sim.json", "dropout_rate=1.5")
    assert result.returncode == 2, result.stderr
    assert "bad classifier config" in result.stderr and "dropout_rate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_broken_config_file_exits_2(tmp_path):
    config = tmp_path / "c.json"
    config.write_text('{"num_classes": 2,')
    assert main(["--dataset", "x", "--output", str(tmp_path / "o"), "--config", str(config)]) == 2


def test_it_trains_saves_and_refuses_to_overwrite(fake_reader, tmp_path, caplog):
    fake_reader["demos"] = recorded(synthetic_data(num_episodes=8))
    output = tmp_path / "classifier"
    args = ["--dataset", "demos", "--output", str(output), "--no-progress", *TINY_OVERRIDES]
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    log = caplog.text
    assert "positive /" in log and "best validation" in log and str(output) in log
    for name in ("config.json", "model.safetensors", "history.json", "training_curves.png"):
        assert (output / name).is_file(), name
    classifier = load_classifier(output)
    assert classifier.config.max_steps == 50 and classifier.image_keys == (FRONT, WRIST)
    assert json.loads((output / "history.json").read_text())["steps"][-1] == 50

    caplog.clear()
    assert main(args) == 2
    assert "not empty" in caplog.text
    assert main([*args, "--overwrite"]) == 0


def test_an_unreadable_dataset_exits_1(fake_reader, tmp_path, caplog):
    assert main(["--dataset", "missing", "--output", str(tmp_path / "o")]) == 1
    assert "cannot use dataset missing" in caplog.text and "info.json" in caplog.text


def write_dataset(root: Path, data: ClassifierData, use_videos: bool = False) -> Path:
    """`data` recorded as a LeRobot dataset on disk (next.reward = the label) by hiljax's writer."""
    from hiljax.datasets import DatasetWriter

    features = {key: {"dtype": "image", "shape": list(frames.shape[1:]), "names": None}
                for key, frames in data.images.items()}
    features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    with DatasetWriter.create(root, fps=10, features=features, use_videos=use_videos) as writer:
        for episode in np.unique(data.episode_index):
            for index in np.flatnonzero(data.episode_index == episode):
                frame = {key: frames[index] for key, frames in data.images.items()}
                frame["next.reward"] = np.float32(data.labels[index])
                writer.add_frame(frame, task="pick the cube")
            writer.save_episode()
    return root


def test_from_dataset_reads_a_recorded_dataset(tmp_path):
    pytest.importorskip("hiljax.datasets.writer")
    data = synthetic_data(num_episodes=3)
    loaded = from_dataset(write_dataset(tmp_path / "demos", data))
    np.testing.assert_array_equal(loaded.labels, data.labels)
    np.testing.assert_array_equal(loaded.episode_index, data.episode_index)
    for key in (FRONT, WRIST):
        np.testing.assert_array_equal(loaded.images[key], data.images[key])  # PNG: lossless


def test_the_cli_trains_from_a_dataset_on_disk(tmp_path):
    pytest.importorskip("hiljax.datasets.writer")
    data = synthetic_data(num_episodes=8)
    write_dataset(tmp_path / "demos", data, use_videos=True)  # MP4 cameras, as LeRobot records
    result = run_cli("--dataset", str(tmp_path / "demos"), "--output", str(tmp_path / "clf"),
                     "--no-progress", *TINY_OVERRIDES)
    assert result.returncode == 0, result.stderr
    assert "positive /" in result.stderr and "saved the classifier" in result.stderr
    classifier = load_classifier(tmp_path / "clf")
    probabilities = classifier.predict_proba(data.images)
    assert np.mean((probabilities >= 0.5) == (data.labels == 1)) >= 0.9
