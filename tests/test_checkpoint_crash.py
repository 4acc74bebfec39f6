"""A checkpoint is complete or absent, whenever the saving process is SIGKILLed (LeRobot #4562).

A child process (numpy only: no JAX start-up per kill) saves learner checkpoints in a loop with
the learner's own directory code, re-saving each step once (the final-save-after-a-periodic-save
case), and is killed at random moments. After every kill, what `--resume` does
(`load_checkpoint` on the checkpoints directory) must load a complete checkpoint whose files all
come from the same save, never raise.

    python -m tests.test_checkpoint_crash DIR TEMPLATE [--saves N]     (the child)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hiljax.run.checkpoint_dir import commit_checkpoint, complete_checkpoints
from hiljax.storage.array_file import read_array_file, write_array_file
from hiljax.storage.buffer import ReplayBuffer
from hiljax.storage.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
AGENT_FORMAT, AGENT_VERSION = "hiljax.sac_agent", 1  # hiljax.run.checkpoint's (JAX-free here)
BASE_ROWS, STATE_DIM = 4000, 5  # the big buffer: its write is where most kills land
TAIL_DIM = 512


# ---------------------------------------------------------------------------------------------
# The child: what a learner writes, with contents that say which save they came from.


def _buffer(rows: int, dim: int, reward: float) -> ReplayBuffer:
    buffer = ReplayBuffer(rows, {"observation.state": ((dim,), np.float32)}, 2)
    obs = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    buffer.add_batch({"observation.state": obs}, np.zeros((rows, 2), np.float32),
                     np.full(rows, reward, np.float32), {"observation.state": obs + 1},
                     np.zeros(rows, bool), np.ones(rows, bool))
    return buffer


def _tail_rows(step: int) -> int:
    return 1 + step % 7


def save_step(root: Path, step: int, template: tuple[dict, dict], base: ReplayBuffer) -> Path:
    """One checkpoint of step `step`: the agent (template with its step), a big constant buffer,
    a small buffer of `step`-valued rewards and learner.json naming the step."""
    meta, arrays = template
    arrays = {**arrays, "step": np.asarray(step, arrays["step"].dtype)}
    tail = _buffer(_tail_rows(step), TAIL_DIM, float(step))

    def write_files(staging: Path) -> None:
        write_array_file(staging / "agent.arrays", AGENT_FORMAT, AGENT_VERSION,
                         {**meta, "step": step}, arrays)
        base.save(staging / "buffer_online.arrays")
        tail.save(staging / "buffer_offline.arrays")
        write_json_atomic(staging / "learner.json", {"step": step})

    return commit_checkpoint(root, step, write_files, keep=2)


def child_main(argv: list[str]) -> None:
    root, template_path = Path(argv[0]), Path(argv[1])
    saves = int(argv[argv.index("--saves") + 1]) if "--saves" in argv else None
    template = read_array_file(template_path, AGENT_FORMAT, AGENT_VERSION)
    base = _buffer(BASE_ROWS, STATE_DIM, -1.0)
    done = complete_checkpoints(root)
    step = done[-1][0] if done else 0
    print("ready", flush=True)
    count = 0
    while saves is None or count < saves:
        step += count % 2  # each step twice: the second save replaces a complete checkpoint
        save_step(root, step, template, base)
        count += 1


# ---------------------------------------------------------------------------------------------
# The test.


def _write_template(path: Path) -> None:
    """Agent arrays of the right names, shapes and dtypes for a tiny config, with random values:
    traced (eval_shape), never compiled, so the test pays JAX's import and little more."""
    import jax

    from hiljax.agents.sac import SACAgent
    from hiljax.config import to_dict
    from tests.sac_helpers import tiny_config

    config = tiny_config()
    abstract = SACAgent.abstract(config)
    abstract = abstract.replace(key=jax.eval_shape(jax.random.key_data, abstract.key))
    rng = np.random.default_rng(0)
    arrays = {jax.tree_util.keystr(path, simple=True, separator="/"):
              rng.normal(size=leaf.shape).astype(leaf.dtype)
              for path, leaf in jax.tree_util.tree_flatten_with_path(abstract)[0]}
    write_array_file(path, AGENT_FORMAT, AGENT_VERSION, {"config": to_dict(config)}, arrays)


