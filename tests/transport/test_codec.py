"""hiljax's own codec: round trips, zero-copy views, and clear refusals."""

import struct

import ml_dtypes
import msgpack
import numpy as np
import pytest

from tests.transport.helpers import image_episode
from transport import codec
from transport.errors import PayloadError

ALL_DTYPES = [
    np.bool_,
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.uint32,
    np.int32,
    np.uint64,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    ml_dtypes.bfloat16,
]


def assert_trees_equal(left, right):
    assert left.keys() == right.keys()
    for key in left:
        if isinstance(left[key], dict):
            assert_trees_equal(left[key], right[key])
        else:
            assert left[key].dtype == right[key].dtype and left[key].shape == right[key].shape
            np.testing.assert_array_equal(left[key], right[key])


def test_nested_episode_round_trip_keeps_uint8_and_metadata():
    episode = image_episode()
    payload = codec.encode(episode, sender="actor-7", seq=42, meta={"episode": 3, "tag": "sim"})
    decoded = codec.decode(payload)
    assert_trees_equal(decoded.arrays, episode)
    assert decoded.arrays["observations"]["front"].dtype == np.uint8
    assert (decoded.sender, decoded.seq, decoded.meta) == (
        "actor-7",
        42,
        {"episode": 3, "tag": "sim"},
    )


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_round_trips(dtype):
    array = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    decoded = codec.decode(codec.encode({"a": array})).arrays["a"]
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded.astype(np.float64), array.astype(np.float64))


def test_odd_shapes_views_and_byte_orders():
    arrays = {
        "scalar": np.float32(2.5),
        "zero_d": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 4), np.float32),
        "strided": np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],
        "transposed": np.arange(6, dtype=np.int16).reshape(2, 3).T,
        "big_endian": np.arange(5, dtype=">f8"),
    }
    decoded = codec.decode(codec.encode(arrays)).arrays
    for name, array in arrays.items():
        assert decoded[name].shape == np.shape(array)
        np.testing.assert_array_equal(decoded[name], array)
    assert decoded["big_endian"].dtype == np.dtype("<f8")


def test_decode_is_zero_copy_and_read_only_unless_asked():
    payload = codec.encode({"x": np.arange(1000, dtype=np.float32)})
    view = codec.decode(payload).arrays["x"]
    assert np.shares_memory(view, np.frombuffer(payload, np.uint8))
    assert not view.flags.writeable
    copy = codec.decode(payload, copy=True).arrays["x"]
    assert copy.flags.writeable and not np.shares_memory(copy, np.frombuffer(payload, np.uint8))


def test_arrays_are_64_byte_aligned_in_the_payload():
    payload = codec.encode(
        {"a": np.ones(3, np.uint8), "b": np.ones(5, np.float64), "c": np.ones(1, np.int32)}
    )
    header = codec.read_header(payload)
    assert header.data_start % 64 == 0
    assert all(spec.offset % 64 == 0 for spec in header.arrays)


def test_read_header_does_not_need_the_arrays():
    payload = codec.encode({"obs": {"img": np.zeros((2, 8, 8, 3), np.uint8)}}, sender="s", seq=9)
    header = codec.read_header(payload)
    assert (header.sender, header.seq) == ("s", 9)
    assert [(a.path, a.dtype, a.shape) for a in header.arrays] == [("obs/img", "|u1", (2, 8, 8, 3))]


def test_memoryview_payloads_decode():
    payload = codec.encode({"x": np.arange(4, dtype=np.int32)})
    np.testing.assert_array_equal(codec.decode(memoryview(payload)).arrays["x"], np.arange(4))


# ----------------------------------------------------------------------------- refusals


def good_payload() -> bytes:
    return codec.encode(
        {"a": np.arange(10, dtype=np.float32), "b": np.ones((2, 2), np.uint8)}, sender="x", seq=1
    )


def with_header(header: dict, data: bytes = b"") -> bytes:
    raw = msgpack.packb(header, use_bin_type=True)
    prefix = struct.pack("<4sHHI", codec.MAGIC, codec.SCHEMA_VERSION, 0, len(raw)) + raw
    return prefix + b"\0" * (-len(prefix) % 64) + data


