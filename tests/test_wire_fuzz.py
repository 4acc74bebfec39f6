"""Fuzzing the seam where decoded bytes become episodes: `wire.decode_*` for both codecs and the
LeRobot transition stacking. Whatever arrives (bit flips, truncation, valid framing around the
wrong structure), the only exception that may escape is PayloadError, and hostile payloads are
refused before they allocate much. What decodes is also run through the learner's validation.

The suite's hypothesis profile is derandomized (tests/conftest.py), so CI sees fixed examples;
`HYPOTHESIS_PROFILE=explore` searches with fresh randomness and many more examples.
"""

import pickle
import tracemalloc

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hiljax import wire
from hiljax.run.ingest import validate_batch
from tests.sac_helpers import tiny_config
from tests.transport.helpers import fixture_bytes
from transport import codec, lerobot_codec, torch_archive
from transport.errors import PayloadError
from transport.interface import CODEC_HILJAX, CODEC_LEROBOT

T = 3
# The LeRobot fixtures' spec: an 18-d state, 3 continuous dims + a gripper column.
POLICY = tiny_config(input_features={"observation.state": (18,)}, continuous_action_dim=3,
                     num_discrete_actions=3)


def fuzz_settings(examples: int):
    """Few examples in the suite (CI time is tight); the explore profile's many otherwise."""
    many = settings.default.max_examples > 100
    return settings(max_examples=settings.default.max_examples if many else examples,
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hiljax_episode() -> bytes:
    rng = np.random.default_rng(0)
    frames = {"observation.state": rng.normal(size=(T + 1, 18)).astype(np.float32)}
    steps = {"actions": rng.uniform(-1, 1, (T, 4)).astype(np.float32),
             "rewards": rng.normal(size=T).astype(np.float32), "dones": np.eye(T, dtype=bool)[-1],
             "truncateds": np.zeros(T, bool), "is_intervention": np.zeros(T, bool),
             "discrete_penalty": np.zeros(T, np.float32)}
    return wire.encode_episode(frames, steps, sender="fuzz", seq=1)


def lerobot_transition(rng) -> dict:
    """One transition as a stock LeRobot actor sends it (batch dim 1 on tensors)."""
    state = lambda: {"observation.state": rng.normal(size=(1, 18)).astype(np.float32)}
    return {"state": state(), "action": rng.uniform(-1, 1, (1, 4)).astype(np.float32),
            "reward": 0.5, "next_state": state(), "done": False, "truncated": False,
            "complementary_info": {"discrete_penalty": np.zeros(1, np.float32),
                                   "is_intervention": np.array(False)}}


SEEDS = {
    (CODEC_HILJAX, "episode"): hiljax_episode(),
    (CODEC_LEROBOT, "episode"): fixture_bytes("transitions_state.pt"),
    (CODEC_LEROBOT, "images"): fixture_bytes("transitions_images.pt"),
    (CODEC_HILJAX, "interactions"): wire.encode_interactions({"Episodic reward": 1.0, "n": 3}),
    (CODEC_LEROBOT, "interactions"): fixture_bytes("interactions.pkl"),
}


def decode_and_validate(codec_name: str, payload: bytes) -> None:
    """Every decoder of the learner's ingest on `payload`; PayloadError is the one answer allowed
    besides success."""
    try:
        batch = wire.decode_transitions(codec_name, payload, max_bytes=1 << 20)
        validate_batch(batch, POLICY)
    except PayloadError:
        pass
    if codec_name == CODEC_HILJAX:
        try:
            wire.decode_episode(payload)
        except PayloadError:
            pass
    try:
        wire.decode_interactions(codec_name, payload)
    except PayloadError:
        pass


def test_the_seeds_decode():
    assert len(wire.decode_episode(SEEDS[CODEC_HILJAX, "episode"])) == T
    for name in ("episode", "images"):
        assert len(wire.decode_transitions(CODEC_LEROBOT, SEEDS[CODEC_LEROBOT, name])) >= 1
    validate_batch(wire.decode_transitions(CODEC_LEROBOT, SEEDS[CODEC_LEROBOT, "episode"]), POLICY)
    assert wire.decode_interactions(CODEC_LEROBOT, SEEDS[CODEC_LEROBOT, "interactions"])


# ----------------------------------------------------------------------------- bytes


@fuzz_settings(200)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_bit_flips(seed, data):
    payload = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] ^= 1 << data.draw(st.integers(0, 7))
    decode_and_validate(seed[0], bytes(payload))


@fuzz_settings(80)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_truncation(seed, data):
    payload = SEEDS[seed]
    decode_and_validate(seed[0], payload[: data.draw(st.integers(0, len(payload) - 1))])


# ----------------------------------------------------------------------------- structure

DTYPES = st.sampled_from([np.bool_, np.uint8, np.int32, np.int64, np.float16, np.float32,
                          np.float64])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
