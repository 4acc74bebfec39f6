"""SimOperator: a scripted person for the simulator's pick-and-lift, behind `InputController`.

It stands in for the human of HIL-SERL so the human-in-the-loop part runs without one. It sees
what the simulator knows (cube position and yaw, tip position, gripper orientation and opening,
grasp contacts) and plays two roles:

- **Expert** (`expert_command`): from whatever state the arm is in, the next EE delta and
  gripper command towards a lifted cube - open an empty closed gripper, rise clear if low and
  off to the side, go above the cube, descend onto it (tracking it if it was pushed), close,
  lift. Memoryless: it re-plans from the measured state every step. When the env has a wrist
  roll action (`roll_step_size`), `expert_roll` turns the open gripper on the way so the fingers
  close on two faces of a cube with a yaw (the smallest turn: the yaw modulo 90 degrees), and
  the expert neither descends nor closes before they are lined up.
- **Watcher** (`InterventionMonitor`): tracks a scalar *task distance* (metres; lower is
  better: `GRASP_BONUS` + tip-to-grasp-point distance + a little for a closed gripper (and, with
  a roll action, for fingers off the cube's faces) before the grasp, the missing lift after
  it). It takes over when the policy is

    STUCK     the task distance has not improved by `progress_threshold` for `stuck_patience`
              steps, or
    DRIFTING  the task distance is `drift_tolerance` above its best since the last hand-back
              (moving away, dropping the cube), or the tip is farther than
              `max_tip_cube_distance` from the cube (out of the useful region),

  and hands back once it has regained `release_progress` of task distance (at least
  `min_intervention_steps`, at most `max_intervention_steps` steps), so the policy learns from
  corrections rather than from whole demonstrations. The `finish_after_takeovers`-th takeover
  of an episode keeps control and finishes the task.

Schedule (`SimOperatorConfig`): the first `demo_episodes` episodes are whole demonstrations
(every step an intervention, so they also reach the learner's offline buffer); afterwards each
episode is watched with `watch_probability(episode)`, drawn from a generator seeded by `seed`.
Episodes are counted by `reset()` calls, i.e. per env. Episode-end requests stay None unless
`report_success` (the sim's task reward ends a successful episode); it never reports failure.

Deltas are the env's normalised action (step sizes 1.0 here; the env's EE step sizes are
passed in so a full command moves one step size; the roll likewise, in degrees).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import numpy as np

from hiljax.control.base import SUCCESS, InputController
from hiljax.control.mapping import Commands
from hiljax.envs.configs import SimOperatorConfig
from hiljax.envs.robot import GRIPPER_OPEN
from hiljax.envs.sim.scripted_pick import APPROACH_HEIGHT, GRASP_OFFSET

logger = logging.getLogger(__name__)

STUCK, DRIFT, DEMO = "stuck", "drift", "demo"

# Task distance: any grasp beats any pose without one; a closed empty gripper counts a little.
GRASP_BONUS = 0.1
CLOSED_GRIPPER_COST = 0.02
# ... and, with a roll action, fingers 45 degrees off the cube's faces count like 3 cm of distance.
ROLL_MISALIGNMENT_COST = 0.03
QUARTER_TURN = np.pi / 2  # a cube looks the same turned by this
# Rolling about a tilted pointing axis turns the fingers less about the vertical; below this
# share of "straight down" the turn is planned as if it were (a gripper that far from down is
# on its way somewhere else).
MIN_POINTING_DOWN = 0.5
# Phases in which the open, empty gripper turns towards the cube's faces.
ROLL_PHASES = ("approach", "rise", "descend", "align")


@dataclasses.dataclass(frozen=True)
class ExpertGeometry:
    """The expert's distances (metres) and gripper readings (0 closed .. 100 open), per arm."""

    grasp_offset: float = GRASP_OFFSET  # tip this far above the cube centre to grasp
    approach_height: float = APPROACH_HEIGHT  # tip above the cube centre before descending
    lift_margin: float = 0.02  # lift beyond what success needs (the cube slips a little)
    descend_xy_tolerance: float = 0.01  # above the cube within this: descend (correcting x, y)
    grasp_xy_tolerance: float = 0.006  # at the grasp point within these: close
    grasp_z_tolerance: float = 0.006
    rise_clearance: float = 0.03  # tip lower than this above the cube centre, off to the side:
    rise_xy_distance: float = 0.02  # ... and farther than this from it: rise first
    open_enough: float = 80.0  # open enough to go down over the cube
    empty_closed: float = 8.0  # closed this far with nothing between the pads: a missed grasp
    # With a roll action: the fingers this square to the cube's faces to descend and close (the
    # closing pads square the cube up the rest of the way).
    roll_tolerance_deg: float = 5.0


