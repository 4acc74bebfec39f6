"""Frames and helpers shared by the ZeroMQ learner and actor.

Data path: actor DEALER -> learner ROUTER, one multipart message per payload:
    actor -> learner   [KIND_T | KIND_I, client_id, seq (u64 LE), payload]
                       [HELLO | HEARTBEAT | GOODBYE, client_id]
    learner -> actor   [ACK, seq]  |  [NACK, seq, reason]  |  [WELCOME, instance_id, param_port]
The learner acknowledges a payload once it sits in its bounded queue; an actor keeps at most
`window` payloads unacknowledged (credit-based flow control), so a slow learner stalls the
actors instead of growing memory. WELCOME carries a per-start instance id: when it changes the
learner has restarted, and the actor resends everything unacknowledged at once.

Parameters: learner XPUB -> actor SUB, one single-frame envelope per message (CONFLATE keeps
only the newest on both ends; it requires single frames). XPUB reports each new subscriber, so
a late joiner gets the current parameters at the next push slot.
"""

import struct
import threading
import uuid

import zmq

KIND_T = b"T"
KIND_I = b"I"
HELLO = b"R"
HEARTBEAT = b"H"
GOODBYE = b"B"
ACK = b"A"
NACK = b"N"
WELCOME = b"W"
_SEQ = struct.Struct("<Q")


def pack_seq(seq: int) -> bytes:
    return _SEQ.pack(seq)


def unpack_seq(raw: bytes) -> int:
    if len(raw) != _SEQ.size:
        raise ValueError("bad sequence frame")
    return _SEQ.unpack(raw)[0]


def new_instance_id() -> bytes:
    return uuid.uuid4().bytes[:8]


def bound_port(socket: zmq.Socket) -> int:
    endpoint = socket.getsockopt(zmq.LAST_ENDPOINT).decode()
    return int(endpoint.rsplit(":", 1)[1])


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    return host, int(port)


class Waker:
    """Wakes an I/O thread blocked in zmq poll, from any thread (the PUSH end is locked)."""

    def __init__(self, context: zmq.Context):
        name = f"inproc://wake-{uuid.uuid4().hex}"
        self.receiver = context.socket(zmq.PULL)
        self.receiver.bind(name)
        self._sender = context.socket(zmq.PUSH)
        self._sender.setsockopt(zmq.SNDHWM, 1)  # one pending wake-up is enough
        self._sender.connect(name)
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            try:
                self._sender.send(b"", zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                pass  # a wake-up is already pending, or we are closing

    def drain(self) -> None:
        while True:
            try:
                self.receiver.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def close(self) -> None:
        with self._lock:
            self._sender.close(linger=0)
        self.receiver.close(linger=0)
