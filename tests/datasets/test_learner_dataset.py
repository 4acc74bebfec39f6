"""The learner fills its offline buffer from a recorded dataset (`--dataset PATH`)."""

import dataclasses
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from hiljax.config import ActorLearnerConfig, LearnerConfig
from hiljax.datasets import DatasetError, DatasetWriter
from hiljax.envs.configs import load_env_config
from hiljax.learner import Learner
from hiljax.record import record
from hiljax.run.train_config import load_train_config
from tests.datasets.test_record import CONFIG as RECORD_CONFIG
from tests.datasets.test_record import ROOT
from tests.sac_helpers import tiny_config
from transport.factory import make_learner_transport

CAMERAS = ("observation.images.front", "observation.images.wrist")


def synthetic_dataset(root, lengths=(4, 6)):
    features = {"observation.state": {"dtype": "float32", "shape": [5], "names": None},
                **{k: {"dtype": "image", "shape": [32, 32, 3], "names": None} for k in CAMERAS},
                "action": {"dtype": "float32", "shape": [4], "names": None},
                "next.reward": {"dtype": "float32", "shape": [1], "names": None},
                "next.done": {"dtype": "bool", "shape": [1], "names": None},
                "complementary_info.is_intervention": {"dtype": "bool", "shape": [1],
                                                       "names": None}}
    rng = np.random.default_rng(0)
    with DatasetWriter.create(root, fps=10, features=features, use_videos=False) as writer:
        for length in lengths:
            for t in range(length):
                writer.add_frame({
                    "observation.state": rng.normal(size=5).astype(np.float32),
                    **{k: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for k in CAMERAS},
                    "action": np.array([0.1, -0.2, 0.3, 1.0], np.float32),
                    "next.reward": np.float32(t == length - 1), "next.done": t == length - 1,
                    "complementary_info.is_intervention": t % 2 == 0}, task="t")
            writer.save_episode()
    return root


def make_learner(tmp_path, dataset, **policy):
    fields = dict(input_features={"observation.state": (5,)}, continuous_action_dim=3,
                  num_discrete_actions=3)
    fields.update(policy)
    config = LearnerConfig(policy=tiny_config(**fields), output_dir=str(tmp_path / "run"),
                           transport="inproc", dataset=str(dataset),
                           actor_learner_config=ActorLearnerConfig(
                               policy_parameters_push_frequency=0.0))
    transport = make_learner_transport("inproc").start()
    return Learner.create(config, transport), transport


@pytest.mark.parametrize("cached", [False, True], ids=["pixels", "cached_features"])
def test_dataset_fills_the_offline_buffer(tmp_path, cached):
    dataset = synthetic_dataset(tmp_path / "ds")
    inputs = {"observation.state": (5,), **{k: (32, 32, 3) for k in CAMERAS}}
    learner, transport = make_learner(tmp_path, dataset, input_features=inputs,
                                      cache_backbone_features=cached)
    try:
        assert len(learner.offline) == 10 and len(learner.online) == 0
        batch = learner.offline.sample(10, np.random.default_rng(0))
        assert batch["observations"]["observation.images.front"].dtype == (
            np.float16 if cached else np.uint8)
        assert batch["dones"].sum() <= 10
        np.testing.assert_allclose(batch["actions"][0], [0.1, -0.2, 0.3, 1.0])
    finally:
        learner.close()
        transport.stop()


def test_a_dataset_that_does_not_fit_the_policy_is_a_clear_error(tmp_path):
    dataset = synthetic_dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="missing features.*observation.environment_state"):
        make_learner(tmp_path, dataset, input_features={"observation.environment_state": (3,)})
    with pytest.raises(DatasetError, match="not a directory"):
        make_learner(tmp_path, tmp_path / "nowhere")
    assert not (tmp_path / "run").exists()  # nothing half-created to block the next attempt


def test_a_frame_broken_mid_dataset_leaves_no_run_behind(tmp_path):
    """Frames are decoded episode by episode, after the run would start: the error still comes
    before the run directory exists."""
    import pyarrow.parquet as pq

    dataset = synthetic_dataset(tmp_path / "ds")
    path = dataset / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    column = table.column(CAMERAS[0]).to_pylist()
    column[2] = {"bytes": b"not a png", "path": None}
    index = table.column_names.index(CAMERAS[0])
    pq.write_table(table.set_column(index, CAMERAS[0],
                                    pa.array(column, table.schema.field(index).type)), path)
    inputs = {"observation.state": (5,), **{k: (32, 32, 3) for k in CAMERAS}}
    with pytest.raises(DatasetError, match="frame 6: not a readable image"):
        make_learner(tmp_path, dataset, input_features=inputs)
    assert not (tmp_path / "run").exists()


def test_learner_cli_loads_a_sim_recording(tmp_path):
    """Record two demonstrations on the sim, start the learner on them, train a few rounds."""
    env_cfg = load_env_config(RECORD_CONFIG, [f"dataset_root={tmp_path / 'ds'}",
                                              "num_episodes=2", "video=false"])
    record(dataclasses.replace(env_cfg, robot=dataclasses.replace(env_cfg.robot, cameras=())))
    args = [sys.executable, "-m", "hiljax.learner", "--config",
            str(ROOT / "configs" / "sim_pick_lift.json"), f"output_dir={tmp_path / 'run'}",
            "transport=zmq", "policy.online_step_before_learning=1000000",
            "--dataset", str(tmp_path / "ds"), "--max-steps", "0"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline buffer:" in done.stderr and "2 episodes" in done.stderr
    bad_args = [a.replace("/run", "/run2").replace("/ds", "/missing") for a in args]
    bad = subprocess.run(bad_args, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a directory" in bad.stderr
    assert load_train_config(ROOT / "configs" / "sim_pick_lift.json").learner.dataset is None
