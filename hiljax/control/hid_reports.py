"""Raw HID input reports of common gamepads -> `PadState`. Pure: bytes in, named state out.

hidapi hands back the report as the device sent it (with its report-ID byte when the device
numbers its reports). 8-bit sticks read (byte - 128) / 128 (the reference's formula); 16-bit
sticks (uint16 little-endian) read (value - 32768) / 32768. Up and left are negative.

Supported layouts (offsets are report byte indices; X/A/B/Y are the face buttons, PlayStation
square/cross/circle/triangle):

  logitech_f710_dinput  Logitech F710 in DirectInput (D) mode, USB id 046d:c219, which reports
                        itself as "Cordless RumblePad 2" - the reference's default device and
                        its offsets: sticks bytes 1-4; byte 5 X/A/B/Y = bits 4/5/6/7 (low nibble:
                        d-pad hat); byte 6 LB/RB/LT/RT = bits 0/1/2/3.
  logitech_f310_dinput  Logitech F310 in D mode, 046d:c216: the same fields one byte earlier
                        (sticks 0-3, buttons 4 and 5; no leading byte).
  dualshock4            Sony DualShock 4 (054c:05c4, 054c:09cc) USB report 0x01: the same
                        offsets as the reference's layout (sticks 1-4, byte 5 square/cross/
                        circle/triangle = bits 4-7, byte 6 L1/R1/L2/R2 = bits 0-3).
  xbox_bt               Xbox One S / Series pad over Bluetooth (045e:02fd, 045e:0b13), report
                        0x01: 16-bit sticks at 1, 3, 5, 7; 10-bit triggers at 9 and 11;
                        byte 14 A/B/X/Y/LB/RB = bits 0/1/3/4/6/7.

None of these was checked on hardware here: the reference's layout is the reference's, the
others come from public descriptor dumps. A pad in XInput mode (Logitech "X", wired Xbox) is not
a HID device; use the pygame `GamepadController` for it. Other pads: pass your own `HidLayout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hiljax.control.mapping import PadState


@dataclass(frozen=True)
class HidLayout:
    name: str
    sticks: tuple[int, int, int, int]  # byte offsets of left_x, left_y, right_x, right_y
    buttons: Mapping[str, tuple[int, int]]  # pad button name -> (byte offset, bit mask)
    stick_bytes: int = 1  # 1: uint8 centred on 128; 2: uint16 little-endian centred on 32768
    # Triggers with no button bit: name -> (byte offset, byte count, press threshold), LE uint.
    analog_triggers: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    report_id: int | None = None  # when set, reports whose first byte differs are skipped

    @property
    def min_length(self) -> int:
        ends = [offset + self.stick_bytes for offset in self.sticks]
        ends += [offset + 1 for offset, _ in self.buttons.values()]
        ends += [offset + count for offset, count, _ in self.analog_triggers.values()]
        return max(ends)


def _bitmask_buttons(face_byte: int, shoulder_byte: int) -> dict[str, tuple[int, int]]:
    # The DirectInput order shared by Logitech D-mode pads and the DualShock 4: the face buttons
    # sit above a 4-bit hat, the shoulder buttons fill the next byte from bit 0.
    return {
        "x": (face_byte, 0x10),
        "a": (face_byte, 0x20),
        "b": (face_byte, 0x40),
        "y": (face_byte, 0x80),
        "lb": (shoulder_byte, 0x01),
        "rb": (shoulder_byte, 0x02),
        "lt": (shoulder_byte, 0x04),
        "rt": (shoulder_byte, 0x08),
    }


LOGITECH_F710_DINPUT = HidLayout("logitech_f710_dinput", (1, 2, 3, 4), _bitmask_buttons(5, 6))
LOGITECH_F310_DINPUT = HidLayout("logitech_f310_dinput", (0, 1, 2, 3), _bitmask_buttons(4, 5))
DUALSHOCK4 = HidLayout("dualshock4", (1, 2, 3, 4), _bitmask_buttons(5, 6), report_id=0x01)
XBOX_BT = HidLayout(
    "xbox_bt",
    sticks=(1, 3, 5, 7),
    stick_bytes=2,
    buttons={
        "a": (14, 0x01),
        "b": (14, 0x02),
        "x": (14, 0x08),
        "y": (14, 0x10),
        "lb": (14, 0x40),
        "rb": (14, 0x80),
    },
    analog_triggers={"lt": (9, 2, 512), "rt": (11, 2, 512)},
    report_id=0x01,
)
HID_LAYOUTS = {
    layout.name: layout
    for layout in (LOGITECH_F710_DINPUT, LOGITECH_F310_DINPUT, DUALSHOCK4, XBOX_BT)
}

# (vendor id, product id) -> layout, for hid.enumerate() results.
KNOWN_HID_PADS = {
    (0x046D, 0xC219): LOGITECH_F710_DINPUT,
    (0x046D, 0xC216): LOGITECH_F310_DINPUT,
    (0x054C, 0x05C4): DUALSHOCK4,
    (0x054C, 0x09CC): DUALSHOCK4,
    (0x045E, 0x02FD): XBOX_BT,
    (0x045E, 0x0B13): XBOX_BT,
}
# Fallback on the product string, as the reference matches names ("Logitech", "Xbox", "PS4").
_NAME_HINTS = (
    ("xbox", XBOX_BT),
    ("wireless controller", DUALSHOCK4),  # Sony's product string for the DS4
    ("ps4", DUALSHOCK4),
    ("rumblepad", LOGITECH_F710_DINPUT),
    ("logitech", LOGITECH_F710_DINPUT),
    ("logicool", LOGITECH_F710_DINPUT),
)


def _unsigned(report: Sequence[int], offset: int, count: int) -> int:
    return int.from_bytes(bytes(report[offset : offset + count]), "little")


def _stick(report: Sequence[int], offset: int, stick_bytes: int) -> float:
    centre = 1 << (8 * stick_bytes - 1)  # 128 or 32768
    return (_unsigned(report, offset, stick_bytes) - centre) / centre


def parse_hid_report(report: Sequence[int] | bytes, layout: HidLayout) -> PadState | None:
    """The pad state in one report, or None for a report this layout cannot read (too short,
    or another report ID, e.g. a battery or sensor report)."""
    if len(report) < layout.min_length:
        return None
    if layout.report_id is not None and report[0] != layout.report_id:
        return None
    left_x, left_y, right_x, right_y = (
        _stick(report, o, layout.stick_bytes) for o in layout.sticks
    )
    pressed = {name for name, (offset, mask) in layout.buttons.items() if report[offset] & mask}
    pressed |= {
        name
        for name, (offset, count, threshold) in layout.analog_triggers.items()
        if _unsigned(report, offset, count) >= threshold
    }
    return PadState(left_x, left_y, right_x, right_y, frozenset(pressed))


def layout_for_device(device_info: Mapping) -> HidLayout | None:
    """The layout for one `hid.enumerate()` entry: by USB ids first, then by product string."""
    ids = (device_info.get("vendor_id"), device_info.get("product_id"))
    if ids in KNOWN_HID_PADS:
        return KNOWN_HID_PADS[ids]
    product = (device_info.get("product_string") or "").lower()
    for hint, layout in _NAME_HINTS:
        if hint in product:
            return layout
    return None


def find_hid_pad(devices: Sequence[Mapping]) -> tuple[Mapping, HidLayout] | None:
    """The first enumerated device that is a supported pad, with its layout."""
    for device_info in devices:
        layout = layout_for_device(device_info)
        if layout is not None:
            return device_info, layout
    return None
