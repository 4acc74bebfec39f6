"""`python -m hiljax.actor`'s start-up and fatal stops, called in-process: a bad weights file
stops it before it opens anything, and a learner on another backbone stops it with the robot
safe (the env closed) and the link closed, exit code 2 both times and no traceback."""

import logging
from pathlib import Path

import pytest

import hiljax.run.env
import transport.factory
from hiljax import actor, wire
from hiljax.run.train_config import TrainConfig, save_train_config
from tests.sac_helpers import tiny_config
from tests.test_actor import DictPendulum
from transport.factory import make_learner_transport

# ResNet10, frozen: the actor reads the weights file itself.
IMAGES_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sim_pick_lift_images.json"


class ClosingPendulum(DictPendulum):
    """Remembers being closed, as a robot notices its torque going off."""

    def __init__(self):
        super().__init__(length=10)
        self.closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def nothing_opens(monkeypatch):
    """Making an env or a link fails the test: start-up must stop before either."""

    def refuse(*_, **__):
        raise AssertionError("the actor opened the env or the link before reading its weights")

    monkeypatch.setattr(hiljax.run.env, "make_env", refuse)
    monkeypatch.setattr(transport.factory, "make_actor_transport", refuse)


def _bad_weights(tmp_path, kind: str):
    path = tmp_path / "resnet10.safetensors"
    if kind == "unreadable":
        path.write_bytes(b"not a weights file at all")
    return path


@pytest.mark.parametrize("kind", ["missing", "unreadable"])
def test_a_bad_weights_file_stops_the_actor_before_anything_opens(tmp_path, caplog,
                                                                  nothing_opens, kind):
    weights = _bad_weights(tmp_path, kind)
    # No learner anywhere: the fixture fails the test if the actor so much as opens a link.
    code = actor.main(["--config", str(IMAGES_CONFIG),
                       f"policy.pretrained_vision_weights={weights}"])
    assert code == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(weights) in errors[0].getMessage()
    assert errors[0].exc_info is None  # one clear line, no traceback


def test_a_learner_on_another_backbone_stops_the_actor_and_closes_everything(
        tmp_path, caplog, monkeypatch):
    policy = tiny_config(input_features={"observation.state": (18,)}, continuous_action_dim=3,
                         num_discrete_actions=3)  # no cameras: the actor holds no backbone
    save_train_config(TrainConfig(policy=policy, output_dir=str(tmp_path / "run")),
                      tmp_path / "train.json")
    learner = make_learner_transport("inproc", push_frequency_s=0.0).start()
    # Parameters whose digest names a backbone this actor does not have.
    learner.publish_parameters(wire.encode_parameters(
        {"actor": {}}, version=1, meta={"frozen_backbone_sha256": "f" * 64}), version=1)
    env, links = ClosingPendulum(), []
    real_link = transport.factory.make_actor_transport

    def inproc_link(*_, **__):  # the configured gRPC link, replaced by the in-process one
        links.append(real_link("inproc", learner.address))
        return links[-1]

    monkeypatch.setattr(hiljax.run.env, "make_env", lambda _config: env)
    monkeypatch.setattr(transport.factory, "make_actor_transport", inproc_link)
    try:
        code = actor.main(["--config", str(tmp_path / "train.json"), "--max-episodes", "5"])
        assert code == 2
        assert env.closed  # the robot is left as its close() leaves it
        assert len(links) == 1 and not learner.connected_clients()  # the link is closed
    finally:
        learner.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "frozen backbone" in errors[0]
