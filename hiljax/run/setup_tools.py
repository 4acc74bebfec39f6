"""What the setup tools (`python -m hiljax.calibrate`, `.find_port`, `.find_ee_bounds`,
`.crop_roi`) share: a terminal that works over SSH (prompts, ENTER without blocking, a live
table) and an in-place edit of an env config JSON that keeps every other field.

The terminal reads the streams it is given (not `input()`), so a test or a script drives a tool
through a pipe; `select` needs a stream with a file descriptor (a tty, a pipe, a file).
"""

from __future__ import annotations

import copy
import logging
import select
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

# Exit codes shared by the tools: argparse already uses 2 for a bad command line.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Console:
    """Prompts, user-facing lines and a redrawn table on `stdout`; ENTER read from `stdin`."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None):
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self._table_lines = 0

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def ask(self, prompt: str) -> str:
        """Show `prompt` and block until a line is typed; returns it without its surrounding
        blanks. EOFError if the input closes first: no answer is not an empty answer."""
        return self._read_line(prompt, "the input closed before an answer").strip()

    def wait_for_enter(self, prompt: str) -> None:
        """Show `prompt` and block until a line is typed; EOFError if the input closes, since
        the answer the tool waits for (a cable unplugged, ...) never came."""
        self._read_line(prompt, "the input closed before ENTER was pressed")

    def _read_line(self, prompt: str, closed: str) -> str:
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError(closed)
        self._table_lines = 0  # the typed line moved the cursor: a table starts afresh
        return line

    def enter_pressed(self, timeout_s: float) -> bool:
        """Whether a line was typed, waiting at most `timeout_s`; consumes it. EOFError when the
        input is closed (a caller that can stop by itself may then stop listening)."""
        ready, _, _ = select.select([self.stdin], [], [], timeout_s)
        if ready and not self.stdin.readline():
            raise EOFError("the input closed")
        return bool(ready)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Redraw the table in place on a terminal (cursor up over the previous one); appended
        otherwise (a pipe or a log file has no cursor)."""
        tty = self.stdout.isatty()
        if self._table_lines and tty:
            self.stdout.write(f"\x1b[{self._table_lines}A")
        lines = format_table(header, rows)
        end = "\x1b[K\n" if tty else "\n"  # erase what a wider previous table left
        self.stdout.write("".join(line + end for line in lines))
        self.stdout.flush()
        self._table_lines = len(lines)

    def end_table(self) -> None:
        """The next table starts below the last one instead of over it."""
        self._table_lines = 0


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned first column, right-aligned others; floats with 4 decimals."""
    cells = [[_cell(v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [" | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in cells]


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def update_env_config(path: str | Path, values: Mapping[str, Any],
                      output: str | Path | None = None):
    """Set dotted fields (`wrapper.crop_params_dict` ...) in the env config JSON at `path` and
    write it to `output` (default: `path`) atomically. Only those fields change: the file's
    other fields, their order and absent defaults stay as they were. The result is validated as
    `load_env_config` would before anything is written; returns the loaded config.
    Raises ConfigError (a ValueError) when the file or the new values are not a valid config.
    """
    from hiljax.config import from_dict, read_json_object
    from hiljax.envs.configs import HILSerlRobotEnvConfig
    from hiljax.storage.files import write_json_atomic

    data = copy.deepcopy(read_json_object(path))
    for dotted, value in values.items():
        _set_dotted(data, dotted, value)
    config = from_dict(HILSerlRobotEnvConfig, data)
    target = Path(output) if output is not None else Path(path)
    write_json_atomic(target, data)
    log.info("wrote %s to %s", ", ".join(values), target)
    return config


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    from hiljax.config import ConfigError

    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {key} is not an object in the config file")
    node[last] = value