def header_of(**changes) -> dict:
    header = {
        "sender": "x",
        "seq": 1,
        "meta": {},
        "arrays": [["a", "<f4", [4], 0, 16]],
        "data_bytes": 64,
    }
    header.update(changes)
    return header


def test_wrong_magic():
    with pytest.raises(PayloadError, match="wrong magic"):
        codec.decode(b"XXXX" + good_payload()[4:])


def test_wrong_schema_version():
    payload = bytearray(good_payload())
    payload[4:6] = struct.pack("<H", codec.SCHEMA_VERSION + 1)
    with pytest.raises(PayloadError, match="schema version"):
        codec.decode(bytes(payload))


@pytest.mark.parametrize("cut", [0, 3, 11, 20, 70, -1])
def test_truncated(cut):
    payload = good_payload()
    with pytest.raises(PayloadError, match="truncated"):
        codec.decode(payload[:cut])


def test_trailing_bytes():
    with pytest.raises(PayloadError, match="header says"):
        codec.decode(good_payload() + b"\0")


def test_oversize():
    payload = good_payload()
    with pytest.raises(PayloadError, match="too large"):
        codec.decode(payload, max_bytes=len(payload) - 1)


def test_sizes_inconsistent_with_shape():
    with pytest.raises(PayloadError, match="do not fit shape"):
        codec.decode(with_header(header_of(arrays=[["a", "<f4", [5], 0, 16]]), bytes(64)))


def test_array_running_past_the_data():
    with pytest.raises(PayloadError, match="past the data region"):
        codec.decode(with_header(header_of(arrays=[["a", "<f4", [32], 0, 128]]), bytes(64)))


def test_overlapping_arrays():
    arrays = [["a", "<f4", [4], 0, 16], ["b", "<f4", [4], 8, 16]]
    with pytest.raises(PayloadError, match="overlapping"):
        codec.decode(with_header(header_of(arrays=arrays), bytes(64)))


@pytest.mark.parametrize("dtype", ["|O", "<c8", "float32", 4])
def test_unknown_dtype(dtype):
    with pytest.raises(PayloadError, match="bad dtype"):
        codec.decode(with_header(header_of(arrays=[["a", dtype, [4], 0, 16]]), bytes(64)))


def test_duplicate_and_clashing_names():
    twice = [["a", "<f4", [1], 0, 4], ["a", "<f4", [1], 64, 4]]
    with pytest.raises(PayloadError, match="duplicate"):
        codec.decode(with_header(header_of(arrays=twice, data_bytes=128), bytes(128)))
    clash = [["a", "<f4", [1], 0, 4], ["a/b", "<f4", [1], 64, 4]]
    with pytest.raises(PayloadError, match="both an array and a dict"):
        codec.decode(with_header(header_of(arrays=clash, data_bytes=128), bytes(128)))


@pytest.mark.parametrize(
    "change",
    [
        {"seq": -1},
        {"seq": "1"},
        {"sender": 5},
        {"meta": []},
        {"arrays": {}},
        {"data_bytes": -1},
        {"extra": 1},
    ],
)
def test_malformed_header_fields(change):
    with pytest.raises(PayloadError):
        codec.decode(with_header(header_of(**change), bytes(64)))


def test_header_that_is_not_msgpack():
    raw = b"\xc1" * 8  # 0xc1 is never valid msgpack
    payload = struct.pack("<4sHHI", codec.MAGIC, codec.SCHEMA_VERSION, 0, len(raw)) + raw
    with pytest.raises(PayloadError, match="unreadable header"):
        codec.decode(payload)


def test_encoder_refuses_what_it_cannot_carry():
    with pytest.raises(TypeError):
        codec.encode({"o": np.array([object()])})
    with pytest.raises(TypeError):
        codec.encode({"c": np.zeros(2, np.complex64)})
    with pytest.raises(TypeError):
        codec.encode({"l": [1, 2]})
    with pytest.raises(ValueError):
        codec.encode({"a/b": np.zeros(1)})
    with pytest.raises(ValueError):
        codec.encode({}, seq=-1)


def test_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)
