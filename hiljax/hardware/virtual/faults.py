"""Bus faults to inject, for tests of what a driver does when the wire misbehaves.

As a string (the CLI's `--faults`, or `VirtualSO100(faults="drop=3,corrupt_prob=0.1")`), a
comma-separated list of:

    drop=ID           motor ID executes every request but its replies are lost
    drop_prob=P       every reply is lost with probability P
    corrupt=ID        replies of motor ID carry a wrong checksum
    corrupt_prob=P    every reply's checksum is wrong with probability P
    hang=ID           motor ID is hung: it neither answers nor executes anything
    error=ID:BITS     motor ID sets BITS (e.g. 0x20 overload) in every status error byte
    seed=N            seed of the random draws (default 0, so a run is repeatable)

ID-keyed entries may repeat (`drop=3,drop=4`).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Faults:
    drop: frozenset[int] = frozenset()
    drop_prob: float = 0.0
    corrupt: frozenset[int] = frozenset()
    corrupt_prob: float = 0.0
    hang: frozenset[int] = frozenset()
    error: tuple[tuple[int, int], ...] = ()  # (motor id, error bits)
    seed: int = 0

    def __post_init__(self):
        for name in ("drop_prob", "corrupt_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for servo_id, bits in self.error:
            if not 0 <= bits <= 0x7F:
                raise ValueError(f"error bits of motor {servo_id} must be in 0..0x7f, got {bits}")

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """Faults from the `--faults` syntax (module docstring); ValueError naming a bad item."""
        fields: dict = {"drop": set(), "corrupt": set(), "hang": set(), "error": []}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            key, _, value = item.partition("=")
            try:
                if key in ("drop", "corrupt", "hang"):
                    fields[key].add(int(value, 0))
                elif key in ("drop_prob", "corrupt_prob"):
                    fields[key] = float(value)
                elif key == "seed":
                    fields[key] = int(value, 0)
                elif key == "error":
                    servo_id, bits = value.split(":")
                    fields["error"].append((int(servo_id, 0), int(bits, 0)))
                else:
                    raise KeyError(key)
            except (KeyError, ValueError):
                raise ValueError(f"bad fault {item!r}: expected drop=ID, drop_prob=P, corrupt=ID, "
                                 "corrupt_prob=P, hang=ID, error=ID:BITS or seed=N") from None
        return cls(drop=frozenset(fields["drop"]), corrupt=frozenset(fields["corrupt"]),
                   hang=frozenset(fields["hang"]), error=tuple(fields["error"]),
                   **{k: v for k, v in fields.items() if k in ("drop_prob", "corrupt_prob", "seed")})

    @classmethod
    def coerce(cls, faults: Faults | str | None) -> Faults:
        return faults if isinstance(faults, Faults) else cls.parse(faults)

    def error_bits(self, servo_id: int) -> int:
        return next((bits for i, bits in self.error if i == servo_id), 0)


class FaultInjector:
    """Applies `Faults` to the replies of a bus (its own generator: repeatable per seed)."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self._rng = np.random.default_rng(faults.seed)

    def hung(self, servo_id: int) -> bool:
        return servo_id in self.faults.hang

    def filter_reply(self, servo_id: int, packet: bytes) -> bytes:
        """The bytes that reach the wire for one status packet ('' when it is lost)."""
        faults = self.faults
        if servo_id in faults.drop or (faults.drop_prob and self._rng.random() < faults.drop_prob):
            return b""
        if servo_id in faults.corrupt or (faults.corrupt_prob
                                          and self._rng.random() < faults.corrupt_prob):
            return packet[:-1] + bytes([packet[-1] ^ 0xFF])
        return packet
