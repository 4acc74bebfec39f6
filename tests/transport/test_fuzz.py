"""Property-based fuzzing: whatever the bytes, both decoders answer with data or PayloadError."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transport.helpers import fixture_bytes
from transport import codec, lerobot_codec
from transport.chunks import ChunkAssembler
from transport.errors import PayloadError
from transport.interface import identify_codec, unpack_parameters

FUZZ = settings(max_examples=max(150, settings.default.max_examples), deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD_HILJAX = codec.encode(
    {
        "obs": {"img": np.arange(48, dtype=np.uint8).reshape(4, 4, 3)},
        "act": np.linspace(-1, 1, 6, dtype=np.float32),
    },
    sender="fuzz",
    seq=3,
)
SEEDS = {
    "hiljax": GOOD_HILJAX,
    "transitions": fixture_bytes("transitions_state.pt"),
    "params": fixture_bytes("params.pt"),
    "interactions": fixture_bytes("interactions.pkl"),
}
DECODERS = [
    codec.decode,
    lerobot_codec.decode_transitions,
    lerobot_codec.decode_state_dict,
    lerobot_codec.decode_interactions,
    lerobot_codec.load_torch_archive,
    identify_codec,
    unpack_parameters,
]


def decode_all(payload: bytes) -> None:
    for decoder in DECODERS:
        try:
            decoder(payload)
        except PayloadError:
            pass


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(payload):
    decode_all(payload)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.binary(max_size=4), st.data())
def test_prefixed_random_bytes(seed, noise, data):
    # Start like a real payload so the fuzzer gets past the magic checks.
    head = SEEDS[seed][: data.draw(st.integers(0, 64))]
    decode_all(head + noise + data.draw(st.binary(max_size=256)))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_valid_payloads(seed, data):
    payload = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    decode_all(bytes(payload))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_truncated_valid_payloads(seed, data):
    payload = SEEDS[seed]
    decode_all(payload[: data.draw(st.integers(0, len(payload) - 1))])


@FUZZ
@given(st.lists(st.tuples(st.integers(-5, 10), st.binary(max_size=32)), max_size=20))
def test_chunk_streams(chunks):
    assembler = ChunkAssembler(max_payload_bytes=100)
    for state, data in chunks:
        try:
            assembler.feed(state, data)
        except PayloadError:
            pass
