"""Reading the golden LeRobot payloads without torch, writing torch.save archives, refusals."""

import hashlib
import io
import os
import struct
import zipfile

import numpy as np
import pytest

from tests.transport.helpers import fixture_bytes, manifest, sha256
from transport import lerobot_codec
from transport.errors import PayloadError

MANIFEST = manifest()["files"]
PWNED_MARKER = "/tmp/hiljax_pwned"


def raw_le_bytes(array: np.ndarray, dtype: str) -> bytes:
    """The raw little-endian bytes the manifest hashed. For bfloat16 its producer hashed the
    tensor widened to float32 (numpy has no bfloat16), which is what our reader returns."""
    if dtype == "bfloat16":
        return np.ascontiguousarray(array, "<f4").tobytes()
    return np.ascontiguousarray(array).astype(np.dtype(dtype).newbyteorder("<")).tobytes()


def check_tensor(array, expected: dict, where: str):
    dtype = expected["dtype"]
    numpy_dtype = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    assert isinstance(array, np.ndarray), where
    assert array.dtype == numpy_dtype, where
    assert list(array.shape) == expected["shape"], where
    if expected.get("values") is not None:
        np.testing.assert_array_equal(
            array.ravel().astype(np.float64), expected["values"], err_msg=where
        )
    assert float(array.astype(np.float64).sum()) == pytest.approx(
        expected["sum"], rel=1e-6, abs=1e-6
    ), where
    if "sha256" in expected:
        assert sha256(raw_le_bytes(array, dtype)) == expected["sha256"], where


def check_tree(value, expected, where=""):
    if isinstance(expected, dict) and "dtype" in expected and "shape" in expected:
        check_tensor(value, expected, where)
    elif isinstance(expected, dict):
        assert isinstance(value, dict) and set(value) == set(expected), where
        for key in expected:
            check_tree(value[key], expected[key], f"{where}/{key}")
    else:
        assert value == expected and type(value) is type(expected), where


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_files_are_intact(name):
    raw = fixture_bytes(name)
    assert len(raw) == MANIFEST[name]["bytes"]
    assert hashlib.sha256(raw).hexdigest() == MANIFEST[name]["sha256"]


@pytest.mark.parametrize("name", ["transitions_state.pt", "transitions_images.pt"])
def test_transitions_match_the_manifest(name):
    transitions = lerobot_codec.decode_transitions(fixture_bytes(name))
    expected = MANIFEST[name]["transitions"]
    assert len(transitions) == len(expected)
    for index, (got, want) in enumerate(zip(transitions, expected)):
        check_tree(got, want, f"{name}[{index}]")


@pytest.mark.parametrize("name", ["params.pt", "params_big.pt"])
def test_parameters_match_the_manifest(name):
    check_tree(lerobot_codec.decode_state_dict(fixture_bytes(name)), MANIFEST[name]["value"], name)


def test_interactions_match_the_manifest():
    stats = lerobot_codec.decode_interactions(fixture_bytes("interactions.pkl"))
    check_tree(stats, MANIFEST["interactions.pkl"]["value"])


def test_views_and_shared_storages_resolve_like_torch():
    policy = lerobot_codec.decode_state_dict(fixture_bytes("params.pt"))["policy"]
    # mean_layer.bias is a strided view into the storage of network.net.0.weight (offset 8).
    assert policy["mean_layer.bias"].tolist() == [8.0, 14.0]
    assert policy["network.net.0.weight"].flags.c_contiguous
    assert not np.shares_memory(policy["mean_layer.bias"], policy["network.net.0.weight"])


def test_stack_transitions_batches_an_episode():
    batch = lerobot_codec.stack_transitions(
        lerobot_codec.decode_transitions(fixture_bytes("transitions_images.pt"))
    )
    assert batch["state"]["observation.images.front"].shape == (2, 3, 16, 16)
    assert batch["action"].shape == (2, 4)
    assert batch["reward"].tolist() == [0.0, 1.0]
    assert batch["done"].tolist() == [False, True]
    assert batch["complementary_info"]["is_intervention"].tolist() == [False, True]


