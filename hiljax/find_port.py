"""Find the serial port of an arm's servo bus, the way `lerobot-find-port` does (works over SSH).

    python -m hiljax.find_port [--ports-glob GLOB ...]

Lists the serial ports, asks to unplug the arm's USB cable and press ENTER, lists them again and
prints the one that disappeared. Ports are pyserial's (`serial.tools.list_ports`) plus, on Linux,
/dev/ttyACM* and /dev/ttyUSB* (macOS: /dev/tty.*); `--ports-glob` replaces both (a test's
directory of symlinks, or /dev/serial/by-id/*). Exit 0 with one port; 1 when none or several
disappeared, no port is there at all, or the input closed; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from hiljax.run.setup_tools import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Console

log = logging.getLogger("hiljax.find_port")

DEFAULT_GLOBS = {"linux": ("/dev/ttyACM*", "/dev/ttyUSB*"), "darwin": ("/dev/tty.*",)}
BY_ID_GLOB = "/dev/serial/by-id/*"  # Linux: names that survive re-plugging, unlike ttyACM<N>


class PortError(RuntimeError):
    """No single port can be named; the message says what the person should check."""


def list_ports(globs: Sequence[str] | None = None) -> list[str]:
    """The serial ports now present, sorted. `globs`: only these patterns, not pyserial's."""
    if globs:
        found = {path for pattern in globs for path in glob.glob(pattern)}
        return sorted(found)
    found = {path for pattern in DEFAULT_GLOBS.get(sys.platform, ()) for path in glob.glob(pattern)}
    try:
        from serial.tools import list_ports as serial_ports

        found.update(port.device for port in serial_ports.comports())
    except ImportError:  # pyserial is a dependency; the globs still work without it
        log.warning("pyserial is missing: listing only %s", DEFAULT_GLOBS.get(sys.platform))
    return sorted(found)


def stable_names(ports: Sequence[str]) -> dict[str, str]:
    """port -> its /dev/serial/by-id alias (Linux): the name to put in a config, because
    /dev/ttyACM<N> numbers follow the plugging order."""
    aliases = {}
    for alias in glob.glob(BY_ID_GLOB):
        target = os.path.realpath(alias)
        for port in ports:
            if os.path.realpath(port) == target:
                aliases[port] = alias
    return aliases


def disappeared_port(before: Sequence[str], after: Sequence[str]) -> str:
    """The one port in `before` that is not in `after`; PortError for none or several."""
    gone = sorted(set(before) - set(after))
    if len(gone) == 1:
        return gone[0]
    if not gone:
        raise PortError("no port disappeared: was the arm's USB cable (not its power) "
                        f"unplugged? ports before and after: {list(before)}")
    raise PortError(f"several ports disappeared: {gone}; unplug only the one arm's cable and "
                    "run again")


def find_port(console: Console, globs: Sequence[str] | None = None) -> str:
    before = list_ports(globs)
    if not before:
        raise PortError("no serial port found: is the arm's USB cable plugged in and its power "
                        "on? (Linux: permission to open it comes with the dialout group)")
    console.say("Ports before unplugging: " + ", ".join(before))
    aliases = stable_names(before)
    console.wait_for_enter("Remove the USB cable from the arm's servo bus and press ENTER when "
                           "done. ")
    after = list_ports(globs)
    console.say("Ports after unplugging: " + (", ".join(after) or "(none)"))
    port = disappeared_port(before, after)
    console.say(f"The port of this servo bus is '{port}'")
    if port in aliases:
        console.say(f"Its stable name (the same after re-plugging): '{aliases[port]}'")
    console.say("Reconnect the USB cable.")
    return port


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hiljax.find_port",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports-glob", action="append", metavar="GLOB",
                        help="list only paths matching GLOB (repeatable) instead of the "
                             "system's serial ports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        find_port(Console(stdin, stdout), args.ports_glob)
    except (PortError, EOFError) as error:
        log.error("%s", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