SO100_GEOMETRY = ExpertGeometry()
# gym-hil's Panda + Robotiq 2F-85: the pinch point closes at the cube's centre; the opening is
# read from the driver joint (hiljax.envs.gym_hil.GymHilScene), which stops near 40 round the cube.
PANDA_GEOMETRY = ExpertGeometry(grasp_offset=0.0, grasp_xy_tolerance=0.008,
                                grasp_z_tolerance=0.008, empty_closed=15.0)


class OperatedSim(Protocol):
    """What the operator reads from the simulator (SimRobot has it all).

    Optional, for a cube with a yaw: `cube_yaw()` (radians, world) and `gripper_rotation()`
    ((3, 3) world rotation: column 0 the pointing axis, column 1 the fingers' closing axis). A
    scene without them (gym-hil's) reads as a cube with yaw 0 and no roll to plan.
    """

    lift_height: float

    def environment_state(self) -> np.ndarray: ...
    def gripper_tip_position(self) -> np.ndarray: ...
    def read_joint_positions(self) -> np.ndarray: ...
    def cube_grasped(self) -> bool: ...
    def cube_lift(self) -> float: ...
    def task_success(self) -> bool: ...


@dataclasses.dataclass(frozen=True)
class SimState:
    """One look at the scene: tip and cube centre (world xyz, m), gripper opening, grasp."""

    tip: np.ndarray
    cube: np.ndarray
    opening: float  # 0 closed .. 100 open
    grasped: bool
    cube_lift: float  # cube bottom above the table (m)
    success_lift: float  # cube_lift needed for success (m)
    cube_yaw: float = 0.0  # radians about the vertical (world)
    gripper_rotation: np.ndarray | None = None  # (3, 3) world; None: not reported

    @classmethod
    def read(cls, robot: OperatedSim) -> SimState:
        has_yaw = hasattr(robot, "cube_yaw") and hasattr(robot, "gripper_rotation")
        return cls(tip=np.asarray(robot.gripper_tip_position(), dtype=np.float64),
                   cube=np.asarray(robot.environment_state(), dtype=np.float64)[:3],
                   opening=float(robot.read_joint_positions()[-1]),
                   grasped=bool(robot.cube_grasped()), cube_lift=float(robot.cube_lift()),
                   success_lift=float(robot.lift_height),
                   cube_yaw=float(robot.cube_yaw()) if has_yaw else 0.0,
                   gripper_rotation=(np.asarray(robot.gripper_rotation(), dtype=np.float64)
                                     if has_yaw else None))

    def grasp_point(self, geometry: ExpertGeometry) -> np.ndarray:
        return self.cube + (0.0, 0.0, geometry.grasp_offset)

    @property
    def xy_error(self) -> float:
        return float(np.linalg.norm(self.tip[:2] - self.cube[:2]))


def finger_yaw_error(state: SimState) -> float:
    """The turn about the vertical (radians, in [-45, 45) degrees) that lines the fingers'
    closing axis up with a face normal of the cube: the smallest one, as the cube looks the
    same every quarter turn. 0 when the scene does not report the gripper's orientation."""
    if state.gripper_rotation is None:
        return 0.0
    closing = state.gripper_rotation[:, 1]
    error = state.cube_yaw - np.arctan2(closing[1], closing[0])
    return float((error + QUARTER_TURN / 2) % QUARTER_TURN - QUARTER_TURN / 2)


def expert_roll(state: SimState, phase: str) -> float:
    """The wrist roll (degrees) that squares the fingers to the cube, in the phases where the
    open, empty gripper may turn; 0 otherwise. Rolling by r about the pointing axis p turns the
    closing axis about the vertical by p_z * r (p_z = -1 for a gripper pointing straight down:
    a positive roll turns it clockwise seen from above)."""
    if phase not in ROLL_PHASES or state.gripper_rotation is None:
        return 0.0
    pointing_down = max(-float(state.gripper_rotation[2, 0]), MIN_POINTING_DOWN)
    return float(np.degrees(-finger_yaw_error(state) / pointing_down))


