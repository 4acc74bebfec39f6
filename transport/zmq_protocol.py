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

CURVE (optional): both learner sockets are CURVE servers with the learner's key; a ZAP handler
admits only the public keys in the allowed-clients folder and names each connection after its
key's file (the ZeroMQ "User-Id" of every message), which is then the actor's identity.
"""

import logging
import struct
import threading
import uuid
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from transport.security import RefusalLog

log = logging.getLogger(__name__)

KIND_T = b"T"
KIND_I = b"I"
HELLO = b"R"
HEARTBEAT = b"H"
GOODBYE = b"B"
ACK = b"A"
NACK = b"N"
WELCOME = b"W"
_SEQ = struct.Struct("<Q")

# High-water marks, in messages per connection, set explicitly so what a peer can make a
# socket hold is bounded by design rather than by libzmq's default of 1000:
LEARNER_RCVHWM = 16  # an actor has at most `window` payloads (+ heartbeats) unacknowledged
LEARNER_SNDHWM = 256  # acks and welcomes (tiny); beyond it they drop and the actor resends
ACTOR_SNDHWM = 64  # payloads in the window, their resends and heartbeats; sends never block
ACTOR_RCVHWM = 256
PARAMETERS_HWM = 1  # newest parameters only (CONFLATE as well)
CONTROL_MAX_BYTES = 64 * 1024  # an actor's DEALER only ever receives acks and welcomes
# MAXMSGSIZE counts what crosses the wire: room for CURVE's box around a frame (flags, nonce
# and MAC, 33 bytes) and for the 13-byte parameters envelope, so a payload of exactly
# max_payload_bytes still passes.
FRAME_OVERHEAD_BYTES = 64


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


# ----------------------------------------------------------------------------- CURVE


def load_curve_secret(path: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a `.key_secret` file (zmq.auth's format)."""
    public, secret = _load_curve_file(path)
    if secret is None:
        raise ValueError(f"{path} holds no CURVE secret key (it is a public key file)")
    return public, secret


def load_curve_public(path: str) -> bytes:
    return _load_curve_file(path)[0]


def _load_curve_file(path: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the CURVE key file {path}: {error}") from None


def make_curve_server(socket: zmq.Socket, keys: tuple[bytes, bytes]) -> None:
    socket.curve_publickey, socket.curve_secretkey = keys
    socket.curve_server = True


def make_curve_client(socket: zmq.Socket, server_public: bytes, keys: tuple[bytes, bytes]) -> None:
    socket.curve_publickey, socket.curve_secretkey = keys
    socket.curve_serverkey = server_public


def allowed_curve_clients(folder: str) -> dict[bytes, str]:
    """{public key (Z85): actor name} from the `<name>.key` files of `folder`."""
    paths = sorted(Path(folder).glob("*.key"))
    if not paths:
        raise ValueError(f"no allowed CURVE client keys (*.key) in {folder}")
    return {load_curve_public(str(path)): path.stem for path in paths}


class CurveAuthenticator(ThreadAuthenticator):
    """The ZAP handler of one learner's context: admits the allowed keys only, and gives each
    connection its key's actor name as User-Id."""

    def __init__(self, context: zmq.Context, clients: dict[bytes, str]):
        super().__init__(context)
        self.clients = clients
        self._refusals = RefusalLog(log)
        self.start()
        self.configure_curve_callback("*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        if key not in self.clients:
            self._refusals.refused("unknown CURVE client key", key.decode())
        return key in self.clients

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.clients[z85.encode(client_public_key)]


def peer_property(frame: zmq.Frame, name: str) -> str | None:
    """A ZeroMQ message property ("User-Id", "Peer-Address"), None where there is none."""
    try:
        return frame.get(name)
    except zmq.ZMQError:
        return None
