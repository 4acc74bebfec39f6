"""The one transition schema: what a transition holds besides its two observations. numpy only.

Every producer and consumer reads the table below instead of spelling the fields out: the
replay buffer (columns, `add` keywords, saved files), the wire (episode payloads, LeRobot's
transition dicts), the actor's episode recorder (the env's `info` keys), the learner's batch
check and LeRobot datasets (column names). Adding a complementary-info field is one line here,
plus the producer that sets it (an env wrapper's `info`) and the consumer that reads it (a loss).

A transition is (observation, action, reward, next observation, done, truncated, complementary
info). `done` is a terminal state (no bootstrap); `truncated` a time limit (bootstrapping goes on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepField:
    """One per-step field of a transition and its name in every place it travels."""

    name: str  # in batches, buffer columns and files, hiljax episode payloads ("rewards")
    singular: str  # the keyword of ReplayBuffer.add ("reward")
    dtype: type  # as stored: np.float32, or np.bool_ for 0/1 flags
    dataset_key: str  # the LeRobot dataset column ("next.reward")
    lerobot_key: str  # the key path in a LeRobot transition dict (dots go down a level)
    info_key: str | None = None  # complementary info: the env's `info` key that carries it
    default: float | None = None  # value when a producer does not say; None: always required
    per_action: bool = False  # (action_dim,) per step instead of a scalar

    @property
    def is_flag(self) -> bool:
        return self.dtype is np.bool_


STEP_FIELDS: tuple[StepField, ...] = (
    StepField("actions", "action", np.float32, "action", "action", per_action=True),
    StepField("rewards", "reward", np.float32, "next.reward", "reward"),
    StepField("dones", "done", np.bool_, "next.done", "done"),
    # hiljax's dataset column: LeRobot's next.done also marks time limits, which must bootstrap.
    StepField("truncateds", "truncated", np.bool_, "next.truncated", "truncated", default=0),
    StepField("is_intervention", "is_intervention", np.bool_, "complementary_info.is_intervention",
              "complementary_info.is_intervention", info_key="is_intervention", default=0),
    StepField("discrete_penalty", "discrete_penalty", np.float32,
              "complementary_info.discrete_penalty", "complementary_info.discrete_penalty",
              info_key="discrete_penalty", default=0.0),
)
STEP_FIELD_NAMES = tuple(f.name for f in STEP_FIELDS)
# Fields the env reports through `info` (the rest come from the step's own return values).
COMPLEMENTARY_INFO = tuple(f for f in STEP_FIELDS if f.info_key is not None)
# What the SAC losses read from a batch besides the observations.
LOSS_FIELDS = ("actions", "rewards", "dones", "discrete_penalty")

_BY_NAME = {f.name: f for f in STEP_FIELDS}
_BY_SINGULAR = {f.singular: f for f in STEP_FIELDS}


def step_field(name: str) -> StepField:
    """The field called `name` (plural, as in batches) or `singular` (as in ReplayBuffer.add)."""
    found = _BY_NAME.get(name) or _BY_SINGULAR.get(name)
    if found is None:
        raise KeyError(f"no transition field {name!r}; known: {list(STEP_FIELD_NAMES)}")
    return found


def step_shape(field: StepField, lead: tuple[int, ...], action_dim: int) -> tuple[int, ...]:
    return lead + ((action_dim,) if field.per_action else ())


def complementary_info(info: Mapping) -> dict[str, float]:
    """{field name: value} of the complementary info an env step reported (defaults filled in)."""
    return {f.name: info.get(f.info_key, f.default) for f in COMPLEMENTARY_INFO}


def with_defaults(steps: Mapping[str, np.ndarray], length: int, where: str) -> dict:
    """`steps` with every field present, in its stored dtype: a missing optional field is filled
    with its default, a missing required one is a ValueError naming `where`."""
    out = {}
    for field in STEP_FIELDS:
        value = steps.get(field.name)
        if value is None:
            if field.default is None:
                raise ValueError(f"{where} lacks {field.name!r}")
            value = np.full(length, field.default)
        out[field.name] = np.asarray(value).astype(field.dtype, copy=False)
    return out


@dataclass
class TransitionBatch:
    """T transitions: `ReplayBuffer.add_batch(**batch.as_kwargs())` takes them."""

    observations: dict[str, np.ndarray]  # (T, ...)
    next_observations: dict[str, np.ndarray]  # (T, ...)
    steps: dict[str, np.ndarray]  # {field name: (T, ...)} for every field of STEP_FIELDS

    @classmethod
    def from_kwargs(cls, kwargs: Mapping, where: str = "transitions") -> TransitionBatch:
        """From the keyword form ({observations, next_observations, actions, rewards, ...})."""
        steps = {name: kwargs[name] for name in STEP_FIELD_NAMES if name in kwargs}
        length = len(kwargs["rewards"]) if "rewards" in kwargs else 0
        return cls(dict(kwargs["observations"]), dict(kwargs["next_observations"]),
                   with_defaults(steps, length, where))

    def __len__(self) -> int:
        return len(self.steps["rewards"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.steps[name]

    def as_kwargs(self) -> dict:
        return dict(observations=self.observations, next_observations=self.next_observations,
                    **self.steps)

    def select(self, mask: np.ndarray) -> TransitionBatch:
        """The transitions where `mask` is true (e.g. interventions for the offline buffer)."""
        pick = lambda tree: {k: v[mask] for k, v in tree.items()}  # noqa: E731
        return TransitionBatch(pick(self.observations), pick(self.next_observations),
                               pick(self.steps))
