"""validate_batch: one hostile class per case, refused with PayloadError naming the field before
anything reaches the buffer; the clip mode repairs NaN / Inf instead. Pure numpy, no networks."""

import numpy as np
import pytest

from hiljax.run.ingest import validate_batch
from hiljax.transition import TransitionBatch, with_defaults
from tests.sac_helpers import tiny_config
from transport.errors import PayloadError

T = 5
POLICY = tiny_config(input_features={"observation.state": (4,),
                                     "observation.image.front": (8, 8, 3)},
                     continuous_action_dim=2, num_discrete_actions=3)


def good_batch(length: int = T) -> TransitionBatch:
    rng = np.random.default_rng(0)
    frames = {"observation.state": rng.normal(size=(length + 1, 4)).astype(np.float32),
              "observation.image.front": rng.integers(0, 256, (length + 1, 8, 8, 3), np.uint8)}
    steps = {"actions": rng.uniform(-1, 1, (length, POLICY.action_dim)).astype(np.float32),
             "rewards": rng.normal(size=length).astype(np.float32),
             "dones": np.eye(length, dtype=bool)[-1]}
    return TransitionBatch({k: v[:-1] for k, v in frames.items()},
                           {k: v[1:] for k, v in frames.items()},
                           with_defaults(steps, length, "test"))


def test_a_well_formed_batch_passes_and_is_stored_as_the_buffer_wants():
    batch = good_batch()
    batch.observations["observation.state"] = batch.observations["observation.state"].astype(
        np.float64)
    validate_batch(batch, POLICY)
    assert batch.observations["observation.state"].dtype == np.float32
    assert batch["actions"].shape == (T, 3)  # 2 continuous dims + the gripper column


def spoil(**changes):
    """A good batch with the given edits (callables receiving the batch)."""
    batch = good_batch()
    for edit in changes.values():
        edit(batch)
    return batch


def set_obs(key, value, tree="observations"):
    return lambda batch: getattr(batch, tree).__setitem__(key, value)


def set_step(name, value):
    return lambda batch: batch.steps.__setitem__(name, value)


HOSTILE = {
    "missing key": (lambda b: b.observations.pop("observation.state"), "missing"),
    "extra key": (set_obs("observation.extra", np.zeros((T, 1), np.float32),
                          "next_observations"), "unexpected"),
    "wrong shape": (set_obs("observation.state", np.zeros((T, 5), np.float32)),
                    r"observations\['observation.state'\]"),
    "wrong T": (set_obs("observation.image.front", np.zeros((T + 1, 8, 8, 3), np.uint8),
                        "next_observations"), "next_observations"),
    "image not uint8": (set_obs("observation.image.front", np.zeros((T, 8, 8, 3), np.float32)),
                        "uint8"),
    "object dtype": (set_obs("observation.state", np.full((T, 4), None, object)), "not numeric"),
    "str dtype": (set_step("discrete_penalty", np.full(T, "x")), "discrete_penalty"),
    "wrong action dim": (set_step("actions", np.zeros((T, 2), np.float32)), "actions"),
    "0-d rewards": (set_step("rewards", np.float32(1.0)), "rewards"),
    "short dones": (set_step("dones", np.zeros(T - 1, bool)), "dones"),
    "dict where an array belongs": (set_step("truncateds", {"a": np.zeros(T)}), "truncateds"),
    "dict where observations belong": (lambda b: setattr(b, "observations", [1, 2]),
                                       "observations"),
    "NaN": (set_obs("observation.state", np.full((T, 4), np.nan, np.float32)),
            "observations.*NaN"),
    "Inf": (set_step("rewards", np.array([0, 1, np.inf, 0, 0], np.float32)), "rewards.*Inf"),
    "float64 overflow": (set_step("rewards", np.full(T, 1e300)), "rewards.*Inf"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_each_hostile_class_is_refused_naming_the_field(case):
    edit, match = HOSTILE[case]
    with pytest.raises(PayloadError, match=match):
        validate_batch(spoil(edit=edit), POLICY)


def test_clip_mode_replaces_nan_and_inf_with_finite_values_of_the_same_array(caplog):
    batch = good_batch()
    rewards = np.array([1.0, np.inf, -2.0, -np.inf, np.nan], np.float32)
    rewards.flags.writeable = False  # as a decoded payload's views are
    batch.steps["rewards"] = rewards
    state = batch.next_observations["observation.state"].copy()
    state[0, 0] = np.nan
    batch.next_observations["observation.state"] = state
    validate_batch(batch, POLICY, non_finite="clip", source="actor-7")
    assert batch["rewards"].tolist() == [1.0, 1.0, -2.0, -2.0, 0.0]
    assert batch.next_observations["observation.state"][0, 0] == 0.0
    assert "actor-7" in caplog.text and "rewards" in caplog.text


def test_clip_mode_still_refuses_structure_errors():
    with pytest.raises(PayloadError, match="actions"):
        validate_batch(spoil(edit=set_step("actions", np.zeros((T, 9)))), POLICY,
                       non_finite="clip")


def test_an_unknown_non_finite_mode_is_a_programming_error():
    with pytest.raises(ValueError, match="non_finite"):
        validate_batch(good_batch(), POLICY, non_finite="ignore")
