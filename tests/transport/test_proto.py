"""The proto is wire-identical to LeRobot's LearnerService, and the committed stubs are fresh."""

import filecmp

import pytest

from transport import gen_proto
from transport._generated import services_pb2, services_pb2_grpc


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    pytest.importorskip("grpc_tools")
    gen_proto.generate(tmp_path)
    for name in (*gen_proto.GENERATED_FILES, "__init__.py"):
        fresh, committed = tmp_path / name, gen_proto.DEFAULT_OUT / name
        assert filecmp.cmp(fresh, committed, shallow=False), (
            f"transport/_generated/{name} is stale: run `python -m transport.gen_proto`"
        )


def test_service_methods_and_streaming_shapes():
    service = services_pb2.DESCRIPTOR.services_by_name["LearnerService"]
    assert services_pb2.DESCRIPTOR.package == "transport"
    shapes = {
        m.name: (m.input_type.name, m.output_type.name, m.client_streaming, m.server_streaming)
        for m in service.methods
    }
    assert shapes == {
        "StreamParameters": ("Empty", "Parameters", False, True),
        "SendTransitions": ("Transition", "Empty", True, False),
        "SendInteractions": ("InteractionMessage", "Empty", True, False),
        "Ready": ("Empty", "Empty", False, False),
    }
    assert {m.full_name for m in service.methods} == {
        f"transport.LearnerService.{name}" for name in shapes
    }


def test_messages_and_enum_match_the_reference():
    enum = services_pb2.DESCRIPTOR.enum_types_by_name["TransferState"]
    assert {v.name: v.number for v in enum.values} == {
        "TRANSFER_UNKNOWN": 0,
        "TRANSFER_BEGIN": 1,
        "TRANSFER_MIDDLE": 2,
        "TRANSFER_END": 3,
    }
    for name in ("Transition", "Parameters", "InteractionMessage"):
        fields = services_pb2.DESCRIPTOR.message_types_by_name[name].fields
        assert [(f.name, f.number) for f in fields] == [("transfer_state", 1), ("data", 2)]
    assert services_pb2.DESCRIPTOR.message_types_by_name["Empty"].fields == []


def test_wire_bytes_of_a_chunk():
    message = services_pb2.Transition(transfer_state=services_pb2.TRANSFER_END, data=b"x")
    assert message.SerializeToString() == b"\x08\x03\x12\x01x"  # field 1 varint 3, field 2 len 1


def test_stub_dials_the_reference_method_paths():
    class RecordingChannel:
        def __init__(self):
            self.paths = []

        def _record(self, path, *args, **kwargs):
            self.paths.append(path)

        unary_unary = unary_stream = stream_unary = stream_stream = _record

    channel = RecordingChannel()
    services_pb2_grpc.LearnerServiceStub(channel)
    assert sorted(channel.paths) == sorted(
        f"/transport.LearnerService/{m}"
        for m in ("StreamParameters", "SendTransitions", "SendInteractions", "Ready")
    )