def _check_intact(checkpoint, template_arrays: dict) -> int:
    """The step of a loaded checkpoint whose every file comes from that step's save."""
    from hiljax.run.checkpoint import agent_to_arrays

    step = int(checkpoint.agent.step)
    # A kill between the two renames of a step saved again leaves only its complete `.old`
    # copy, which loads as it is (the next save puts it back under its name).
    assert checkpoint.path.name in (f"step_{step:09d}", f".step_{step:09d}.old")
    assert checkpoint.extra == {"step": step}
    for name, value in agent_to_arrays(checkpoint.agent).items():
        if name != "step":
            assert np.array_equal(value, template_arrays[name]), name
    online, offline = checkpoint.buffers["online"], checkpoint.buffers["offline"]
    assert len(online) == BASE_ROWS and len(offline) == _tail_rows(step)
    rewards = offline.sample(64, np.random.default_rng(0))["rewards"]
    assert np.all(rewards == step), (step, rewards)
    assert np.all(online.sample(64, np.random.default_rng(0))["rewards"] == -1.0)
    return step


def _start_child(root: Path, template: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    child = subprocess.Popen([sys.executable, "-m", "tests.test_checkpoint_crash", str(root),
                              str(template), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    return child


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(tmp_path):
    from hiljax.run.checkpoint import load_checkpoint

    root, template = tmp_path / "checkpoints", tmp_path / "agent_template.arrays"
    _write_template(template)
    template_arrays = read_array_file(template, AGENT_FORMAT, AGENT_VERSION)[1]
    save_step(root, 0, read_array_file(template, AGENT_FORMAT, AGENT_VERSION),
              _buffer(BASE_ROWS, STATE_DIM, -1.0))
    rng = np.random.default_rng(int(os.environ.get("CRASH_SEED", "0")))
    steps, leftovers_seen = [], 0
    for _ in range(20):
        child = _start_child(root, template)
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        leftovers_seen += any(p.name.startswith(".") for p in root.iterdir())
        steps.append(_check_intact(load_checkpoint(root), template_arrays))
        assert steps[-1] >= max(steps[:-1], default=0)  # never back to an older save
    assert steps[-1] > 0, steps  # the children did save between kills
    assert leftovers_seen > 0  # some kills did land mid-save

    child = _start_child(root, template, "--saves", "1")  # the next save cleans up
    assert child.wait(timeout=30) == 0, child.stderr.read()
    names = sorted(p.name for p in root.iterdir())
    assert not [n for n in names if n.startswith(".")], names
    assert json.loads((root / "LATEST").read_text())["checkpoint"] == names[-1]


def test_latest_falls_back_to_the_newest_complete_checkpoint(tmp_path, caplog):
    """LATEST missing, behind, or naming a deleted or incomplete directory: the directories win."""
    from hiljax.run.checkpoint import latest_checkpoint

    template = tmp_path / "agent_template.arrays"
    write_array_file(template, AGENT_FORMAT, AGENT_VERSION, {}, {"step": np.asarray(0)})
    loaded = read_array_file(template, AGENT_FORMAT, AGENT_VERSION)
    base = _buffer(10, STATE_DIM, -1.0)
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_step(root, step, loaded, base)
    assert latest_checkpoint(root).name == "step_000000003"
    write_json_atomic(root / "LATEST", {"checkpoint": "step_000000002"})  # behind
    assert latest_checkpoint(root).name == "step_000000003"
    assert "taking the newest complete checkpoint" in caplog.text
    (root / "LATEST").unlink()
    assert latest_checkpoint(root).name == "step_000000003"
    (root / "step_000000003" / "COMPLETE").unlink()  # hand damage: not a checkpoint any more
    write_json_atomic(root / "LATEST", {"checkpoint": "step_000000003"})
    assert latest_checkpoint(root).name == "step_000000002"
    (root / "LATEST").write_text("{not json")
    assert latest_checkpoint(root).name == "step_000000002"


def test_a_swap_cut_off_between_its_renames_is_put_back(tmp_path):
    """Killed after the old copy of a re-saved step moved aside and before the new one took
    its name: the old copy is what loads, and the next save puts it back."""
    from hiljax.run.checkpoint_dir import latest_checkpoint

    template = tmp_path / "agent_template.arrays"
    write_array_file(template, AGENT_FORMAT, AGENT_VERSION, {}, {"step": np.asarray(0)})
    loaded = read_array_file(template, AGENT_FORMAT, AGENT_VERSION)
    base = _buffer(10, STATE_DIM, -1.0)
    root = tmp_path / "checkpoints"
    save_step(root, 1, loaded, base)
    save_step(root, 2, loaded, base)
    os.replace(root / "step_000000002", root / ".step_000000002.old")
    (root / ".step_000000002.partial").mkdir()  # the new copy, cut off
    assert latest_checkpoint(root).name == ".step_000000002.old"
    save_step(root, 3, loaded, base)
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "step_000000002",
                                                      "step_000000003"]


if __name__ == "__main__":
    child_main(sys.argv[1:])
