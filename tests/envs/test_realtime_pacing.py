"""Real-time pacing of HILSerlRobotEnv (`realtime`): a step lasts at least 1 / fps, a step that
could not is counted and reported (at most every 10 s); a simulator is never paced.

The env's clock is a fake (hiljax.envs.env's `time` replaced): sleeping advances it, and the
robot's commands cost whatever a test says, so nothing depends on this machine's speed."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

import hiljax.envs.env as env_module
from hiljax.envs.env import OVERRUN_LOG_INTERVAL_S, HILSerlRobotEnv
from hiljax.envs.factory import make_robot_env
from tests.envs.helpers import FakeRobot, fake_config

PERIOD_S = 0.1  # fps 10


class FakeClock:
    """perf_counter / monotonic / sleep of one fake time line."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TimedRobot(FakeRobot):
    """A FakeRobot whose command takes `command_s` of the fake clock (a bus write)."""

    def __init__(self, clock: FakeClock, command_s: float):
        super().__init__(cameras=())
        self.clock, self.command_s = clock, command_s

    def send_joint_targets(self, targets):
        self.clock.now += self.command_s
        return super().send_joint_targets(targets)


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(env_module, "time", clock)
    return clock


def run_steps(env, clock, steps: int) -> list[float]:
    """Fake time at the end of reset and of each step."""
    env.reset()
    times = [clock.now]
    hold = env.robot.read_joint_positions()
    for _ in range(steps):
        env.step(hold)
        times.append(clock.now)
    return times


def test_a_fast_robot_is_held_to_the_period(clock, caplog):
    env = HILSerlRobotEnv(TimedRobot(clock, command_s=0.03), fps=10, realtime=True)
    with caplog.at_level(logging.WARNING, logger="hiljax.envs.env"):
        times = run_steps(env, clock, 5)
    # Each step slept what its command left of the period: every step lasts one period.
    np.testing.assert_allclose(clock.sleeps, [PERIOD_S - 0.03] * 5)
    np.testing.assert_allclose(np.diff(times), [PERIOD_S] * 5)
    assert env.overruns == 0 and not caplog.records


def test_a_slow_robot_counts_overruns_and_warns_at_most_every_interval(clock, caplog):
    env = HILSerlRobotEnv(TimedRobot(clock, command_s=0.25), fps=10, realtime=True)
    with caplog.at_level(logging.WARNING, logger="hiljax.envs.env"):
        times = run_steps(env, clock, 3)
        assert clock.sleeps == []  # late already: no waiting on top
        np.testing.assert_allclose(np.diff(times), [0.25] * 3)
        assert env.overruns == 3
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1, warnings  # one line, not one per late step
        assert "cannot keep up" in warnings[0] and "250 ms" in warnings[0]
        assert "100 ms" in warnings[0] and "1 late steps" in warnings[0]
        clock.now += OVERRUN_LOG_INTERVAL_S  # later on, still late: reported again
        env.step(env.robot.read_joint_positions())
    assert env.overruns == 4
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "4 late steps" in warnings[1]


@pytest.mark.parametrize("command_s", [0.03, 0.25])
def test_a_robot_without_realtime_is_never_paced(clock, caplog, command_s):
    env = HILSerlRobotEnv(TimedRobot(clock, command_s=command_s), fps=10, realtime=False)
    with caplog.at_level(logging.WARNING, logger="hiljax.envs.env"):
        times = run_steps(env, clock, 5)
    assert clock.sleeps == [] and env.overruns == 0 and not caplog.records
    np.testing.assert_allclose(np.diff(times), [command_s] * 5)  # only the robot's own time


def test_a_simulated_robot_type_does_not_pace_unless_asked(clock):
    cfg = fake_config(fixed_reset_joint_positions=None, use_gripper=False)
    env = make_robot_env(cfg)  # robot.type "fake": not a real arm, realtime unset
    try:
        assert env.unwrapped.realtime is False
        env.reset()
        for _ in range(5):
            env.step(np.zeros(3, np.float32))
        assert clock.sleeps == [] and env.unwrapped.overruns == 0
    finally:
        env.close()
    forced = dataclasses.replace(cfg, robot=dataclasses.replace(cfg.robot, realtime=True))
    env = make_robot_env(forced)
    try:
        assert env.unwrapped.realtime is True
    finally:
        env.close()