@pytest.mark.parametrize(
    "name, decoder",
    [
        ("evil_transitions.pt", lerobot_codec.decode_transitions),
        ("evil_interactions.pkl", lerobot_codec.decode_interactions),
    ],
)
def test_evil_payloads_are_refused_and_nothing_runs(name, decoder):
    existed = os.path.exists(PWNED_MARKER)
    with pytest.raises(PayloadError, match="disallowed global posix.system"):
        decoder(fixture_bytes(name))
    assert os.path.exists(PWNED_MARKER) == existed


def test_interactions_pickle_may_name_no_global_at_all():
    # Even an allowlisted tensor global is refused in a plain interactions pickle.
    payload = b"\x80\x02}X\x01\x00\x00\x00kccollections\nOrderedDict\n)Rs."
    with pytest.raises(PayloadError, match="disallowed global collections.OrderedDict"):
        lerobot_codec.decode_interactions(payload)


# ----------------------------------------------------------------------------- writing


def every_dtype_state() -> dict:
    import ml_dtypes

    return {
        "policy": {
            "w": np.arange(12, dtype=np.float32).reshape(3, 4).T,
            "half": np.array([0.5, -2.0], np.float16),
            "bf": np.array([1.5, -3.0], ml_dtypes.bfloat16),
            "steps": np.array(7, np.int64),
            "mask": np.array([True, False, True]),
            "pix": np.arange(6, dtype=np.uint8).reshape(2, 3),
            "i8": np.arange(-2, 3, dtype=np.int8),
            "i16": np.arange(3, dtype=np.int16),
            "i32": np.arange(3, dtype=np.int32),
            "empty": np.zeros((0, 3), np.float32),
            "big_endian": np.arange(3, dtype=">f8"),
        },
        "discrete_critic": {"output_layer.weight": np.ones((3, 5))},
    }


def test_written_parameters_read_back_identically():
    state = every_dtype_state()
    back = lerobot_codec.decode_state_dict(lerobot_codec.encode_state_dict(state))
    for group, tensors in state.items():
        for name, array in tensors.items():
            np.testing.assert_array_equal(
                back[group][name].astype(np.float64), array.astype(np.float64)
            )
            assert back[group][name].shape == array.shape


def test_rewriting_the_reference_parameters_is_lossless():
    original = lerobot_codec.decode_state_dict(fixture_bytes("params.pt"))
    rewritten = lerobot_codec.decode_state_dict(lerobot_codec.encode_state_dict(original))
    for group in original:
        for name in original[group]:
            np.testing.assert_array_equal(rewritten[group][name], original[group][name])


def test_written_archive_has_torch_layout():
    """Same records as torch 2.13 writes, stored uncompressed, storages 64-byte aligned
    (checked once by hand with torch.load(weights_only=True, mmap=True); no test needs torch)."""
    payload = lerobot_codec.encode_state_dict(every_dtype_state())
    reference = zipfile.ZipFile(io.BytesIO(fixture_bytes("params.pt")))
    ours = zipfile.ZipFile(io.BytesIO(payload))
    ref_names = {n for n in reference.namelist() if not n.startswith("archive/data/")}
    assert {n for n in ours.namelist() if not n.startswith("archive/data/")} == ref_names - {
        "archive/.data/serialization_id"
    }
    for name in (
        "archive/version",
        "archive/byteorder",
        "archive/.format_version",
        "archive/.storage_alignment",
    ):
        assert ours.read(name) == reference.read(name)
    for info in ours.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        name_len, extra_len = struct.unpack_from("<HH", payload, info.header_offset + 26)
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename


def test_transitions_written_in_the_stock_format_read_back():
    original = lerobot_codec.decode_transitions(fixture_bytes("transitions_images.pt"))
    again = lerobot_codec.decode_transitions(lerobot_codec.encode_transitions(original))
    for got, want in zip(again, MANIFEST["transitions_images.pt"]["transitions"]):
        check_tree(got, want)


