"""Who is calling, and the keys that prove it: identities, tokens, call slots, key generation.

Shared by the gRPC and ZeroMQ learners and by `python -m hiljax.keys`; knows nothing of hiljax.

Identity. A caller's *announced* id (hiljax actors send one per process) is only a session
name: it is never trusted alone. The learner scopes it by what the channel proves:
- the *principal*, when the channel names one actor: its per-actor token, its TLS client
  certificate's common name, or its CURVE public key's file name;
- otherwise the peer's host (plain links, or a token shared by every actor).
The duplicate filter keys on `announced@scope`, so a client can only ever collide with payloads
of its own principal (or, on a plain link, its own host): a hostile client announcing another
actor's id opens a namespace of its own and cannot make that actor's episodes drop as resends.
Announced ids may not contain "@", so two different (id, scope) pairs never give one key.
"""

import dataclasses
import datetime
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import stat
import threading
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)

BEARER = "Bearer "  # RFC 6750: the `authorization` metadata value is "Bearer <token>"
_ID = re.compile(r"[A-Za-z0-9._:+-]{1,64}")  # announced ids and actor names: no "@", no spaces


def checked_name(text, what: str = "client id") -> str:
    """`text` if it is a usable id (1-64 of letters, digits and ._:+-), else a ValueError."""
    if not isinstance(text, str) or not _ID.fullmatch(text):
        raise ValueError(f"bad {what} {str(text)[:80]!r}: use 1-64 of A-Z a-z 0-9 . _ : + -")
    return text


# ----------------------------------------------------------------------------- caller identity


def grpc_peer_host(peer: str) -> str:
    """The host of a gRPC peer string: "ipv4:10.0.0.5:4321" -> "10.0.0.5",
    "ipv6:[::1]:4321" -> "::1" (the port changes on every reconnect, so it never names a client)."""
    address = peer.split(":", 1)[1] if peer.startswith(("ipv4:", "ipv6:")) else peer
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


@dataclasses.dataclass(frozen=True)
class Caller:
    """One call's client, as far as the channel proves it (see the module docstring)."""

    connection: str  # the gRPC peer ("ipv4:10.0.0.5:4321") or ZeroMQ peer address
    host: str
    announced: str | None  # the id a hiljax actor announced; None for a stock LeRobot actor
    principal: str | None = None  # the actor the credentials name (token, certificate, key)

    @property
    def name(self) -> str:
        """What logs, metrics and connected_clients() show: the authenticated actor when there
        is one; a plain link's announced id as sent (local runs); a stock actor's peer."""
        if self.announced is None:
            return self.connection if self.principal is None else f"{self.connection}@{self.principal}"
        return self.announced if self.principal is None else f"{self.announced}@{self.principal}"

    @property
    def key(self) -> str:
        """The duplicate filter's client key: the announced session, scoped by what the channel
        proves (principal, else host), so no other principal or host can collide with it."""
        return f"{self.announced}@{self.principal or self.host}"

    @property
    def slot(self) -> str:
        """Whose share of the RPC slots a call uses: the principal when the channel names one;
        on a plain link a client can only be told apart by what it says about itself."""
        if self.principal is not None:
            return self.principal
        return self.connection if self.announced is None else self.key


class CallSlots:
    """Caps the calls one client holds at once, so one client cannot take every worker."""

    def __init__(self, per_client: int):
        self.per_client = per_client
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        with self._lock:
            if self._held[client] >= self.per_client:
                return False
            self._held[client] += 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]


# ----------------------------------------------------------------------------- tokens


def read_secret_file(path: str | os.PathLike) -> str:
    """A secret's text (stripped). Warns when others may read the file: a secret that anyone
    on the machine can read proves nothing."""
    path = Path(path)
    try:
        text = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret file %s is readable by other users; chmod 600 it", path)
    if not text:
        raise ValueError(f"secret file {path} is empty")
    return text