NAMES = st.sampled_from(["observation.state", "observation.image.x", "rewards", "actions",
                         "dones", "truncateds", "is_intervention", "discrete_penalty", "x"])
ARRAY_TREES = st.recursive(ARRAYS, lambda inner: st.dictionaries(NAMES, inner, max_size=3),
                           max_leaves=6)


@fuzz_settings(200)
@given(st.sampled_from(["frames", "steps"]), NAMES, ARRAY_TREES, st.booleans())
def test_hiljax_episodes_with_the_wrong_structure(part, name, value, drop):
    """A valid episode with one entry replaced (by an array of any shape / dtype, or a dict:
    `steps`/`dones` as dicts, 0-d rewards...) or dropped."""
    tree = codec.decode(SEEDS[CODEC_HILJAX, "episode"], copy=True).arrays
    tree[part].pop(name, None) if drop else tree[part].__setitem__(name, value)
    meta = {"schema": wire.EPISODE_SCHEMA}
    decode_and_validate(CODEC_HILJAX, codec.encode(tree, meta=meta))
    decode_and_validate(CODEC_HILJAX, codec.encode({**tree, part: value}, meta=meta))


PLAIN = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                  hnp.arrays(st.sampled_from([np.float32, np.int64, np.bool_, np.uint8]),
                             hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)))
PYTHON_TREES = st.recursive(
    PLAIN,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(NAMES, st.integers(0, 3)), inner,
                                            max_size=3)),
    max_leaves=8,
)
TRANSITION_KEYS = st.sampled_from(["state", "action", "reward", "next_state", "done",
                                   "truncated", "complementary_info"])


@fuzz_settings(300)
@given(st.lists(st.tuples(TRANSITION_KEYS, PYTHON_TREES, st.booleans()), min_size=1, max_size=3),
       st.integers(1, 3))
def test_lerobot_transitions_with_the_wrong_structure(swaps, length):
    """Valid LeRobot episodes with values swapped for anything a pickle can hold (`reward` a
    dict or None, `state` a bare tensor, nested lists...) or keys dropped."""
    rng = np.random.default_rng(0)
    transitions = [lerobot_transition(rng) for _ in range(length)]
    for index, (key, value, drop) in enumerate(swaps):
        transition = transitions[index % length]
        transition.pop(key, None) if drop else transition.__setitem__(key, value)
    payload = lerobot_codec.encode_transitions(transitions)
    decode_and_validate(CODEC_LEROBOT, payload)
    try:
        lerobot_codec.stack_transitions(transitions)
    except PayloadError:
        pass


@fuzz_settings(100)
@given(PYTHON_TREES, st.integers(2, 5))
def test_lerobot_interactions_of_any_shape(stats, protocol):
    decode_and_validate(CODEC_LEROBOT, pickle.dumps(stats, protocol=protocol))
    decode_and_validate(CODEC_LEROBOT, pickle.dumps({"Episodic reward": stats}, protocol=protocol))


@fuzz_settings(100)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                              st.floats(), st.text(max_size=3), st.binary(max_size=3)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=3), inner,
                                                            max_size=3)),
                    max_leaves=8))
def test_hiljax_interactions_of_any_shape(stats):
    payload = codec.encode({}, meta={"schema": wire.INTERACTIONS_SCHEMA, "stats": stats})
    decode_and_validate(CODEC_HILJAX, payload)


# ----------------------------------------------------------------------------- named classes


def hiljax_with(part: str, name: str, value) -> bytes:
    tree = codec.decode(SEEDS[CODEC_HILJAX, "episode"], copy=True).arrays
    tree[part][name] = value
    return codec.encode(tree, meta={"schema": wire.EPISODE_SCHEMA})


def lerobot_with(key: str, value) -> bytes:
    transitions = [lerobot_transition(np.random.default_rng(i)) for i in range(2)]
    transitions[1][key] = value
    return lerobot_codec.encode_transitions(transitions)


