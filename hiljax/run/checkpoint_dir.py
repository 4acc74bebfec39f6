"""The checkpoint directory protocol: a checkpoint is complete or absent, also when the process
is killed (SIGKILL, power cut) at any moment. Standard library + hiljax.storage only, so a test
can kill a process that saves without paying JAX's start-up.

    checkpoints/
        step_000000120/            complete: every file fsynced, then COMPLETE, then renamed here
        LATEST                     {"checkpoint": "step_000000120"}: a hint, the directories rule
        .step_000000130.partial/   a save in progress, or one cut off (removed by the next save)
        .step_000000120.old/       the previous copy of a step saved again, until the new copy is
                                   in place (put back by the next save if the swap was cut off)
        .step_000000100.trash/     a checkpoint being deleted (removed by the next save)

Why it holds: a directory only gets a `step_*` name by one rename, after its files and the
COMPLETE marker are on the disk; a complete checkpoint loses its name only after its successor
has one; and a reader takes the newest complete `step_*` directory, whatever LATEST says (LATEST
can lag behind, or name a directory that retention deleted).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from hiljax.storage.files import fsync_dir, fsync_file, write_json_atomic

log = logging.getLogger(__name__)

COMPLETE_MARKER = "COMPLETE"
POINTER = "LATEST"
PARTIAL, OLD, TRASH = ".partial", ".old", ".trash"
_STEP_DIR = re.compile(r"step_(\d+)")
_OLD_DIR = re.compile(r"\.step_(\d+)\.old")


def step_dir_name(step: int) -> str:
    return f"step_{step:09d}"


def commit_checkpoint(root: str | os.PathLike, step: int, write_files: Callable[[Path], None],
                      keep: int | None = 3) -> Path:
    """`write_files(staging)` fills a staging directory, which becomes `root/step_<step>` once
    all of it is on the disk; LATEST then names it and only the newest `keep` stay."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    clean_leftovers(root)
    final = root / step_dir_name(step)
    staging = root / f".{final.name}{PARTIAL}"
    staging.mkdir()
    write_files(staging)
    (staging / COMPLETE_MARKER).write_text(f"{step}\n")
    _fsync_tree(staging)
    _install(staging, final)
    write_json_atomic(root / POINTER, {"checkpoint": final.name})
    if keep:
        _retain(root, keep, final)
    return final


def _fsync_tree(directory: Path) -> None:
    """Every file in `directory`, then the directory itself: whoever wrote them (a callback may
    not have fsynced), nothing of the checkpoint is only in the page cache when it is renamed."""
    for path in directory.iterdir():
        if path.is_file():
            fsync_file(path)
    fsync_dir(directory)


def _install(staging: Path, final: Path) -> None:
    """Rename `staging` to `final`. A step saved again (the final save after a periodic one)
    moves the old copy aside first and deletes it only once the new one holds the name: at
    every instant one complete copy exists (clean_leftovers puts `.old` back if cut off)."""
    if not final.exists():
        os.replace(staging, final)
        fsync_dir(final.parent)
        return
    old = final.with_name(f".{final.name}{OLD}")
    os.replace(final, old)
    os.replace(staging, final)
    fsync_dir(final.parent)
    shutil.rmtree(old)


def _retain(root: Path, keep: int, newest: Path) -> None:
    """Delete all but the newest `keep` complete checkpoints (never `newest`). A deletion first
    renames the directory out of the `step_*` names, so a kill mid-delete cannot leave a
    checkpoint that has COMPLETE but lost some of its files."""
    complete = [path for _, path in complete_checkpoints(root) if path.name.startswith("step_")]
    for path in complete[:-keep]:
        if path != newest:
            _delete(path)


def _delete(path: Path) -> None:
    trash = path.with_name(f".{path.name}{TRASH}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def clean_leftovers(root: str | os.PathLike) -> None:
    """What earlier saves left when they were cut off: partial and trash entries go, and a
    `.old` copy goes back to its name if its replacement never arrived."""
    root = Path(root)
    for path in sorted(root.glob(".*")):
        name = path.name
        if name.endswith((PARTIAL, TRASH)):
            log.info("removing %s (left by an interrupted save or delete)", path)
            _remove(path)
        elif _OLD_DIR.fullmatch(name):
            final = root / name[1:].removesuffix(OLD)
            if _is_complete(final) or not _is_complete(path):
                _remove(path)
            else:
                log.warning("restoring %s: its replacement was cut off", final)
                if final.exists():
                    _remove(final)
                os.replace(path, final)
                fsync_dir(root)
    for path in root.glob("step_*"):
        if path.is_dir() and not _is_complete(path):  # only hand damage makes these
            log.warning("removing %s: it has no %s marker", path, COMPLETE_MARKER)
            _delete(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _is_complete(path: Path) -> bool:
    """A directory whose COMPLETE marker was written (the marker goes in last)."""
    try:
        return path.is_dir() and (path / COMPLETE_MARKER).read_text().strip().isdigit()
    except OSError:
        return False


def complete_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, directory) of every complete checkpoint, oldest first. A `.old` copy counts when
    its step has no complete `step_*` directory (a swap cut off before the next save)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: dict[int, Path] = {}
    for pattern, regex in (("step_*", _STEP_DIR), (f".step_*{OLD}", _OLD_DIR)):
        for path in root.glob(pattern):
            match = regex.fullmatch(path.name)
            step = int(match.group(1)) if match else None
            if step is not None and step not in found and _is_complete(path):
                found[step] = path
    return sorted(found.items())


def is_checkpoints_root(path: str | os.PathLike) -> bool:
    """A directory of checkpoints (rather than one checkpoint)."""
    path = Path(path)
    return (path / POINTER).exists() or any(path.glob("step_*")) or any(path.glob(f".step_*{OLD}"))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in `root`, or None if it has none. When LATEST is
    missing, unreadable, behind, or names a directory that is gone or incomplete (a kill
    between the rename and the pointer's update, a hand edit), the directories win: logged."""
    root = Path(root)
    complete = complete_checkpoints(root)
    named = _read_pointer(root)
    if not complete:
        if named is not None or is_checkpoints_root(root):
            log.warning("no complete checkpoint in %s", root)
        return None
    newest = complete[-1][1]
    if named != newest.name:
        why = ("missing or unreadable" if named is None
               else f"names {named!r}, which is older, gone or incomplete")
        log.warning("%s/%s is %s: taking the newest complete checkpoint, %s", root, POINTER, why,
                    newest.name)
    return newest


def _read_pointer(root: Path) -> str | None:
    try:
        name = json.loads((root / POINTER).read_text())["checkpoint"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s/%s is unreadable: %r", root, POINTER, exc)
        return None
    return name if isinstance(name, str) else None
