"""One process of the two-process test of the loss-weight schedule under ``torchrun`` (gloo, CPU).

Every process trains its own copy of a small network on its own data with an adaptive schedule and writes, as JSON
to ``OUT/rank<r>.json``, the schedule's history and the means of the terms it computed itself.
Usage: ``torchrun --standalone --nproc_per_node=2 tests/schedules_ddp_child.py OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from pipeline.losses import create_loss_function
from pipeline.schedules import LossScheduleHandler


def training(local_rank: int, out: str) -> None:
    rank = idist.get_rank()
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 1, 3, padding=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    loss = create_loss_function("default_segmentation")
    volumes = [torch.rand(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(10 * rank + i)) for i in range(2 + rank)]
    data = [{"image": v, "label": (v > 0.5 + 0.1 * rank).float()} for v in volumes]

    def step(engine: Engine, batch: dict) -> float:
        opt.zero_grad()
        value = loss(net(batch["image"]), batch["label"])
        value.backward()
        opt.step()
        return value.item()

    trainer = Engine(step)
    handler = LossScheduleHandler(loss, "adaptive", {"temperature": 0.5})
    handler.attach(trainer)
    own: dict[int, list[dict[str, float]]] = {}
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: own.setdefault(e.state.epoch, []).append(loss.last_components)
    )
    trainer.run(data, max_epochs=4)
    sums = {e: {t: sum(r[f"{t}_loss"] for r in rows) for t in ("dice", "bce")} for e, rows in own.items()}
    record = {"rank": rank, "world_size": idist.get_world_size(), "history": handler.history,
              "sums": sums, "counts": {e: len(rows) for e, rows in own.items()}}
    Path(out, f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    with idist.Parallel(backend="gloo") as parallel:
        parallel.run(training, sys.argv[1])