STRUCTURE_ERRORS = {
    "steps a dict of dicts": (CODEC_HILJAX, hiljax_with("steps", "dones", {"a": np.zeros(T)}),
                              "dones"),
    "steps an array": (CODEC_HILJAX, codec.encode({"frames": {"o": np.zeros((T + 1, 2))},
                                                   "steps": np.zeros(T)},
                                                  meta={"schema": wire.EPISODE_SCHEMA}), "steps"),
    "0-d rewards": (CODEC_HILJAX, hiljax_with("steps", "rewards", np.float32(1)), "rewards"),
    "short actions": (CODEC_HILJAX, hiljax_with("steps", "actions", np.zeros((1, 4))), "actions"),
    "frames nested": (CODEC_HILJAX, hiljax_with("frames", "observation.state",
                                                {"x": np.zeros((T + 1, 2))}), "frames"),
    "reward a dict": (CODEC_LEROBOT, lerobot_with("reward", {"r": 1.0}), "reward"),
    "reward None": (CODEC_LEROBOT, lerobot_with("reward", None), "NoneType"),
    "reward a string": (CODEC_LEROBOT, lerobot_with("reward", "1.0"), "str"),
    "state a bare tensor": (CODEC_LEROBOT, lerobot_with("state", np.zeros((1, 18), np.float32)),
                            "state"),
    "action a list": (CODEC_LEROBOT, lerobot_with("action", [0.0, 1.0]), "list"),
    "missing done": (CODEC_LEROBOT, lerobot_codec.encode_transitions(
        [{k: v for k, v in lerobot_transition(np.random.default_rng(0)).items() if k != "done"}]),
        "done"),
    "one transition with other keys": (CODEC_LEROBOT, lerobot_with("extra", 1.0), "keys"),
    "a 100-digit reward": (CODEC_LEROBOT, lerobot_with("reward", 10**100), "number"),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE_ERRORS))
def test_valid_framing_around_the_wrong_structure_is_a_payload_error(case):
    codec_name, payload, match = STRUCTURE_ERRORS[case]
    with pytest.raises(PayloadError, match=match):
        wire.decode_transitions(codec_name, payload)


def test_statistics_that_are_not_short_named_numbers_are_refused():
    for stats in ({"x": 10**400}, {f"k{i}": 1 for i in range(wire.MAX_STATISTICS + 1)},
                  {"x" * 1000: 1.0}, {"x": [1.0]}):
        with pytest.raises(PayloadError):
            wire.decode_interactions(CODEC_LEROBOT, pickle.dumps(stats))


# ----------------------------------------------------------------------------- memory


def shared_reference_archive(transition: dict, references: int) -> bytes:
    """A torch.save archive whose list holds ONE transition dict `references` times (pickle
    memo: BINPUT once, then 2-byte BINGETs): small on the wire, huge once stacked."""
    emitter = torch_archive._PickleEmitter()
    emitter.out.write(b"\x80\x02](")  # PROTO 2, EMPTY_LIST, MARK
    emitter._emit(transition)
    emitter.out.write(b"q\x00" + b"h\x00" * (references - 1) + b"e.")  # BINPUT 0, BINGET 0...
    writer = torch_archive._ArchiveWriter()
    writer.add("data.pkl", emitter.out.getvalue())
    for key, raw in enumerate(emitter.storages):
        writer.add(f"data/{key}", raw)
    return writer.finish()


def deeply_nested_state(depth: int) -> bytes:
    """A transition whose state is {"s": {"s": ...}} nested `depth` deep."""
    transition = lerobot_transition(np.random.default_rng(2))
    for _ in range(depth):
        transition["state"] = {"s": transition["state"]}
    return lerobot_codec.encode_transitions([transition])


def empty_dict_bomb(count: int) -> bytes:
    """A transitions archive whose pickle is `count` one-byte EMPTY_DICTs (~90 bytes each once
    unpickled)."""
    writer = torch_archive._ArchiveWriter()
    writer.add("data.pkl", b"\x80\x02](" + b"}" * count + b"e.")
    return writer.finish()


def declared_size_bomb() -> bytes:
    """A hiljax episode header declaring a 2**40-row array, in under 200 bytes."""
    nbytes = 2**40 * 18 * 4
    header = msgpack.packb({"sender": "", "seq": 0, "meta": {"schema": wire.EPISODE_SCHEMA},
                            "arrays": [["frames/observation.state", "<f4", [2**40, 18], 0, nbytes]],
                            "data_bytes": nbytes})
    return codec._PREFIX.pack(codec.MAGIC, codec.SCHEMA_VERSION, 0, len(header)) + header


def big_tensor_transition() -> dict:
    transition = lerobot_transition(np.random.default_rng(1))
    transition["state"]["observation.state"] = np.zeros((1, 64 * 1024), np.float32)  # 256 KiB
    return transition


HOSTILE = {
    # 10 000 references to one transition holding a 256 KiB tensor: 2.5 GB once stacked.
    "shared references": shared_reference_archive(big_tensor_transition(), 10_000),
    "nesting": deeply_nested_state(200),
    "empty dicts beyond the pickle cap": empty_dict_bomb(lerobot_codec.MAX_PICKLE_BYTES + 1),
    "declared size": declared_size_bomb(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_payloads_are_refused_before_they_allocate(case):
    payload = HOSTILE[case]
    codec_name = CODEC_HILJAX if codec.is_hiljax_payload(payload) else CODEC_LEROBOT
    tracemalloc.start()
    with pytest.raises(PayloadError):
        batch = wire.decode_transitions(codec_name, payload)
        validate_batch(batch, POLICY)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * len(payload) + (4 << 20), f"{case}: peak {peak / 2**20:.1f} MiB"
