"""Dynamixel X-series servos (protocol 2.0): control tables, models, encodings and packets.

Register names, addresses and sizes are LeRobot's (`lerobot/motors/dynamixel/tables.py`), so a
register name from a LeRobot config or script means the same register here. Addresses below 64
are EEPROM (persisted, writable only while Torque_Enable = 0), 64 and up RAM.

LeRobot gives every X model one table. Robotis' own model files disagree for the small servos,
and a register a servo does not have should fail here, by name, not return whatever the servo
keeps at that address; so the tables are per model:

    xl330-m077 / xl330-m288   no Acceleration_Limit (40)
    xl430-w250 / xc430-w150   no Acceleration_Limit (40), no Current_Limit (38), no Goal_Current
                              (102); address 126 is Present_Load (0.1 %), not Present_Current
                              (these two have no current sensor: no modes 0 and 5 either)
    xm430-w350 / xm540-w270   LeRobot's full table

A missing register is a KeyError naming the model. The packet helpers at the end are pure
functions (no port, no global state): CRC, byte stuffing, framing, error names.
"""

from __future__ import annotations

import enum

# register name -> (address, size in bytes); LeRobot's X_SERIES_CONTROL_TABLE
X_SERIES_CONTROL_TABLE: dict[str, tuple[int, int]] = {
    # EEPROM
    "Model_Number": (0, 2),  # read-only
    "Model_Information": (2, 4),  # read-only
    "Firmware_Version": (6, 1),  # read-only
    "ID": (7, 1),
    "Baud_Rate": (8, 1),  # see X_SERIES_BAUDRATE_TABLE
    "Return_Delay_Time": (9, 1),  # unit 2 us; factory 250 (500 us), LeRobot writes 0
    "Drive_Mode": (10, 1),  # bit 0: reverse direction (the servo inverts, not software)
    "Operating_Mode": (11, 1),  # see OperatingMode
    "Secondary_ID": (12, 1),
    "Protocol_Type": (13, 1),
    "Homing_Offset": (20, 4),  # Present = Actual + Homing_Offset (opposite sign to Feetech)
    "Moving_Threshold": (24, 4),
    "Temperature_Limit": (31, 1),
    "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2),
    "PWM_Limit": (36, 2),
    "Current_Limit": (38, 2),
    "Acceleration_Limit": (40, 4),
    "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4),  # used in position mode (3) only
    "Min_Position_Limit": (52, 4),
    "Shutdown": (63, 1),
    # RAM
    "Torque_Enable": (64, 1),
    "LED": (65, 1),
    "Status_Return_Level": (68, 1),
    "Registered_Instruction": (69, 1),  # read-only
    "Hardware_Error_Status": (70, 1),  # read-only; what the status' alert bit refers to
    "Velocity_I_Gain": (76, 2),
    "Velocity_P_Gain": (78, 2),
    "Position_D_Gain": (80, 2),
    "Position_I_Gain": (82, 2),
    "Position_P_Gain": (84, 2),
    "Feedforward_2nd_Gain": (88, 2),
    "Feedforward_1st_Gain": (90, 2),
    "Bus_Watchdog": (98, 1),
    "Goal_PWM": (100, 2),
    "Goal_Current": (102, 2),
    "Goal_Velocity": (104, 4),
    "Profile_Acceleration": (108, 4),
    "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4),
    "Realtime_Tick": (120, 2),  # read-only from here on
    "Moving": (122, 1),
    "Moving_Status": (123, 1),
    "Present_PWM": (124, 2),
    "Present_Current": (126, 2),
    "Present_Velocity": (128, 4),
    "Present_Position": (132, 4),  # multi-turn in extended position mode
    "Velocity_Trajectory": (136, 4),
    "Position_Trajectory": (140, 4),
    "Present_Input_Voltage": (144, 2),
    "Present_Temperature": (146, 1),
}
EEPROM_END = 64  # addresses below: writable only with torque off

# Signed registers: two's complement of the register's width.
X_SERIES_SIGNED_REGISTERS = frozenset({
    "Homing_Offset", "Goal_PWM", "Goal_Current", "Goal_Velocity", "Goal_Position",
    "Present_PWM", "Present_Current", "Present_Load", "Present_Velocity", "Present_Position",
})

# Baud_Rate register value for each bus rate (LeRobot sets 1 Mbps).
X_SERIES_BAUDRATE_TABLE: dict[int, int] = {
    9_600: 0, 57_600: 1, 115_200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5, 4_000_000: 6,
}


class OperatingMode(enum.IntEnum):
    """Operating_Mode values (LeRobot's names). XL430/XC430 lack CURRENT and CURRENT_POSITION."""

    CURRENT = 0
    VELOCITY = 1
    POSITION = 3  # position limits apply
    EXTENDED_POSITION = 4  # +-256 turns, limits ignored (LeRobot's Koch joints)
    CURRENT_POSITION = 5  # LeRobot's Koch grippers
    PWM = 16