def task_distance(state: SimState, geometry: ExpertGeometry = SO100_GEOMETRY,
                  use_roll: bool = False) -> float:
    """How far from success (metres, see the module docstring); 0 once lifted high enough.
    With a roll action, fingers turned off the cube's faces count too."""
    if state.grasped:
        return max(0.0, state.success_lift - state.cube_lift)
    closed = 1.0 - np.clip(state.opening / GRIPPER_OPEN, 0.0, 1.0)
    misaligned = abs(finger_yaw_error(state)) / (QUARTER_TURN / 2) if use_roll else 0.0
    return (GRASP_BONUS + float(np.linalg.norm(state.tip - state.grasp_point(geometry)))
            + CLOSED_GRIPPER_COST * float(closed) + ROLL_MISALIGNMENT_COST * misaligned)


def expert_command(state: SimState, geometry: ExpertGeometry = SO100_GEOMETRY,
                   use_roll: bool = False) -> tuple[np.ndarray, str, str]:
    """(tip target xyz, gripper command, phase name) from the measured state alone.
    `use_roll`: the fingers can be turned (`expert_roll`), so wait for them to line up with
    the cube's faces before descending or closing ("align": hold the position)."""
    g = geometry
    grasp_point = state.grasp_point(g)
    if state.grasped:
        lift_z = state.tip[2] + (state.success_lift - state.cube_lift) + g.lift_margin
        return np.array([state.tip[0], state.tip[1], lift_z]), "close", "lift"
    aligned = (not use_roll
               or abs(np.degrees(finger_yaw_error(state))) <= g.roll_tolerance_deg)
    at_grasp = (state.xy_error < g.grasp_xy_tolerance
                and abs(state.tip[2] - grasp_point[2]) < g.grasp_z_tolerance)
    # Already closing round the cube: carry on even if the pads turned it a little.
    if at_grasp and state.opening > g.empty_closed and (aligned or state.opening < g.open_enough):
        return grasp_point, "close", "grasp"  # closing, or closed round the cube
    if state.opening < g.open_enough:
        return state.tip.copy(), "open", "open"  # empty and closed (or a missed grasp)
    approach = state.cube + (0.0, 0.0, g.approach_height)
    if state.xy_error <= g.descend_xy_tolerance:
        if not aligned:  # the open pads clear the cube's corners: turn where it is
            return state.tip.copy(), "stay", "align"
        return grasp_point, "stay", "descend"
    if state.tip[2] < state.cube[2] + g.rise_clearance and state.xy_error > g.rise_xy_distance:
        return np.array([state.tip[0], state.tip[1], approach[2]]), "stay", "rise"
    return approach, "stay", "approach"


def normalised_deltas(target: np.ndarray, tip: np.ndarray, step_sizes: np.ndarray) -> tuple:
    """The action in [-1, 1]^3 that moves the tip towards `target` (one step size at most)."""
    command = np.clip((target - tip) / step_sizes, -1.0, 1.0)
    return tuple(float(c) + 0.0 for c in command)


class InterventionMonitor:
    """Decides, step by step, when a watching operator takes over and hands back."""

    def __init__(self, cfg: SimOperatorConfig):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.intervening = False
        self.best = np.inf  # lowest task distance since the episode start / last hand-back
        self.steps_without_progress = 0
        self.takeover_distance = np.inf
        self.intervention_steps = 0
        self.takeovers = 0  # in this episode

    @property
    def finishing(self) -> bool:
        """Taken over often enough this episode to keep control to the end."""
        limit = self.cfg.finish_after_takeovers
        return limit is not None and self.takeovers >= limit

    def update(self, distance: float, tip_cube_distance: float) -> str | None:
        """Feed this step's task distance; returns STUCK / DRIFT when taking over now."""
        cfg = self.cfg
        if self.intervening:
            if self.finishing:
                return None
            self.intervention_steps += 1
            restored = distance <= self.takeover_distance - cfg.release_progress
            # intervention_steps: how many of the operator's actions have been executed.
            if ((restored and self.intervention_steps >= cfg.min_intervention_steps)
                    or self.intervention_steps >= cfg.max_intervention_steps):
                self.intervening = False
                self.best, self.steps_without_progress = distance, 0
            return None
        if distance < self.best - cfg.progress_threshold or not np.isfinite(self.best):
            self.best, self.steps_without_progress = distance, 0
        else:
            self.steps_without_progress += 1
        reason = None
        if (distance > self.best + cfg.drift_tolerance
                or tip_cube_distance > cfg.max_tip_cube_distance):
            reason = DRIFT
        elif self.steps_without_progress >= cfg.stuck_patience:
            reason = STUCK
        if reason is not None:
            self.intervening, self.intervention_steps = True, 0
            self.takeover_distance = distance
            self.takeovers += 1
        return reason


