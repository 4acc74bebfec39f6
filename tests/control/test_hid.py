"""Raw HID reports: the pure parser on recorded reports, then GamepadControllerHID with a fake
hidapi module (hidapi itself is optional and not needed by any test)."""

import sys

import pytest

from hiljax.control import DeviceNotFoundError, GamepadControllerHID
from hiljax.control.hid_reports import (
    HID_LAYOUTS,
    KNOWN_HID_PADS,
    find_hid_pad,
    layout_for_device,
    parse_hid_report,
)
from hiljax.control.mapping import MappingConfig, PadState, pad_commands
from tests.control.fakes import (
    FakeHidModule,
    assert_commands,
    assert_controller,
    load_fixture,
    report_bytes,
)

FIXTURE = load_fixture("hid_reports.json")
REPORTS = FIXTURE["reports"]
SEQUENCE = FIXTURE["command_sequence"]

KEYBOARD = {"path": b"kbd", "vendor_id": 0x05AC, "product_id": 0x0250, "product_string": "Keyboard"}
DS4 = {
    "path": b"ds4",
    "vendor_id": 0x054C,
    "product_id": 0x09CC,
    "product_string": "Wireless Controller",
}
F710 = {
    "path": b"f710",
    "vendor_id": 0x046D,
    "product_id": 0xC219,
    "product_string": "Cordless RumblePad 2",
}


@pytest.mark.parametrize("case", REPORTS, ids=[f"{c['layout']}:{c['hex'][:14]}" for c in REPORTS])
def test_recorded_reports_parse_to_the_expected_state(case):
    state = parse_hid_report(report_bytes(case["hex"]), HID_LAYOUTS[case["layout"]])
    expect = case["expect"]
    if expect is None:
        assert state is None
        return
    for axis in ("left_x", "left_y", "right_x", "right_y"):
        assert getattr(state, axis) == pytest.approx(expect[axis], abs=1e-12), axis
    assert state.pressed == frozenset(expect["pressed"])


def test_bytes_and_int_lists_parse_alike():
    case = REPORTS[1]
    layout = HID_LAYOUTS[case["layout"]]
    assert parse_hid_report(bytes.fromhex(case["hex"]), layout) == parse_hid_report(
        report_bytes(case["hex"]), layout
    )


def test_recorded_report_sequence_maps_to_the_expected_commands():
    layout = HID_LAYOUTS[SEQUENCE["layout"]]
    config = MappingConfig(**SEQUENCE["config"])
    previous = PadState()
    for step in SEQUENCE["steps"]:
        state = parse_hid_report(report_bytes(step["hex"]), layout)
        assert_commands(
            pad_commands(state, state.pressed - previous.pressed, config), step["expect"]
        )
        previous = state


def test_every_known_pad_has_a_layout_and_names_are_a_fallback():
    assert all(HID_LAYOUTS[layout.name] is layout for layout in KNOWN_HID_PADS.values())
    assert layout_for_device(F710).name == "logitech_f710_dinput"
    assert (
        layout_for_device(
            {"vendor_id": 1, "product_id": 2, "product_string": "Xbox Wireless Controller"}
        ).name
        == "xbox_bt"
    )
    assert layout_for_device(KEYBOARD) is None
    assert find_hid_pad([KEYBOARD, DS4])[0] is DS4


def _started(devices=(KEYBOARD, F710), **kwargs):
    hid = FakeHidModule(list(devices))
    controller = GamepadControllerHID(**SEQUENCE["config"], hid_module=hid, **kwargs)
    controller.start()
    return hid, controller


def test_controller_finds_the_pad_and_reports_the_recorded_sequence():
    hid, controller = _started()
    assert hid.opened_path == b"f710" and hid.last_device.nonblocking
    assert controller.layout.name == "logitech_f710_dinput"
    for step in SEQUENCE["steps"]:
        hid.last_device.queue.append(report_bytes(step["hex"]))
        controller.update()
        assert_controller(controller, step["expect"])
    controller.stop()
    assert hid.last_device.closed


def test_all_queued_reports_are_read_and_a_tap_inside_one_step_counts():
    hid, controller = _started()
    neutral, y_and_rb = (report_bytes(s["hex"]) for s in SEQUENCE["steps"][:2])
    hid.last_device.queue += [neutral, y_and_rb, neutral]
    controller.update()
    assert hid.last_device.queue == []
    assert controller.get_episode_end_status() == "success"
    assert not controller.should_intervene()  # the newest report wins for held buttons


def test_without_new_reports_the_last_state_holds():
    hid, controller = _started()
    hid.last_device.queue.append(report_bytes(SEQUENCE["steps"][1]["hex"]))
    controller.update()
    controller.update()
    assert controller.should_intervene() and controller.get_deltas()[0] == pytest.approx(0.02)


def test_read_errors_release_every_control():
    hid, controller = _started()
    hid.last_device.queue.append(report_bytes(SEQUENCE["steps"][1]["hex"]))
    controller.update()
    hid.read_error = True
    controller.update()
    assert controller.get_deltas() == (0.0, 0.0, 0.0) and not controller.should_intervene()


def test_vendor_and_product_ids_select_a_device_and_a_given_layout_reads_unknown_pads():
    unknown = {"path": b"x", "vendor_id": 0x1234, "product_id": 0x5678, "product_string": "Pad"}
    hid, controller = _started(
        [F710, unknown], vendor_id=0x1234, product_id=0x5678, layout="dualshock4"
    )
    assert hid.opened_path == b"x" and controller.layout.name == "dualshock4"


def test_missing_hidapi_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", None)  # `import hid` now raises ImportError
    with pytest.raises(DeviceNotFoundError, match=r"pip install 'hiljax\[hid\]'"):
        GamepadControllerHID().start()


def test_missing_pad_lists_what_was_found():
    with pytest.raises(DeviceNotFoundError, match="Keyboard \\(05ac:0250\\)"):
        _started([KEYBOARD])


def test_a_pad_that_cannot_be_opened_hints_at_permissions():
    hid = FakeHidModule([DS4])
    hid.open_error = True
    with pytest.raises(DeviceNotFoundError, match="udev"):
        GamepadControllerHID(hid_module=hid).start()
