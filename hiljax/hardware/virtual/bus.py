"""A bus of virtual servos: instruction packets in, status packets out, as the servos would.

- PING / READ / WRITE / REG_WRITE / ACTION to one id: that servo replies (if it exists).
- Broadcast (0xFE): PING gets one status from every servo, in id order; WRITE, REG_WRITE and
  ACTION execute on every servo with no reply.
- SYNC_READ (to 0xFE): one ordinary status per listed id that exists, in list order.
- SYNC_WRITE (to 0xFE): executes, no reply.
- Unknown ids, unknown instructions and malformed parameters get no reply; nothing is echoed.
- Response_Status_Level 0 (addr 8): a servo answers only PING and READ / SYNC_READ (checked
  after executing, so the WRITE that sets level 0 is itself unanswered).
- Return_Delay_Time (addr 7, 2 us units) is honoured as a wait before each status packet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from hiljax.hardware.virtual import protocol as p
from hiljax.hardware.virtual.faults import FaultInjector, Faults
from hiljax.hardware.virtual.physics import ServoPhysics
from hiljax.hardware.virtual.servo import VirtualServo

logger = logging.getLogger(__name__)

Reply = tuple[float, bytes]  # (seconds to wait before sending, bytes)


class VirtualBus:
    def __init__(self, servos: Sequence[VirtualServo], physics: ServoPhysics,
                 faults: Faults | str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.servos = list(servos)
        self.physics = physics
        self.clock = clock
        # One lock for everything behind the wire: the serving thread and the test API share it.
        self.lock = threading.RLock()
        self._parser = p.PacketParser()
        self.set_faults(faults)
        self.requests = 0  # valid packets seen (for logs and tests)

    @property
    def bad_checksums(self) -> int:
        return self._parser.bad_checksums

    def set_faults(self, faults: Faults | str | None) -> None:
        with self.lock:
            self.injector = FaultInjector(Faults.coerce(faults))

    def sync(self) -> float:
        """Advance physics to now and let every servo measure; returns now."""
        now = self.clock()
        self.physics.advance(now)
        for servo in self.servos:
            servo.refresh(now)
        return now

    def feed(self, data: bytes) -> list[Reply]:
        """Bytes from the wire -> replies to send, in order."""
        with self.lock:
            replies: list[Reply] = []
            for instruction in self._parser.feed(data, self.clock()):
                self.requests += 1
                self.sync()
                replies.extend(self.handle(instruction))
            return replies

    def find(self, servo_id: int) -> VirtualServo | None:
        """The servo answering to `servo_id` now (a hung one answers to nothing)."""
        for servo in self.servos:
            if servo.servo_id == servo_id and not self.injector.hung(servo_id):
                return servo
        return None

    def handle(self, ins: p.Instruction) -> list[Reply]:
        if ins.instruction in (p.SYNC_READ, p.SYNC_WRITE):
            if ins.servo_id != p.BROADCAST_ID or len(ins.params) < 2:
                return []
            sync = self._sync_read if ins.instruction == p.SYNC_READ else self._sync_write
            return sync(ins.params[0], ins.params[1], ins.params[2:])
        if ins.servo_id == p.BROADCAST_ID:
            targets = sorted((s for s in self.servos if self.find(s.servo_id) is s),
                             key=lambda s: s.servo_id)
        else:
            targets = [s for s in [self.find(ins.servo_id)] if s is not None]
        replies = []
        for servo in targets:
            params = self._execute(servo, ins.instruction, ins.params)
            if params is None:
                logger.debug("no reply to malformed or unknown instruction %s", ins)
                continue
            if ins.servo_id == p.BROADCAST_ID and ins.instruction != p.PING:
                continue
            if servo.memory[8] == 0 and ins.instruction not in (p.PING, p.READ):
                continue  # Response_Status_Level 0: reads and pings only
            replies.extend(self._status(servo, params))
        return replies

    def _execute(self, servo: VirtualServo, code: int, params: bytes) -> bytes | None:
        """Run one instruction on one servo; the reply's parameters, or None for no reply."""
        if code == p.PING and not params:
            return b""
        if code == p.READ and len(params) == 2:
            return servo.read(params[0], params[1])
        if code in (p.WRITE, p.REG_WRITE) and len(params) >= 2:
            if code == p.WRITE:
                servo.write(params[0], params[1:])
            else:
                servo.pending = (params[0], bytes(params[1:]))
            return b""
        if code == p.ACTION and not params:
            if servo.pending is not None:
                servo.write(*servo.pending)
                servo.pending = None
            return b""
        return None

    def _sync_read(self, address: int, count: int, ids: bytes) -> list[Reply]:
        replies = []
        for servo_id in ids:
            servo = self.find(servo_id)
            if servo is not None:
                replies.extend(self._status(servo, servo.read(address, count)))
        return replies

    def _sync_write(self, address: int, count: int, groups: bytes) -> list[Reply]:
        if count == 0 or len(groups) % (count + 1):
            return []  # a torn packet: the servos cannot tell whose bytes are whose
        for start in range(0, len(groups), count + 1):
            servo = self.find(groups[start])
            if servo is not None:
                servo.write(address, groups[start + 1:start + 1 + count])
        return []

    def _status(self, servo: VirtualServo, params: bytes) -> list[Reply]:
        servo_id = servo.servo_id
        error = servo.error_bits() | self.injector.faults.error_bits(servo_id)
        packet = self.injector.filter_reply(servo_id, p.status_packet(servo_id, error, params))
        return [(servo.memory[7] * 2e-6, packet)] if packet else []
