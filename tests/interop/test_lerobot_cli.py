"""Both directions with the commands a person runs, and a stock LeRobot actor (the gRPC stubs and
the LeRobot codec only) receiving hiljax's learner's policy in LeRobot's own layout."""

import json
from pathlib import Path

import grpc
import jax
import numpy as np
import pytest
from safetensors import safe_open

from hiljax import export_lerobot, import_lerobot
from hiljax.config import LearnerConfig, load_config
from hiljax.interop.lerobot_sac import push_state_dicts
from hiljax.learner import Learner
from hiljax.run.checkpoint import load_checkpoint
from transport import lerobot_codec
from transport._generated import services_pb2, services_pb2_grpc
from transport.factory import make_learner_transport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_policy"
PRETRAINED = FIXTURES / "state_pretrained_model"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "from_lerobot"
    assert import_lerobot.main([str(PRETRAINED), "--output", str(run)]) == 0
    return run


def test_import_then_export_gives_lerobots_files_back(imported_run, tmp_path):
    config = load_config(LearnerConfig, imported_run / "learner_config.json")
    assert config.resume and config.output_dir == str(imported_run)
    assert load_checkpoint(imported_run / "checkpoints", with_buffers=False).agent.step == 0

    out = tmp_path / "back"
    assert export_lerobot.main(["--checkpoint", str(imported_run), "--output", str(out)]) == 0
    with safe_open(str(PRETRAINED / "model.safetensors"), "numpy") as theirs, \
            safe_open(str(out / "model.safetensors"), "numpy") as ours:
        assert sorted(ours.keys()) == sorted(theirs.keys())
        assert ours.metadata() == theirs.metadata()
        for key in theirs.keys():
            np.testing.assert_array_equal(ours.get_tensor(key), theirs.get_tensor(key))
    written = json.loads((out / "config.json").read_text())
    original = json.loads((PRETRAINED / "config.json").read_text())
    assert written["dataset_stats"] == original["dataset_stats"]  # kept for the way back
    assert written["input_features"] == original["input_features"]


def test_bad_model_directories_are_clear_errors(tmp_path, caplog):
    assert import_lerobot.main([str(tmp_path), "--output", str(tmp_path / "run")]) == 2
    assert "no config.json" in caplog.text
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((PRETRAINED / "config.json").read_text())
    data = (PRETRAINED / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert import_lerobot.main([str(broken), "--output", str(tmp_path / "run2")]) == 2
    assert "truncated or corrupt" in caplog.text
    assert not (tmp_path / "run2").exists()


def test_stock_lerobot_actor_receives_the_learners_policy(imported_run, tmp_path):
    """The learner resumed from LeRobot's model publishes, to a client with no hiljax metadata,
    exactly the bytes-level layout and values of LeRobot's own push of that model."""
    config = load_config(LearnerConfig, imported_run / "learner_config.json")
    transport = make_learner_transport("grpc", port=0, push_frequency_s=0.05)
    learner = Learner.create(config, transport)
    transport.start()
    channel = grpc.insecure_channel(transport.address)
    try:
        assert learner.push_parameters(force=True)
        call = services_pb2_grpc.LearnerServiceStub(channel).StreamParameters(
            services_pb2.Empty(), timeout=30)
        chunks = []
        for message in call:  # LeRobot's receive_bytes_in_chunks, written out
            chunks.append(message.data)
            if message.transfer_state == services_pb2.TRANSFER_END:
                break
        call.cancel()
    finally:
        channel.close()
        transport.stop(grace=0)
        learner.close()
    received = lerobot_codec.decode_state_dict(b"".join(chunks))
    theirs = lerobot_codec.decode_state_dict((FIXTURES / "state_push.pt").read_bytes())
    assert sorted(received) == sorted(theirs) == ["discrete_critic", "policy"]
    for name, state in theirs.items():
        assert sorted(received[name]) == sorted(state)
        for key, value in state.items():
            assert received[name][key].dtype == value.dtype
            np.testing.assert_array_equal(received[name][key], value, err_msg=key)
    expected = push_state_dicts(config.policy, jax.device_get(learner.agent.actor_parameters()))
    np.testing.assert_array_equal(received["policy"]["mean_layer.weight"],
                                  expected["policy"]["mean_layer.weight"])
