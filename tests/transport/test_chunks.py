"""Chunking semantics of the reference (reference_facts section 1), one test per case."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transport.helpers import fixture_bytes, manifest
from transport.chunks import (
    CHUNK_SIZE,
    MAX_MESSAGE_SIZE,
    TRANSFER_BEGIN,
    TRANSFER_END,
    TRANSFER_MIDDLE,
    TRANSFER_UNKNOWN,
    ChunkAssembler,
    assemble,
    iter_chunks,
)
from transport.errors import PayloadError


def states(payload, chunk_size=CHUNK_SIZE):
    return [state for state, _ in iter_chunks(payload, chunk_size)]


def test_sizes_are_the_references():
    assert CHUNK_SIZE == 2 * 1024 * 1024
    assert MAX_MESSAGE_SIZE == 4 * 1024 * 1024


def test_empty_payload_sends_no_message():
    assert list(iter_chunks(b"")) == []


def test_small_payload_is_one_end_message():
    assert list(iter_chunks(b"abc")) == [(TRANSFER_END, b"abc")]


def test_exactly_one_chunk_is_one_end_message():
    payload = bytes(CHUNK_SIZE)
    chunks = list(iter_chunks(payload))
    assert [s for s, _ in chunks] == [TRANSFER_END] and len(chunks[0][1]) == CHUNK_SIZE


def test_one_byte_over_is_begin_then_end():
    chunks = list(iter_chunks(bytes(CHUNK_SIZE + 1)))
    assert [(s, len(d)) for s, d in chunks] == [(TRANSFER_BEGIN, CHUNK_SIZE), (TRANSFER_END, 1)]


def test_large_payload_is_begin_middles_end():
    payload = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 7)
    chunks = list(iter_chunks(payload))
    assert [s for s, _ in chunks] == [
        TRANSFER_BEGIN,
        TRANSFER_MIDDLE,
        TRANSFER_MIDDLE,
        TRANSFER_END,
    ]
    assert b"".join(d for _, d in chunks) == payload


def test_big_parameter_fixture_chunks_like_lerobot():
    expected = manifest()["files"]["params_big.pt"]["chunks"]
    chunks = list(iter_chunks(fixture_bytes("params_big.pt")))
    assert [(s, len(d)) for s, d in chunks] == [(c["transfer_state"], c["bytes"]) for c in expected]


def test_memoryview_payloads_chunk_too():
    payload = bytes(range(200))
    assert b"".join(d for _, d in iter_chunks(memoryview(payload), 64)) == payload


def test_receiver_begin_resets_the_buffer():
    chunks = [
        (TRANSFER_BEGIN, b"stale"),
        (TRANSFER_BEGIN, b"ab"),
        (TRANSFER_MIDDLE, b"cd"),
        (TRANSFER_END, b"e"),
    ]
    assert list(assemble(chunks)) == [b"abcde"]


def test_receiver_tolerates_a_missing_begin():
    assert list(assemble([(TRANSFER_MIDDLE, b"ab"), (TRANSFER_END, b"cd")])) == [b"abcd"]


def test_receiver_emits_several_payloads_of_one_stream():
    chunks = [
        (TRANSFER_END, b"one"),
        (TRANSFER_BEGIN, b"tw"),
        (TRANSFER_END, b"o"),
        (TRANSFER_END, b"3"),
    ]
    assert list(assemble(chunks)) == [b"one", b"two", b"3"]


def test_receiver_begin_without_end_emits_nothing():
    assert list(assemble([(TRANSFER_BEGIN, b"ab"), (TRANSFER_MIDDLE, b"cd")])) == []


@pytest.mark.parametrize("state", [TRANSFER_UNKNOWN, 4, -1, 99])
def test_receiver_refuses_any_other_state(state):
    with pytest.raises(PayloadError, match="unknown transfer state"):
        list(assemble([(TRANSFER_BEGIN, b"ab"), (state, b"cd")]))


def test_receiver_enforces_the_payload_limit():
    assembler = ChunkAssembler(max_payload_bytes=5)
    assembler.feed(TRANSFER_BEGIN, b"abc")
    with pytest.raises(PayloadError, match="exceeds the limit"):
        assembler.feed(TRANSFER_MIDDLE, b"def")
    assert assembler.pending_bytes == 0  # the partial payload was dropped, not kept


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=5),
    chunk_size=st.integers(1, 64),
)
def test_round_trip_of_consecutive_payloads(payloads, chunk_size):
    stream = [chunk for payload in payloads for chunk in iter_chunks(payload, chunk_size)]
    assert list(assemble(stream)) == payloads