def read_tokens_file(path: str | os.PathLike) -> dict[str, str]:
    """{token: actor name} from a JSON object file (what `python -m hiljax.keys` writes)."""
    try:
        tokens = json.loads(read_secret_file(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"tokens file {path} is not JSON: {error}") from None
    if not isinstance(tokens, dict) or not tokens:
        raise ValueError(f"tokens file {path} must hold a non-empty {{token: actor name}} object")
    for token, name in tokens.items():
        checked_name(name, f"actor name in {path}")
        if len(token) < 16:
            raise ValueError(f"tokens file {path}: the token of {name} is shorter than 16 chars")
    return tokens


class TokenBook:
    """Checks `authorization: Bearer <token>` against per-actor tokens and/or a shared token.

    Every comparison is constant-time and every token is compared, so the time a refusal takes
    says nothing about how close a guess was.
    """

    def __init__(self, per_actor: dict[str, str] | None = None, shared: str | None = None):
        self._per_actor = dict(per_actor or {})
        self._shared = shared

    def __bool__(self) -> bool:
        return bool(self._per_actor) or self._shared is not None

    def identify(self, authorization: str | None) -> tuple[bool, str | None]:
        """(accepted, actor name); the name is None for the shared token (it names no one)."""
        if not authorization or not authorization.startswith(BEARER):
            return False, None
        presented = authorization[len(BEARER) :].encode()
        found = None
        for token, name in self._per_actor.items():
            if hmac.compare_digest(presented, token.encode()):
                found = name
        if found is not None:
            return True, found
        shared = self._shared is not None and hmac.compare_digest(presented, self._shared.encode())
        return shared, None


class RefusalLog:
    """Logs refused callers without letting a flood of them flood the log: the first refusal
    of each (reason, host), then every 100th."""

    def __init__(self, logger: logging.Logger):
        self._log = logger
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def refused(self, reason: str, host: str) -> None:
        with self._lock:
            if len(self._counts) > 10_000:  # bounded, whatever the number of hosts
                self._counts.clear()
            self._counts[reason, host] += 1
            count = self._counts[reason, host]
        if count == 1 or count % 100 == 0:
            self._log.warning("refused a call from %s: %s (%d so far)", host, reason, count)


# ----------------------------------------------------------------------------- plain links


def is_loopback(host: str) -> bool:
    """True only for addresses no other machine can reach. 0.0.0.0, "*" and names are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(logger: logging.Logger, kind: str, host: str, protection: str | None) -> None:
    """A LOUD warning when a learner without encryption listens where other machines reach it.

    Plain stays allowed (a trusted lab network; stock LeRobot actors speak plain gRPC), but
    nobody should run it by accident."""
    if protection is not None or is_loopback(host):
        return
    bar = "*" * 78
    logger.warning(
        "\n%s\n"
        "PLAIN %s learner listening on %s, which other machines can reach.\n"
        "Nothing is encrypted and nobody is authenticated: anyone who can reach this port\n"
        "can send transitions your policy learns from, read its parameters and hold its\n"
        "connections. Use this only on a network you trust completely.\n"
        "To protect it, make keys with `python -m hiljax.keys --out keys --actors NAME ...\n"
        "--host THIS_HOST` and set the learner's security section (gRPC: tls_cert, tls_key,\n"
        "tls_client_ca and/or tokens_file; ZeroMQ: curve_server_secret, curve_clients_dir),\n"
        "or listen on 127.0.0.1.\n%s",
        bar, kind, host, bar,
    )


# ----------------------------------------------------------------------------- key generation


@dataclasses.dataclass(frozen=True)
class KeySet:
    """Where generate_keys() put everything (paths under its `out` folder)."""

    out: Path
    learner: Path  # the learner machine's folder
    actors: dict[str, Path]  # actor name -> that machine's folder
    ca: Path  # the CA's folder: stays with whoever adds actors later


def generate_keys(out: str | os.PathLike, actors: list[str], hosts: list[str]) -> KeySet:
    """A CA, the learner's server certificate (SAN: `hosts` + localhost, 127.0.0.1, ::1), per
    actor a client certificate (CN = name), a token, and CURVE keypairs for everyone.

    Layout (one folder per machine; secrets 0600, their folders 0700):
        ca/ca.crt, ca/ca.key
        learner/ca.crt, tls.crt, tls.key, tokens.json,
                curve/private_keys/learner.key_secret, curve/public_keys/<actor>.key
        <actor>/ca.crt, tls.crt, tls.key, token,
                curve/private_keys/<actor>.key_secret, curve/public_keys/learner.key
    An existing `out` keeps its CA and learner keys: new actors are added to them (their
    tokens into tokens.json, their public keys into the learner's allowed keys).
    """
    out = Path(out)
    for name in actors:
        checked_name(name, "actor name")
        if name in ("ca", "learner"):
            raise ValueError(f"actor name {name!r} is taken by a folder of the layout")
        if (out / name).exists():
            raise ValueError(f"{out / name} exists: actor {name!r} already has keys")
    keys = KeySet(out, out / "learner", {name: out / name for name in actors}, out / "ca")
    ca_cert, ca_key = _ensure_ca(keys.ca)
    _ensure_learner(keys.learner, ca_cert, ca_key, hosts)
    for name, folder in keys.actors.items():
        _make_actor(folder, name, keys.learner, ca_cert, ca_key)
    return keys


def _ensure_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if (folder / "ca.key").exists():
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        return x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()), key
    _private_folder(folder)
    key = _new_key()
    cert = _certificate("hiljax CA", key.public_key(), key, None, ca=True)
    _write_secret(folder / "ca.key", _key_pem(key))
    (folder / "ca.crt").write_bytes(_cert_pem(cert))
    return cert, key


def _ensure_learner(folder: Path, ca_cert, ca_key, hosts: list[str]) -> None:
    if (folder / "tls.crt").exists():  # keep it: actors made earlier trust this learner
        if hosts:
            log.warning("kept the learner's existing certificate in %s: its host names stay as "
                        "they were (--host applies to a new folder only)", folder)
        return
    _private_folder(folder)
    (folder / "ca.crt").write_bytes(_cert_pem(ca_cert))
    key = _new_key()
    names = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1"]))
    cert = _certificate("hiljax learner", key.public_key(), ca_key, ca_cert, hosts=names)
    (folder / "tls.crt").write_bytes(_cert_pem(cert))
    _write_secret(folder / "tls.key", _key_pem(key))
    _write_secret(folder / "tokens.json", b"{}\n")
    _write_curve_pair(folder / "curve", "learner")
    _private_folder(folder / "curve" / "public_keys")


def _make_actor(folder: Path, name: str, learner: Path, ca_cert, ca_key) -> None:
    _private_folder(folder)
    (folder / "ca.crt").write_bytes(_cert_pem(ca_cert))
    key = _new_key()
    cert = _certificate(name, key.public_key(), ca_key, ca_cert, client=True)
    (folder / "tls.crt").write_bytes(_cert_pem(cert))
    _write_secret(folder / "tls.key", _key_pem(key))
    token = secrets.token_urlsafe(32)
    _write_secret(folder / "token", (token + "\n").encode())
    _add_token(learner / "tokens.json", token, name)
    public = _write_curve_pair(folder / "curve", name)
    (learner / "curve" / "public_keys" / f"{name}.key").write_text(_curve_file(public, None))
    _private_folder(folder / "curve" / "public_keys")
    server_public = (learner / "curve" / "private_keys" / "learner.key_secret").read_text()
    (folder / "curve" / "public_keys" / "learner.key").write_text(
        _curve_file(_curve_field(server_public, "public-key"), None))


def _add_token(path: Path, token: str, name: str) -> None:
    """Adds one entry; the new file is written 0600 beside the old one, then replaces it, so a
    crash leaves the old tokens, never none."""
    tokens = json.loads(path.read_text())
    staging = path.with_suffix(".new")
    staging.unlink(missing_ok=True)
    _write_secret(staging, (json.dumps({**tokens, token: name}, indent=2) + "\n").encode())
    os.replace(staging, path)


# -- X.509 (EC P-256: fast to make, small, and every TLS stack gRPC uses speaks it)

_VALID_DAYS = 825  # the longest validity browsers' rules allow; renew by re-running the tool


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(common_name: str, public_key, signing_key, issuer, *, ca: bool = False,
                 hosts: list[str] = (), client: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(_key_usage(cert_sign=False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [_san_entry(host) for host in hosts]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _key_usage(cert_sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=not cert_sign, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False)


def _san_entry(host: str):
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


# -- CURVE keys, in the files zmq.auth.load_certificate(s) read


def _write_curve_pair(folder: Path, name: str) -> str:
    """`folder/private_keys/<name>.key_secret` (0600); returns the public key (Z85 text)."""
    import zmq

    public, secret = (key.decode("ascii") for key in zmq.curve_keypair())
    _private_folder(folder / "private_keys")
    _write_secret(folder / "private_keys" / f"{name}.key_secret",
                  _curve_file(public, secret).encode())
    return public


def _curve_file(public: str, secret: str | None) -> str:
    lines = ["#   ZeroMQ CURVE " + ("**Secret** Certificate" if secret else "Public Certificate"),
             "#   written by python -m hiljax.keys", "", "metadata", "curve",
             f'    public-key = "{public}"']
    if secret:
        lines.append(f'    secret-key = "{secret}"')
    return "\n".join(lines) + "\n"


def _curve_field(text: str, field: str) -> str:
    match = re.search(rf'{field}\s*=\s*"([^"]+)"', text)
    if match is None:
        raise ValueError(f"no {field} in the CURVE key file")
    return match.group(1)


# -- files


def _private_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_secret(path: Path, data: bytes) -> None:
    """Created 0600 from the start (never readable by others, not even for a moment); an
    existing file is an error, never overwritten."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
