"""One virtual STS3215: 256 bytes of control table, and what the firmware does on a write.

Choices where the facts leave the firmware's behaviour open (each is what the vendor describes
or the safe reading of it):

- Lock (55). Feetech's table describes Lock=1 as "values written to EEPROM are not saved on
  power-off": an EEPROM write (addresses < 40) while locked takes effect at once but only in
  the working copy, and `power_cycle()` restores the last image saved with Lock=0. So LeRobot's
  "use the calibration file" branch (which writes limits and offsets while locked, facts 3.2)
  works until the next power cycle, as on a real arm. Lock powers up as 1.
- Goal_Position with torque on is clamped to [Min, Max]_Position_Limit (when Min < Max) and the
  register holds the clamped value. Goals written with torque off are stored but drive nothing;
  enabling torque makes the servo hold where it is (goal := present), never jump.
- Torque_Enable = 128 is the STS "middle calibration": Homing_Offset is set so the present
  position reads 2048; torque stays off.
- Present = (Actual - Homing_Offset) mod 4096 (LeRobot #3586). A goal moves the joint by
  (goal - present) ticks: the single-turn servo never crosses its seam.
- Overload (status bit 0x20) while the effort stays above Overload_Torque % for Protection_Time
  (10 ms units); it clears when the effort drops. Writes to read-only addresses are ignored.
"""

from __future__ import annotations

from hiljax.hardware.virtual import registers as reg
from hiljax.hardware.virtual.physics import ServoPhysics

IDLE_CURRENT = 8  # Present_Current units (~6.5 mA each) drawn by the electronics
STALL_CURRENT = 415  # ~2.7 A stall at 12 V
MOVING_TICKS_S = 10.0


class VirtualServo:
    def __init__(self, servo_id: int, physics: ServoPhysics, joint: int,
                 eeprom: dict[str, int] | None = None, firmware: tuple[int, int] = (3, 10)):
        self.physics, self.joint = physics, joint
        self.memory = bytearray(reg.MEMORY_SIZE)
        self.memory[0], self.memory[1] = firmware
        self._put("Model_Number", reg.MODEL_STS3215)
        for name, value in {**reg.FACTORY_VALUES, **(eeprom or {}), "ID": servo_id}.items():
            self._put(name, value)
        self._saved_eeprom = bytes(self.memory[:reg.EEPROM_END])
        self.pending: tuple[int, bytes] | None = None  # REG_WRITE, executed on ACTION
        self._overload_since: float | None = None
        self._now = 0.0
        self._hold_present()

    # ----------------------------------------------------------------------- registers

    @property
    def servo_id(self) -> int:
        return self.memory[5]

    def value(self, name: str) -> int:
        """A register by name, decoded (sign-magnitude registers come back signed)."""
        address, size = reg.register(name)
        raw = int.from_bytes(self.memory[address:address + size], "little")
        return reg.decode_sign_magnitude(raw, reg.SIGN_BITS[name]) if name in reg.SIGN_BITS else raw

    def _put(self, name: str, value: int) -> None:
        """Set a register directly (the firmware's own writes: no lock or side effects)."""
        address, size = reg.register(name)
        raw = reg.encode_sign_magnitude(value, reg.SIGN_BITS[name]) if name in reg.SIGN_BITS \
            else int(value)
        self.memory[address:address + size] = raw.to_bytes(size, "little")

    def read(self, address: int, count: int) -> bytes:
        """Bytes as they stand (the bus calls `refresh` first, once per request)."""
        data = bytes(self.memory[address:address + count])
        return data + bytes(count - len(data))  # past the table: zeros

    def write(self, address: int, data: bytes) -> None:
        """A WRITE from the bus: byte by byte, then the firmware reacts to what changed."""
        locked = self.memory[55] != 0
        for offset, byte in enumerate(data):
            target = address + offset
            if target >= reg.MEMORY_SIZE or target in reg.READ_ONLY:
                continue
            self.memory[target] = byte
        if not locked and address < reg.EEPROM_END:
            self._saved_eeprom = bytes(self.memory[:reg.EEPROM_END])
        touched = set(range(address, address + len(data)))
        if 40 in touched:
            self._on_torque_write()
        if touched & {42, 43} and self.memory[40] == 1:
            self._drive_to_goal()

    def power_cycle(self) -> None:
        """Power off and on: EEPROM from its saved image, SRAM back to factory, torque off."""
        self.memory[:reg.EEPROM_END] = self._saved_eeprom
        for name in ("Torque_Enable", "Acceleration", "Goal_Time", "Goal_Velocity",
                     "Torque_Limit", "Lock"):
            self._put(name, reg.FACTORY_VALUES[name])
        self.physics.set_torque(self.joint, False)
        self.pending = None
        self._hold_present()

    # ----------------------------------------------------------------------- firmware

    def present_position(self) -> int:
        return (round(self.physics.actual(self.joint)) - self.value("Homing_Offset")) \
            % reg.RESOLUTION

    def _on_torque_write(self) -> None:
        mode = self.memory[40]
        if mode == 128:
            self._middle_calibration()
            mode = 0
        self.memory[40] = 1 if mode else 0
        self.physics.set_torque(self.joint, bool(mode))
        self._hold_present()

    def _middle_calibration(self) -> None:
        offset = round(self.physics.actual(self.joint)) % reg.RESOLUTION - 2048  # -2048..2047
        self._put("Homing_Offset", max(offset, -2047))  # -2048 does not fit 11 bits
        if self.memory[55] == 0:
            self._saved_eeprom = bytes(self.memory[:reg.EEPROM_END])

    def _hold_present(self) -> None:
        """Goal := present, and the position loop holds the joint where it is."""
        self._put("Goal_Position", self.present_position())
        self.physics.set_goal(self.joint, self.physics.actual(self.joint))

    def _drive_to_goal(self) -> None:
        goal = self.value("Goal_Position")
        low, high = self.value("Min_Position_Limit"), self.value("Max_Position_Limit")
        if low < high:
            goal = min(max(goal, low), high)
            self._put("Goal_Position", goal)
        if self.memory[33] != 0:
            return  # only position mode (0) follows Goal_Position
        actual = self.physics.actual(self.joint)
        self.physics.set_goal(self.joint, actual + goal - self.present_position())

    def refresh(self, now: float) -> None:
        """Copy what the servo measures into the table (physics already advanced to `now`)."""
        self._now = now
        velocity = self.physics.velocity(self.joint)
        effort = self.physics.effort(self.joint)
        self._put("Present_Position", self.present_position())
        self._put("Present_Velocity", reg.saturate(velocity, 15))
        self._put("Present_Load", reg.saturate(effort * 1000, 10))
        self._put("Present_Current", round(IDLE_CURRENT + abs(effort) * STALL_CURRENT))
        self._put("Present_Voltage", 120 - round(abs(effort) * 4))  # sags a little under load
        self._put("Present_Temperature", 30 + round(abs(effort) * 5))
        self._put("Moving", int(abs(velocity) > MOVING_TICKS_S))
        self._update_overload(abs(effort), now)
        self._put("Status", self.error_bits())

    def _update_overload(self, effort: float, now: float) -> None:
        if self.memory[40] and effort * 100 >= self.memory[36]:
            self._overload_since = now if self._overload_since is None else self._overload_since
        else:
            self._overload_since = None

    def error_bits(self) -> int:
        hold_s = self.memory[35] * 0.01
        overloaded = self._overload_since is not None and self._now - self._overload_since >= hold_s
        return reg.ERROR_OVERLOAD if overloaded else 0
