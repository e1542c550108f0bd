"""One process of the two-process MLflowTracker test under ``torchrun`` (gloo, CPU): every rank attaches a tracker
with its own model folder and trains a few epochs; each writes ``OUT/rank<r>.json`` with what its tracker knows.
Usage: ``torchrun --standalone --nproc_per_node=2 tests/tracking_ddp_child.py OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ignite.distributed as idist
from ignite.engine import Engine

from pipeline.tracking import MLflowTracker


def training(local_rank: int, out: str) -> None:
    rank = idist.get_rank()
    model_dir = Path(out) / f"model_rank{rank}"
    trainer = Engine(lambda engine, batch: {"loss": float(batch + rank)})
    tracker = MLflowTracker(model_dir, params={"rank": rank})
    tracker.attach(trainer)
    trainer.run([1.0, 2.0], max_epochs=2)
    idist.barrier()
    report = {"rank": rank, "world_size": idist.get_world_size(), "run_id": tracker.run_id,
              "store": (model_dir / "mlflow.db").exists(), "state": tracker.state_dict()}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    with idist.Parallel(backend="gloo") as parallel:
        parallel.run(training, sys.argv[1])
