"""Run metrics: one JSONL line per record, and TensorBoard scalars beside it.

TensorBoard event files are written with the `tensorboard` package's own writer (no TensorFlow);
view them with `tensorboard --logdir <output_dir>`. The JSONL file is for scripts and plots.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
RESERVED = ("time", "kind", "step")


class MetricsLogger:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True,
                 wandb_project: str | None = None, run_config: dict | None = None):
        self.run_dir = Path(run_dir)
        self._wandb = _start_wandb(wandb_project, self.run_dir, run_config) if wandb_project \
            else None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
        self._lock = threading.Lock()  # the learner logs from its loop and its ingest thread
        self._events = None
        if tensorboard:
            try:
                from tensorboard.summary.writer.event_file_writer import EventFileWriter
            except ImportError:  # optional: the JSONL file is enough to run
                log.warning("tensorboard is not installed: metrics go to metrics.jsonl only")
            else:
                self._events = EventFileWriter(str(self.run_dir / "tensorboard"))

    def log(self, kind: str, step: int, values: dict) -> None:
        """`kind` groups the scalars (train, actor, ...); non-numbers go to JSONL only."""
        # A value may not pass itself off as the record's own time, kind or step (actors send
        # their episode statistics by name): such a name is kept, renamed "value_<name>".
        values = {(f"value_{k}" if k in RESERVED else k): v for k, v in values.items()}
        with self._lock:
            now = time.time()
            line = json.dumps({"time": now, "kind": kind, "step": step, **values})
            self._jsonl.write(line + "\n")
            if self._events is not None:
                self._write_scalars(kind, step, values, now)
            if self._wandb is not None:
                numbers = {f"{kind}/{k}": v for k, v in values.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
                self._wandb.log(numbers, step=int(step))

    def _write_scalars(self, kind: str, step: int, values: dict, now: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        scalars = [Summary.Value(tag=f"{kind}/{name}", simple_value=float(value))
                   for name, value in values.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        if scalars:
            self._events.add_event(Event(wall_time=now, step=int(step),
                                         summary=Summary(value=scalars)))

    def close(self) -> None:
        self._jsonl.close()
        if self._wandb is not None:
            self._wandb.finish()
        if self._events is not None:
            self._events.close()


def _start_wandb(project: str, run_dir: Path, run_config: dict | None):
    """A wandb run, or a clear error: asking for wandb without it installed is a mistake."""
    try:
        import wandb
    except ImportError as exc:
        raise RuntimeError("wandb logging was asked for (wandb_project is set) but the wandb "
                           "package is not installed: pip install wandb, or unset "
                           "wandb_project") from exc
    return wandb.init(project=project, dir=str(run_dir), config=run_config or {},
                      name=run_dir.name, resume="allow")
