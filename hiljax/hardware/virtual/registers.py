"""The STS3215 control table as the virtual servo holds it: addresses, sizes, factory values.

Addresses and sizes are LeRobot's STS/SMS table (hardware_facts 2.1). Multi-byte registers are
little-endian (protocol 0). Signed registers use sign-magnitude, not two's complement: the
magnitude with one sign bit (Homing_Offset bit 11, Present_Load bit 10, positions and
velocities bit 15). Addresses below 40 are EEPROM, 40..71 SRAM, 80..86 the "factory" area.
"""

from __future__ import annotations

# name -> (address, size in bytes)
REGISTERS: dict[str, tuple[int, int]] = {
    "Firmware_Major_Version": (0, 1), "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2), "ID": (5, 1), "Baud_Rate": (6, 1), "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1), "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2), "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1), "Min_Voltage_Limit": (15, 1), "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1), "Unloading_Condition": (19, 1), "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1), "D_Coefficient": (22, 1), "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2), "CW_Dead_Zone": (26, 1), "CCW_Dead_Zone": (27, 1),
    "Protection_Current": (28, 2), "Angular_Resolution": (30, 1), "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1), "Protective_Torque": (34, 1), "Protection_Time": (35, 1),
    "Overload_Torque": (36, 1), "Velocity_closed_loop_P_proportional_coefficient": (37, 1),
    "Over_Current_Protection_Time": (38, 1),
    "Velocity_closed_loop_I_integral_coefficient": (39, 1),
    "Torque_Enable": (40, 1), "Acceleration": (41, 1), "Goal_Position": (42, 2),
    "Goal_Time": (44, 2), "Goal_Velocity": (46, 2), "Torque_Limit": (48, 2), "Lock": (55, 1),
    "Present_Position": (56, 2), "Present_Velocity": (58, 2), "Present_Load": (60, 2),
    "Present_Voltage": (62, 1), "Present_Temperature": (63, 1), "Status": (65, 1),
    "Moving": (66, 1), "Present_Current": (69, 2), "Goal_Position_2": (71, 2),
    "Moving_Velocity_Threshold": (80, 1), "DTs": (81, 1), "Velocity_Unit_factor": (82, 1),
    "Hts": (83, 1), "Maximum_Velocity_Limit": (84, 1), "Maximum_Acceleration": (85, 1),
    "Acceleration_Multiplier ": (86, 1),  # LeRobot's key, trailing space included
}
# LeRobot's alias names for the same addresses.
REGISTERS["Goal_Speed"] = REGISTERS["Goal_Velocity"]
REGISTERS["Present_Speed"] = REGISTERS["Present_Velocity"]
REGISTERS["Moving_Velocity"] = REGISTERS["Moving_Velocity_Threshold"]

SIGN_BITS = {"Homing_Offset": 11, "Present_Load": 10, "Goal_Position": 15,
             "Goal_Velocity": 15, "Goal_Speed": 15, "Present_Position": 15,
             "Present_Velocity": 15, "Present_Speed": 15}

MEMORY_SIZE = 256
EEPROM_END = 40  # addresses below are EEPROM (persisted; guarded by Lock)
# Written by the servo itself; writes from the bus leave them unchanged.
READ_ONLY = frozenset({0, 1, 2, 3, 4, *range(56, 80)})

MODEL_STS3215 = 777
RESOLUTION = 4096  # ticks per turn; Present_Position wraps modulo this
MAX_TICK = RESOLUTION - 1

# Status / error bits (SDK names): the error byte of a status packet and the Status register.
ERROR_VOLTAGE = 0x01
ERROR_ANGLE = 0x02
ERROR_OVERHEAT = 0x04
ERROR_OVERCURRENT = 0x08
ERROR_OVERLOAD = 0x20

# Plausible factory values of an STS3215 (the facts confirm Return_Delay_Time 250, P 32 and the
# model; the rest are typical values, read by nothing that depends on them being exact).
FACTORY_VALUES: dict[str, int] = {
    "Baud_Rate": 0, "Return_Delay_Time": 250, "Response_Status_Level": 1,
    "Min_Position_Limit": 0, "Max_Position_Limit": MAX_TICK, "Max_Temperature_Limit": 70,
    "Max_Voltage_Limit": 140, "Min_Voltage_Limit": 40, "Max_Torque_Limit": 1000, "Phase": 12,
    "Unloading_Condition": 44, "LED_Alarm_Condition": 47, "P_Coefficient": 32,
    "D_Coefficient": 32, "I_Coefficient": 0, "Minimum_Startup_Force": 16, "CW_Dead_Zone": 1,
    "CCW_Dead_Zone": 1, "Protection_Current": 500, "Angular_Resolution": 1,
    "Homing_Offset": 0, "Operating_Mode": 0, "Protective_Torque": 20, "Protection_Time": 20,
    "Overload_Torque": 80, "Velocity_closed_loop_P_proportional_coefficient": 10,
    "Over_Current_Protection_Time": 200, "Velocity_closed_loop_I_integral_coefficient": 200,
    "Torque_Enable": 0, "Acceleration": 0, "Goal_Time": 0, "Goal_Velocity": 0,
    "Torque_Limit": 1000, "Lock": 1, "Present_Voltage": 120, "Present_Temperature": 30,
    "Moving_Velocity_Threshold": 2, "Maximum_Velocity_Limit": 80, "Maximum_Acceleration": 254,
}


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    magnitude = abs(int(value))
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"{value} does not fit a sign-magnitude field with sign bit {sign_bit}")
    return magnitude | (1 << sign_bit) if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def saturate(value: float, sign_bit: int) -> int:
    """The nearest integer a sign-magnitude field can hold (for values the servo measures)."""
    limit = (1 << sign_bit) - 1
    return int(max(-limit, min(limit, round(value))))


def register(name: str) -> tuple[int, int]:
    """(address, size) of a register by LeRobot's name; KeyError naming the known ones."""
    try:
        return REGISTERS[name]
    except KeyError:
        raise KeyError(f"no STS3215 register {name!r}; known: {sorted(REGISTERS)}") from None