class SimOperator(InputController):
    """The scripted person (see the module docstring). `robot` is the SimRobot the env drives;
    `step_sizes` / `bounds` are the env's EE step sizes and workspace (metres)."""

    def __init__(self, robot: OperatedSim, cfg: SimOperatorConfig | None = None,
                 step_sizes=(0.02, 0.02, 0.02), bounds: dict | None = None,
                 geometry: ExpertGeometry = SO100_GEOMETRY, roll_step_size: float | None = None):
        super().__init__()
        missing = [name for name in ("environment_state", "gripper_tip_position",
                                     "read_joint_positions", "cube_grasped", "cube_lift",
                                     "task_success", "lift_height") if not hasattr(robot, name)]
        if missing:
            raise TypeError(f"the sim operator needs the simulator's privileged state; "
                            f"{type(robot).__name__} lacks {missing} (use a SimRobot)")
        if roll_step_size is not None and not (hasattr(robot, "cube_yaw")
                                               and hasattr(robot, "gripper_rotation")):
            raise TypeError(f"a roll action needs the cube's yaw and the gripper's orientation; "
                            f"{type(robot).__name__} lacks cube_yaw / gripper_rotation")
        self.robot = robot
        self.geometry = geometry
        self.roll_step_size = roll_step_size  # degrees per unit roll action; None: no roll
        self.cfg = cfg or SimOperatorConfig()
        self.step_sizes = np.asarray(step_sizes, dtype=np.float64)
        self.bounds = None if bounds is None else (np.asarray(bounds["min"], np.float64),
                                                   np.asarray(bounds["max"], np.float64))
        self.monitor = InterventionMonitor(self.cfg)
        self._rng = np.random.default_rng(self.cfg.seed)
        self.episode = -1  # index of the current episode (reset() starts the next)
        self.demonstrating = False
        self.watching = False
        self.step = 0
        self.phase = ""
        self.takeovers: list[tuple[int, str]] = []  # (step, reason) of this episode

    def reset(self) -> None:
        super().reset()
        self.episode += 1
        self.demonstrating = self.episode < self.cfg.demo_episodes
        draw = self._rng.random()  # drawn every episode, so the sequence depends on seed only
        self.watching = self.demonstrating or draw < self.cfg.watch_probability(self.episode)
        self.monitor.reset()
        self.step = 0
        self.takeovers = []
        self.intervention_flag = False
        logger.debug("operator episode %d: %s", self.episode,
                     DEMO if self.demonstrating else "watching" if self.watching else "away")

    def update(self) -> None:
        state = SimState.read(self.robot)
        intervene = self._decide(state)
        target, gripper, self.phase = expert_command(state, self.geometry, self.use_roll)
        if self.bounds is not None:
            target = np.clip(target, *self.bounds)
        episode_end = None
        if self.cfg.report_success and self.robot.task_success():
            episode_end = SUCCESS
        self._apply_commands(Commands(deltas=normalised_deltas(target, state.tip, self.step_sizes),
                                      roll=self._roll_command(state), intervene=intervene,
                                      gripper=gripper, episode_end=episode_end))
        self.step += 1

    @property
    def use_roll(self) -> bool:
        return self.roll_step_size is not None

    def _roll_command(self, state: SimState) -> float:
        """The normalised roll action (one roll step size at most); 0.0 without a roll action."""
        if not self.use_roll:
            return 0.0
        return float(np.clip(expert_roll(state, self.phase) / self.roll_step_size, -1.0, 1.0))

    def _decide(self, state: SimState) -> bool:
        if self.demonstrating:
            if self.step == 0:
                self.takeovers.append((0, DEMO))
            return True
        if not self.watching:
            return False
        reason = self.monitor.update(task_distance(state, self.geometry, self.use_roll),
                                     float(np.linalg.norm(state.tip - state.cube)))
        if reason is not None:
            logger.debug("operator takes over at step %d: %s", self.step, reason)
            self.takeovers.append((self.step, reason))
        return self.monitor.intervening