def _without(*names: str) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in X_SERIES_CONTROL_TABLE.items() if k not in names}


XL330_CONTROL_TABLE = _without("Acceleration_Limit")
# No current sensor: 126 reports load instead.
XL430_CONTROL_TABLE = {**_without("Acceleration_Limit", "Current_Limit", "Goal_Current",
                                  "Present_Current"), "Present_Load": (126, 2)}

MODEL_NUMBER_TABLE: dict[str, int] = {
    "xl330-m077": 1190, "xl330-m288": 1200, "xl430-w250": 1060, "xm430-w350": 1020,
    "xm540-w270": 1120, "xc430-w150": 1070,
}
MODEL_CONTROL_TABLE: dict[str, dict[str, tuple[int, int]]] = {
    "xl330-m077": XL330_CONTROL_TABLE, "xl330-m288": XL330_CONTROL_TABLE,
    "xl430-w250": XL430_CONTROL_TABLE, "xc430-w150": XL430_CONTROL_TABLE,
    "xm430-w350": X_SERIES_CONTROL_TABLE, "xm540-w270": X_SERIES_CONTROL_TABLE,
}
MODEL_RESOLUTION_TABLE = dict.fromkeys(MODEL_NUMBER_TABLE, 4096)  # ticks per turn
MODEL_BAUDRATE_TABLE = dict.fromkeys(MODEL_NUMBER_TABLE, X_SERIES_BAUDRATE_TABLE)
MODEL_SIGNED_REGISTERS = {model: X_SERIES_SIGNED_REGISTERS & set(table)
                          for model, table in MODEL_CONTROL_TABLE.items()}


def model_name(model_number: int) -> str:
    """The model of a model number, or a description of an unknown one."""
    for name, number in MODEL_NUMBER_TABLE.items():
        if number == model_number:
            return name
    return f"an unknown model (number {model_number})"


def encode_twos_complement(value: int, size: int) -> int:
    """A signed value -> the unsigned `size`-byte register value; ValueError if it does not fit."""
    bits = 8 * size
    if not -(1 << (bits - 1)) <= int(value) < 1 << (bits - 1):
        raise ValueError(f"{value} does not fit a signed {size}-byte register")
    return int(value) & ((1 << bits) - 1)


def decode_twos_complement(raw: int, size: int) -> int:
    bits = 8 * size
    return raw - (1 << bits) if raw >> (bits - 1) & 1 else raw


# ---------------------------------------------------------------------------------------------
# Packets (protocol 2.0): FF FF FD 00 | id | len_l len_h | instruction | params | crc_l crc_h,
# LEN = bytes after it (instruction, stuffed params, CRC). Status: instruction 0x55, then an
# error byte. Every multi-byte field is little-endian.

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 252  # the SDK rejects status packets from higher ids
MAX_PACKET_LENGTH = 1024  # the SDK's RXPACKET_MAX_LEN: a longer LEN means a false header
PING, READ, WRITE, STATUS, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x55, 0x82, 0x83
STATUS_OVERHEAD = 11  # header 4, id, len 2, 0x55, error, crc 2
PING_PARAMS = 3  # model number (2 bytes) and firmware version
HARDWARE_ALERT = 0x80
ERROR_NAMES = {1: "result fail", 2: "instruction error", 3: "CRC error (the servo's view)",
               4: "data range error", 5: "data length error", 6: "data limit error",
               7: "access error (EEPROM with torque on, or a read-only register)"}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0, no reflection): b"123456789" -> 0xFEE8."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """FF FF FD -> FF FF FD FD, so a header never appears inside a packet. (The pattern cannot
    overlap itself, so a left-to-right replace is the SDK's byte loop.)"""
    return bytes(body).replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(body: bytes) -> bytes:
    return bytes(body).replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    body = stuff(bytes([instruction]) + bytes(params))
    length = len(body) + 2  # + CRC
    if 7 + length > MAX_PACKET_LENGTH:
        raise ValueError(f"a Dynamixel packet holds at most {MAX_PACKET_LENGTH} bytes")
    packet = HEADER + bytes([motor_id]) + length.to_bytes(2, "little") + body
    return packet + crc16(packet).to_bytes(2, "little")


def describe_error(error: int) -> str:
    """The status error byte in words: bit 7 hardware alert, low 7 bits an error number."""
    parts = []
    code = error & 0x7F
    if code:
        parts.append(ERROR_NAMES.get(code, f"unknown error {code}"))
    if error & HARDWARE_ALERT:
        parts.append("hardware alert (see Hardware_Error_Status, address 70; reboot or "
                     "power-cycle the servo to clear it)")
    return f"{'; '.join(parts)} (error byte 0x{error:02X})"
