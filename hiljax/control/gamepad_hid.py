"""GamepadControllerHID: a pad read as raw HID reports through hidapi (the reference's macOS path,
where pygame misses some pads). The supported pads and their report layouts are listed in
`hid_reports.py`; parsing and mapping are pure functions there and in `mapping.py`.

hidapi is optional (`pip install 'hiljax[hid]'`); it is imported when the controller starts, and
a missing library or pad raises `DeviceNotFoundError` saying what to do.
"""

from __future__ import annotations

import logging

from hiljax.control.base import DeviceNotFoundError, InputController
from hiljax.control.gamepad import GAMEPAD_HELP
from hiljax.control.hid_reports import HID_LAYOUTS, HidLayout, find_hid_pad, parse_hid_report
from hiljax.control.mapping import MappingConfig, PadState, pad_commands

logger = logging.getLogger(__name__)

REPORT_SIZE = 64  # bytes asked per read; every supported pad's input report is shorter


def import_hidapi():
    try:
        import hid
    except ImportError as error:
        raise DeviceNotFoundError(
            "GamepadControllerHID needs the hidapi package: pip install 'hiljax[hid]' "
            "(or pip install hidapi)"
        ) from error
    return hid


def _describe(devices) -> str:
    names = [
        f"{d.get('product_string') or '?'} ({d.get('vendor_id', 0):04x}:{d.get('product_id', 0):04x})"
        for d in devices
    ]
    return ", ".join(names) or "no HID devices at all"


def select_pad(devices, vendor_id=None, product_id=None, layout: HidLayout | str | None = None):
    """(device_info, layout) among `hid.enumerate()` results, or raise DeviceNotFoundError."""
    if isinstance(layout, str):
        layout = HID_LAYOUTS[layout]
    filtered = vendor_id is not None or product_id is not None
    if filtered:
        devices = [
            d
            for d in devices
            if vendor_id in (None, d.get("vendor_id")) and product_id in (None, d.get("product_id"))
        ]
    found = find_hid_pad(devices)
    if found is None and filtered and layout is not None and devices:
        found = (devices[0], layout)  # a pad we do not know, read with the layout we were given
    if found is None:
        raise DeviceNotFoundError(
            f"no supported gamepad found among: {_describe(devices)}. Supported: "
            f"{', '.join(HID_LAYOUTS)}; for another pad pass vendor_id/product_id and a HidLayout."
        )
    device_info, detected = found
    return device_info, layout or detected


class GamepadControllerHID(InputController):
    """End-effector control from a pad's raw HID reports; finds the first supported pad unless
    `vendor_id` / `product_id` say which."""

    def __init__(
        self,
        x_step_size: float = 1.0,
        y_step_size: float = 1.0,
        z_step_size: float = 1.0,
        deadzone: float = 0.1,
        vendor_id: int | None = None,
        product_id: int | None = None,
        layout: HidLayout | str | None = None,
        hid_module=None,
        roll_step_size: float = 1.0,
    ):
        super().__init__(x_step_size, y_step_size, z_step_size, roll_step_size)
        self.deadzone = deadzone
        self.vendor_id = vendor_id
        self.product_id = product_id
        self._requested_layout = layout
        self._hid = hid_module  # injected by tests; else hidapi's `hid`, imported at start()
        self.device = None
        self.device_info = None
        self.layout: HidLayout | None = None
        self.pad_state = PadState()  # the last report parsed; some pads only report changes

    def find_device(self):
        hid = self._hid or import_hidapi()
        return select_pad(hid.enumerate(), self.vendor_id, self.product_id, self._requested_layout)

    def start(self) -> None:
        if self.device is not None:
            return
        hid = self._hid = self._hid or import_hidapi()
        self.device_info, self.layout = self.find_device()
        path = self.device_info["path"]
        try:
            device = hid.device()
            device.open_path(path)
            device.set_nonblocking(1)
        except OSError as error:
            raise DeviceNotFoundError(
                f"found {_describe([self.device_info])} but could not open it ({error}). On Linux "
                "give your user access to /dev/hidraw* (a udev rule); on macOS allow Input "
                "Monitoring for the terminal."
            ) from error
        self.device = device
        # Buttons already held at start are not presses: take whatever is queued as the baseline.
        for report in self._drain_reports():
            self.pad_state = parse_hid_report(report, self.layout) or self.pad_state
        logger.info(
            "HID gamepad %s, layout %s. Controls: %s",
            _describe([self.device_info]),
            self.layout.name,
            GAMEPAD_HELP,
        )

    def stop(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None

    def update(self) -> None:
        if self.device is None:
            raise RuntimeError("GamepadControllerHID.update() before start() (or use `with`)")
        newly_pressed: set[str] = set()
        for report in self._drain_reports():
            state = parse_hid_report(report, self.layout)
            if state is not None:
                newly_pressed |= state.pressed - self.pad_state.pressed
                self.pad_state = state
        config = MappingConfig(self.x_step_size, self.y_step_size, self.z_step_size, self.deadzone,
                               self.roll_step_size)
        self._apply_commands(pad_commands(self.pad_state, newly_pressed, config))

    def _drain_reports(self, max_reports: int = 256) -> list:
        """Every report queued since the last update (the reference reads ten times for the same
        reason: the newest state is behind the stale ones)."""
        reports = []
        try:
            for _ in range(max_reports):
                report = self.device.read(REPORT_SIZE)
                if not report:
                    break
                reports.append(report)
        except OSError as error:
            logger.error("error reading the HID gamepad (%s); releasing all controls", error)
            self.pad_state = PadState()
        return reports
