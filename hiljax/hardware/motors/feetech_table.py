"""Feetech STS/SMS servos (protocol 0): what the bytes mean, without any I/O.

The control table, model numbers, resolutions, Baud_Rate values, sign-magnitude registers and
the packet format. Register names, addresses and sizes are LeRobot's
(`lerobot/motors/feetech/tables.py`), so a name from a LeRobot config or script means the same
register here. Addresses 0-39 are EEPROM (kept over power cycles, persisted only while
Lock = 0), 40-71 SRAM, 80-86 a factory area.
"""

from __future__ import annotations

# register name -> (address, size in bytes)
STS_SMS_SERIES_CONTROL_TABLE: dict[str, tuple[int, int]] = {
    # EEPROM
    "Firmware_Major_Version": (0, 1),  # read-only
    "Firmware_Minor_Version": (1, 1),  # read-only
    "Model_Number": (3, 2),  # read-only
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),  # unit 2 us; factory 250 (500 us), LeRobot writes 0
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "Unloading_Condition": (19, 1),
    "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1),
    "CCW_Dead_Zone": (27, 1),
    "Protection_Current": (28, 2),
    "Angular_Resolution": (30, 1),
    "Homing_Offset": (31, 2),  # Present = Actual - Homing_Offset
    "Operating_Mode": (33, 1),  # 0 position, 1 constant speed, 2 PWM, 3 step
    "Protective_Torque": (34, 1),
    "Protection_Time": (35, 1),
    "Overload_Torque": (36, 1),
    "Velocity_closed_loop_P_proportional_coefficient": (37, 1),
    "Over_Current_Protection_Time": (38, 1),
    "Velocity_closed_loop_I_integral_coefficient": (39, 1),
    # SRAM
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Torque_Limit": (48, 2),
    "Lock": (55, 1),  # 0 = EEPROM writable
    "Present_Position": (56, 2),  # read-only; single turn, wraps modulo 4096
    "Present_Velocity": (58, 2),  # read-only
    "Present_Load": (60, 2),  # read-only
    "Present_Voltage": (62, 1),  # read-only
    "Present_Temperature": (63, 1),  # read-only
    "Status": (65, 1),  # read-only
    "Moving": (66, 1),  # read-only
    "Present_Current": (69, 2),  # read-only
    "Goal_Position_2": (71, 2),  # read-only
    # Factory
    "Moving_Velocity": (80, 1),
    "Moving_Velocity_Threshold": (80, 1),  # LeRobot's alias of Moving_Velocity
    "DTs": (81, 1),  # ms
    "Velocity_Unit_factor": (82, 1),
    "Hts": (83, 1),  # ns; firmware >= 2.54, others keep 0
    "Maximum_Velocity_Limit": (84, 1),
    "Maximum_Acceleration": (85, 1),  # LeRobot writes 254 on every configure
    "Acceleration_Multiplier ": (86, 1),  # sic: LeRobot's key has a trailing space
}

# Baud_Rate register value for each bus rate.
STS_SMS_SERIES_BAUDRATE_TABLE: dict[int, int] = {
    1_000_000: 0,
    500_000: 1,
    250_000: 2,
    128_000: 3,
    115_200: 4,
    57_600: 5,
    38_400: 6,
    19_200: 7,
}

# Signed registers: sign-magnitude with the sign at this bit (not two's complement).
STS_SMS_SERIES_ENCODINGS_TABLE: dict[str, int] = {
    "Homing_Offset": 11,
    "Present_Load": 10,
    "Goal_Position": 15,
    "Goal_Velocity": 15,
    "Goal_Speed": 15,  # alias kept from LeRobot's table
    "Present_Position": 15,
    "Present_Velocity": 15,
    "Present_Speed": 15,  # alias kept from LeRobot's table
}

MODEL_NUMBER_REGISTER = STS_SMS_SERIES_CONTROL_TABLE["Model_Number"]  # (3, 2)

PROTOCOL_0_MODELS = ("sts3215", "sts3250", "sm8512bl")

MODEL_NUMBER_TABLE: dict[str, int] = {"sts3215": 777, "sts3250": 2825, "sm8512bl": 11272}
MODEL_CONTROL_TABLE = {model: STS_SMS_SERIES_CONTROL_TABLE for model in PROTOCOL_0_MODELS}
MODEL_RESOLUTION_TABLE = {model: 4096 for model in PROTOCOL_0_MODELS}  # ticks per turn
MODEL_BAUDRATE_TABLE = {model: STS_SMS_SERIES_BAUDRATE_TABLE for model in PROTOCOL_0_MODELS}
MODEL_ENCODING_TABLE = {model: STS_SMS_SERIES_ENCODINGS_TABLE for model in PROTOCOL_0_MODELS}

# Rates LeRobot's port scan tries (the SDK refuses any other).
SCAN_BAUDRATES = (4_800, 9_600, 14_400, 19_200, 38_400, 57_600, 115_200, 128_000, 250_000,
                  500_000, 1_000_000)


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """A signed integer -> sign-magnitude with the sign at `sign_bit`; ValueError when the
    magnitude does not fit below the sign bit."""
    limit = (1 << sign_bit) - 1
    magnitude = abs(int(value))
    if magnitude > limit:
        raise ValueError(f"{value} does not fit a sign-magnitude field with the sign at bit "
                         f"{sign_bit} (magnitude at most {limit})")
    return magnitude | (1 << sign_bit) if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Sign-magnitude with the sign at `sign_bit` -> a signed integer (higher bits ignored)."""
    magnitude = int(raw) & ((1 << sign_bit) - 1)
    return -magnitude if (int(raw) >> sign_bit) & 1 else magnitude


# ---------------------------------------------------------------------------------------------
# Packets (protocol 0).

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_STATUS_ID = 0xFD  # the SDK refuses status packets with a higher id
MAX_SCAN_ID = 252  # the SDK's MAX_ID: replies a broadcast PING waits for
MAX_PACKET_LENGTH = 250
STATUS_OVERHEAD = 6  # FF FF id len error .. checksum
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
ERROR_BITS = {0x01: "input voltage", 0x02: "angle sensor", 0x04: "overheat",
              0x08: "over-current", 0x20: "overload"}


def checksum(body: bytes) -> int:
    """Of everything between the header and the checksum byte."""
    return ~sum(body) & 0xFF


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    body = bytes([motor_id, len(params) + 2, instruction]) + bytes(params)
    if len(HEADER) + len(body) + 1 > MAX_PACKET_LENGTH:
        raise ValueError(f"a Feetech packet holds at most {MAX_PACKET_LENGTH} bytes")
    return HEADER + body + bytes([checksum(body)])


def encode_value(value: int, size: int) -> bytes:
    """An unsigned register value, little-endian (4 bytes: low word first, low byte first)."""
    if size not in (1, 2, 4):
        raise ValueError(f"register size must be 1, 2 or 4 bytes, got {size}")
    if not 0 <= int(value) < 1 << (8 * size):
        raise ValueError(f"{value} does not fit an unsigned {size}-byte register")
    return int(value).to_bytes(size, "little")


def decode_value(data: bytes) -> int:
    return int.from_bytes(data, "little")


def describe_error(error: int) -> str:
    names = [name for bit, name in ERROR_BITS.items() if error & bit]
    unknown = error & ~sum(ERROR_BITS)
    if unknown:
        names.append(f"unknown bits 0x{unknown:02X}")
    return f"{', '.join(names)} error (error byte 0x{error:02X})"