def test_writer_refuses_unsupported_objects():
    with pytest.raises(TypeError):
        lerobot_codec.encode_state_dict({"x": object()})
    with pytest.raises(TypeError):
        lerobot_codec.encode_state_dict({"x": np.zeros(2, np.complex64)})


# ----------------------------------------------------------------------------- bad archives


def archive_with(records: dict[str, bytes], compress=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def records_of(payload: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(payload))
    return {name: archive.read(name) for name in archive.namelist()}


def tensor_pickle(storage_numel: int, size: tuple, stride: tuple, offset: int = 0) -> bytes:
    """A hand-written data.pkl holding one float tensor (opcodes, so any value can be forged)."""

    def tup(values):
        return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"

    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
        + b"J"
        + struct.pack("<i", storage_numel)
        + b"tQ"
        + b"J"
        + struct.pack("<i", offset)
        + tup(size)
        + tup(stride)
        + b"\x89ccollections\nOrderedDict\n)RtR."
    )


def forged(pickle_bytes: bytes, storage: bytes) -> bytes:
    return archive_with(
        {
            "archive/data.pkl": pickle_bytes,
            "archive/data/0": storage,
            "archive/byteorder": b"little",
            "archive/version": b"3\n",
        }
    )


def test_forged_tensor_pickle_is_readable_when_honest():
    array = lerobot_codec.load_torch_archive(
        forged(tensor_pickle(4, (2, 2), (2, 1)), np.arange(4, dtype="<f4").tobytes())
    )
    assert array.tolist() == [[0.0, 1.0], [2.0, 3.0]]


@pytest.mark.parametrize(
    "size, stride, offset, numel, match",
    [
        ((2, 2), (2, 1), 1, 4, "reaches element"),  # view past the storage end
        ((5,), (1,), 0, 4, "reaches element"),
        ((2,), (1,), 0, 9, "do not fit"),  # storage claims more than its record
        ((10**8,), (0,), 0, 4, "expand far beyond"),  # stride-0 memory bomb
        ((2, 2), (1,), 0, 4, "offset/size/stride"),  # rank mismatch
        ((-2,), (1,), 0, 4, "bad tensor size"),
    ],
)
def test_forged_tensor_views_are_refused(size, stride, offset, numel, match):
    with pytest.raises(PayloadError, match=match):
        lerobot_codec.load_torch_archive(
            forged(tensor_pickle(numel, size, stride, offset), bytes(16))
        )


def test_archive_structure_refusals():
    good = records_of(lerobot_codec.encode_state_dict({"w": np.ones(3, np.float32)}))
    cases = {
        "compressed": (archive_with(good, zipfile.ZIP_DEFLATED), "compressed"),
        "no data.pkl": (
            archive_with({k: v for k, v in good.items() if not k.endswith("data.pkl")}),
            "without data.pkl",
        ),
        "two folders": (archive_with({**good, "other/x": b""}), "one top folder"),
        "missing storage": (
            archive_with({k: v for k, v in good.items() if "/data/" not in k}),
            "missing",
        ),
        "big endian": (archive_with({**good, "archive/byteorder": b"big"}), "big-endian"),
        "not a zip": (b"PK\x03\x04garbage", "corrupt"),
    }
    for payload, match in cases.values():
        with pytest.raises(PayloadError, match=match):
            lerobot_codec.load_torch_archive(payload)


def test_payload_kind_detection():
    assert lerobot_codec.is_lerobot_payload(fixture_bytes("params.pt"))
    assert lerobot_codec.is_lerobot_payload(fixture_bytes("interactions.pkl"))
    assert not lerobot_codec.is_lerobot_payload(b"HJXP....")
    with pytest.raises(PayloadError, match="not a pickle"):
        lerobot_codec.decode_interactions(b"{}")
    with pytest.raises(PayloadError, match="not a torch.save archive"):
        lerobot_codec.decode_transitions(fixture_bytes("interactions.pkl"))
    with pytest.raises(PayloadError, match="not a list of dicts"):
        lerobot_codec.decode_transitions(fixture_bytes("params.pt"))


