"""Errors shared by the codecs and the transports."""


class PayloadError(ValueError):
    """Bytes that are not a valid payload: wrong magic or version, truncated, oversize,
    inconsistent sizes, a disallowed pickle global, a chunk with an unknown state..."""


class TransportClosed(RuntimeError):
    """The transport was closed; nothing more can be sent or received through it."""


class TransportFull(RuntimeError):
    """A bounded outgoing queue stayed full for the whole timeout (back-pressure)."""
