"""Split payloads into LearnerService chunk messages and reassemble them.

Exactly the reference's semantics (LeRobot transport.utils), which its own tests assert:
- chunk size 2 MiB; a payload of at most one chunk (2 MiB exactly included) travels as ONE
  message marked END; a larger one as BEGIN, MIDDLE..., END; an empty payload sends nothing;
- the receiver resets on BEGIN, appends on MIDDLE, appends and emits on END (then resets);
  a missing BEGIN is tolerated (MIDDLE + END are simply concatenated); BEGIN without END emits
  nothing; any other state (UNKNOWN or out of range) is an error.
Kept free of protobuf so it can be tested and reused (the ZeroMQ path sends whole payloads).
"""

from collections.abc import Iterator

from transport.errors import PayloadError

CHUNK_SIZE = 2 * 1024 * 1024  # 2 MiB, the reference's CHUNK_SIZE
MAX_MESSAGE_SIZE = 4 * 1024 * 1024  # 4 MiB, gRPC send and receive limit of the reference

# Values of the proto enum TransferState (proto/services.proto).
TRANSFER_UNKNOWN = 0
TRANSFER_BEGIN = 1
TRANSFER_MIDDLE = 2
TRANSFER_END = 3


def iter_chunks(
    payload: bytes | memoryview, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[int, bytes]]:
    """Yield (transfer_state, chunk_bytes) for one payload, in order."""
    view = memoryview(payload).cast("B")
    size = len(view)
    for start in range(0, size, chunk_size):
        if start + chunk_size >= size:
            state = TRANSFER_END
        elif start == 0:
            state = TRANSFER_BEGIN
        else:
            state = TRANSFER_MIDDLE
        # protobuf `bytes` fields need a bytes object; a single-chunk bytes payload is not copied.
        chunk = (
            payload
            if (start == 0 and state == TRANSFER_END and isinstance(payload, bytes))
            else bytes(view[start : start + chunk_size])
        )
        yield state, chunk


class ChunkAssembler:
    """Reassembles payloads from (state, data) chunks of one stream.

    `max_payload_bytes` bounds the memory one stream may claim: a payload that grows past it
    raises PayloadError before more is buffered.
    """

    def __init__(self, max_payload_bytes: int | None = None):
        self.max_payload_bytes = max_payload_bytes
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered for a payload that has not ended yet."""
        return self._size

    def feed(self, state: int, data: bytes) -> bytes | None:
        """Take one chunk; return the completed payload on END, else None."""
        if state == TRANSFER_BEGIN:
            self._reset()
            self._append(data)
            return None
        if state == TRANSFER_MIDDLE:
            self._append(data)
            return None
        if state == TRANSFER_END:
            self._append(data)
            payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._reset()
            return payload
        self._reset()
        raise PayloadError(f"chunk with unknown transfer state {state!r}")

    def _append(self, data: bytes) -> None:
        if self.max_payload_bytes is not None and self._size + len(data) > self.max_payload_bytes:
            size = self._size + len(data)
            self._reset()
            raise PayloadError(
                f"payload exceeds the limit: {size} > {self.max_payload_bytes} bytes"
            )
        self._parts.append(data)
        self._size += len(data)

    def _reset(self) -> None:
        self._parts = []
        self._size = 0


def assemble(chunks, max_payload_bytes: int | None = None) -> Iterator[bytes]:
    """Yield every payload completed by an iterable of (state, data) chunks."""
    assembler = ChunkAssembler(max_payload_bytes)
    for state, data in chunks:
        payload = assembler.feed(state, data)
        if payload is not None:
            yield payload
