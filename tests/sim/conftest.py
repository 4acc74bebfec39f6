import os

# MuJoCo picks its OpenGL backend at import: headless EGL, before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from hiljax.envs.sim import SimRobot


@pytest.fixture(scope="module")
def state_robot():
    """One state-only robot per test module (building the model costs ~10 ms, but renderers
    and GL contexts are worth sharing); tests put it where they need it."""
    return SimRobot(render=False, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
