"""One process of the two-process MLflowTracker test under ``torchrun`` (gloo, CPU): every rank attaches a tracker
with its own model folder and an epoch summary, and trains a few epochs; each writes ``OUT/rank<r>.json`` with what
its tracker knows, its history and the epoch lines it logged.
Usage: ``torchrun --standalone --nproc_per_node=2 tests/tracking_ddp_child.py OUT``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import ignite.distributed as idist
from ignite.engine import Engine

from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.tracking import MLflowTracker


class Lines(logging.Handler):
    """The messages logged, kept in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def training(local_rank: int, out: str) -> None:
    rank = idist.get_rank()
    model_dir = Path(out) / f"model_rank{rank}"
    trainer = Engine(lambda engine, batch: {"loss": float(batch + rank)})
    tracker = MLflowTracker(model_dir, params={"rank": rank})
    tracker.attach(trainer)
    lines = Lines()
    epoch_log = logging.getLogger(f"epochs.rank{rank}")
    epoch_log.addHandler(lines)
    epoch_log.setLevel(logging.INFO)
    summary = EpochSummaryLogger(logger=epoch_log)
    summary.attach(trainer)
    trainer.run([1.0, 2.0], max_epochs=2)
    idist.barrier()
    report = {"rank": rank, "world_size": idist.get_world_size(), "run_id": tracker.run_id,
              "store": (model_dir / "mlflow.db").exists(), "state": tracker.state_dict(),
              "history_loss": [h["loss"] for h in summary.history], "lines": lines.lines}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    with idist.Parallel(backend="gloo") as parallel:
        parallel.run(training, sys.argv[1])