def test_a_stride_zero_view_is_charged_before_it_is_expanded():
    """One stored float claimed as a billion-element tensor: refused before any allocation."""
    import tracemalloc

    from transport.lerobot_codec import _AllowlistUnpickler, _StorageType

    unpickler = _AllowlistUnpickler(b"", {}, budget_bytes=1 << 20)
    storage = (np.zeros(1, np.float32), "FloatStorage")
    tracemalloc.start()
    with pytest.raises(PayloadError, match="expand"):
        unpickler._rebuild_tensor_v2(storage, 0, (10**9,), (0,), False, {})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20
    assert isinstance(_StorageType(("storage", "FloatStorage")), tuple)


def test_a_huge_pickle_memo_index_is_refused_before_unpickling():
    """9 bytes (PROTO 2, NONE, LONG_BINPUT 0xFFFFFFF0, STOP) that would make the unpickler grow
    its memo to billions of entries."""
    evil = b"\x80\x02Nr" + struct.pack("<I", 0xFFFFFFF0) + b"."
    with pytest.raises(PayloadError, match="memo index"):
        lerobot_codec.decode_interactions(evil)


def test_nested_lists_in_a_transition_are_refused_not_expanded():
    """Shared references make a small pickle of a list nested 30 deep hold 2**30 floats: the
    stacking refuses a non-tensor value instead of handing it to np.asarray."""
    nested: list = [0.0, 0.0]
    for _ in range(30):
        nested = [nested, nested]
    with pytest.raises(PayloadError, match="not a tensor"):
        lerobot_codec.stack_transitions([{"reward": nested}])


def test_stacking_charges_shared_tensors_before_copying():
    """One 1 MiB tensor referenced by 1000 transitions (a pickle memo makes that 2 bytes each)
    would stack to 1 GB: refused before np.stack, by the default budget."""
    shared = {"reward": 0.0, "state": {"s": np.zeros((1, 1 << 18), np.float32)}}
    with pytest.raises(PayloadError, match="far more"):
        lerobot_codec.stack_transitions([shared] * 1000)
    assert lerobot_codec.stack_transitions([shared] * 2)["state"]["s"].shape == (2, 1 << 18)


@pytest.mark.parametrize(
    "transitions, match",
    [
        ([{"a": {"b": {"c": {"d": {"e": 1.0}}}}}], "deeper"),
        ([{"a": 1.0}, {"a": 1.0, "b": 2.0}], "keys"),
        ([{1: 1.0}], "strings"),
        ([{"a": np.zeros((1, 2))}, {"a": np.zeros((1, 3))}], "different shapes"),
        ([{"a": np.zeros((1, 2))}, {"a": np.zeros((0, 2))}], "different shapes"),
        ([{"a": {"b": 1.0}}, {"a": np.zeros(1)}], "dict in one"),
        ([{"a": 2**70}], "plain number"),
        ([], "empty"),
    ],
)
def test_stacking_refuses_transitions_of_different_structure(transitions, match):
    with pytest.raises(PayloadError, match=match):
        lerobot_codec.stack_transitions(transitions)


def test_a_pickle_beyond_the_cap_is_refused_before_unpickling():
    evil = b"\x80\x02](" + b"}" * lerobot_codec.MAX_PICKLE_BYTES + b"e."
    with pytest.raises(PayloadError, match="exceeds"):
        lerobot_codec.decode_interactions(evil)


def test_a_huge_zip_directory_is_refused_before_zipfile_parses_it(monkeypatch):
    from transport import torch_archive

    payload = fixture_bytes("params.pt")  # a 943-byte central directory, zip64 records as torch
    assert lerobot_codec.decode_state_dict(payload)
    monkeypatch.setattr(torch_archive, "MAX_CENTRAL_DIRECTORY_BYTES", 900)
    with pytest.raises(PayloadError, match="central directory"):
        lerobot_codec.decode_state_dict(payload)
