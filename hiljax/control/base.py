"""The controller interface every input device implements, with LeRobot's names.

A controller turns a person (or a script standing in for one) into end-effector commands:
deltas (dx, dy, dz), a wrist-roll delta (hiljax: for envs with a roll action), a gripper command, an intervention flag and episode-end requests. The
interface and the attribute names (`x_step_size`, `running`, `episode_end_status`,
`intervention_flag`, `open_gripper_command`, `close_gripper_command`) are those of LeRobot's
`InputController` (`end_effector_control_utils.py`, later `teleoperators/gamepad/gamepad_utils.py`)
so a LeRobot user recognises them. Subclasses map raw device state to a `Commands` value with a
pure function (see `mapping.py`) and hand it to `_apply_commands`.

Two deliberate differences from the reference:
- an episode-end request is latched until `get_episode_end_status()` reads it (the reference
  clears it when the button is released, so a quick tap between two reads was lost);
- the rerecord status is "rerecord" (the reference's string is "rerecord_episode").
"""

from __future__ import annotations

import logging

from hiljax.control.mapping import FAILURE, RERECORD, SUCCESS, Commands

logger = logging.getLogger(__name__)

# Episode-end statuses returned by `get_episode_end_status()`.
EPISODE_END_STATUSES = (SUCCESS, FAILURE, RERECORD)

# The gripper action convention of the env (reference_facts section 4): 0 close, 1 stay, 2 open.
GRIPPER_CLOSE = 0
GRIPPER_STAY = 1
GRIPPER_OPEN = 2
GRIPPER_COMMAND_VALUES = {"close": GRIPPER_CLOSE, "stay": GRIPPER_STAY, "open": GRIPPER_OPEN}


def gripper_value(command: str) -> int:
    """The numeric gripper action (0 close, 1 stay, 2 open) for a command string."""
    try:
        return GRIPPER_COMMAND_VALUES[command]
    except KeyError:
        raise ValueError(f"unknown gripper command {command!r}; expected close/stay/open") from None


class DeviceNotFoundError(RuntimeError):
    """The input device (or the library to reach it) is not there; the message says what to do."""


class InputController:
    """Base class: holds the latest commands; devices override `start`, `stop` and `update`.

    Deltas are already multiplied by the step sizes, as in the reference. With the default step
    sizes of 1.0 (LeRobot's later default) they are the normalised action in [-1, 1] that the env
    scales by its own step sizes.
    """

    def __init__(
        self, x_step_size: float = 1.0, y_step_size: float = 1.0, z_step_size: float = 1.0,
        roll_step_size: float = 1.0,
    ):
        self.x_step_size = x_step_size
        self.y_step_size = y_step_size
        self.z_step_size = z_step_size
        self.roll_step_size = roll_step_size
        self.running = True
        self.episode_end_status: str | None = None
        self.intervention_flag = False
        self.open_gripper_command = False
        self.close_gripper_command = False
        self._deltas = (0.0, 0.0, 0.0)
        self._roll = 0.0

    # --- lifecycle: devices override these -------------------------------------------------
    def start(self) -> None:
        """Acquire the device. Idempotent."""

    def stop(self) -> None:
        """Release the device. Idempotent."""

    def update(self) -> None:
        """Read the device once; call once per control step, before the getters."""

    def reset(self) -> None:
        """Forget per-episode state (held requests). Called at the start of every episode."""
        self.episode_end_status = None

    def observe(self, observation) -> None:
        """See what the person sees. A hiljax addition, used by the scripted stand-in only."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.stop()

    # --- the reference's getters -----------------------------------------------------------
    def get_deltas(self) -> tuple[float, float, float]:
        """The movement (dx, dy, dz) for this step, scaled by the step sizes."""
        return self._deltas

    def get_roll_delta(self) -> float:
        """The wrist-roll command for this step, scaled by `roll_step_size` (hiljax; 0.0 from a
        device or script without roll). Read only when the env has a roll action."""
        return self._roll

    def should_intervene(self) -> bool:
        return self.intervention_flag

    def should_quit(self) -> bool:
        return not self.running

    def gripper_command(self) -> str:
        """'close', 'stay' or 'open'; both or neither button held means 'stay', as the reference."""
        if self.open_gripper_command == self.close_gripper_command:
            return "stay"
        return "open" if self.open_gripper_command else "close"

    def gripper_action(self) -> int:
        """The gripper command as the env's action value: 0 close, 1 stay, 2 open."""
        return gripper_value(self.gripper_command())

    def get_episode_end_status(self) -> str | None:
        """None, 'success', 'failure' or 'rerecord'. Reading it resets it."""
        status, self.episode_end_status = self.episode_end_status, None
        return status

    # --- for subclasses --------------------------------------------------------------------
    def _apply_commands(self, commands: Commands) -> None:
        """Store one step's commands; an episode-end request stays until it is read."""
        self._deltas = commands.deltas
        self._roll = commands.roll
        self.intervention_flag = commands.intervene
        self.open_gripper_command = commands.gripper == "open"
        self.close_gripper_command = commands.gripper == "close"
        if commands.episode_end is not None:
            logger.info("episode end requested: %s", commands.episode_end)
            self.episode_end_status = commands.episode_end
        if commands.quit and self.running:
            logger.info("quit requested")
            self.running = False
