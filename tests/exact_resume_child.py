"""One process of the exact-continuation test (test_exact_resume.py) and benchmark: a MONAI UNet with dropout trained
by MONAI's SupervisedTrainer on random crops + flips of shuffled data_samples volumes, with an LR scheduler, a
loss-weight schedule, validation, and a CheckpointHandler given no list of objects (it finds them).

Usage: python exact_resume_child.py OUT EPOCHS [--kill EPOCH:ITERATION] [--resume] [--async] [--every-iteration]

``--kill E:I`` SIGKILLs this process after iteration I of epoch E; ``--resume`` continues from the newest checkpoint
in OUT/checkpoints; ``--every-iteration`` trains on one volume per batch and saves after every iteration (so the
newest checkpoint is from the middle of an epoch); at the end OUT/result.json holds the SHA-256 of the network's weights and the per-epoch records.
Under ``torchrun`` (``--ddp``) each rank trains on its half of the data and writes OUT/result<rank>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Events
from monai.utils import set_determinism

from pipeline.checkpoint import CheckpointHandler
from pipeline.data import load_datalist, make_loader
from pipeline.engines import create_evaluator, create_trainer
from pipeline.losses import create_loss_function
from pipeline.networks import create_unet
from pipeline.schedules import LossScheduleHandler
from transforms import get_train_transforms, get_val_transforms

DATA = Path(__file__).resolve().parents[1] / "data_samples"
PATCH = (32, 32, 32)


def weights_hash(network: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(out: Path, epochs: int, kill: tuple[int, int] | None, resume: bool, async_save: bool, every_iteration: bool) -> None:
    torch.set_num_threads(1)
    rank, world = idist.get_rank(), idist.get_world_size()
    set_determinism(seed=0)
    items = load_datalist(DATA, "training")[:4]
    train_items = items[rank::world] if world > 1 else items
    sampler_loader = make_loader(
        train_items, get_train_transforms(PATCH, num_samples=2), batch_size=1 if every_iteration else 2, shuffle=True, seed=7
    )
    val_loader = make_loader(load_datalist(DATA, "validation")[:1], get_val_transforms())
    network = create_unet(channels=(4, 8, 16), strides=(2, 2), num_res_units=0, dropout=0.2)
    if world > 1:
        network = idist.auto_model(network)  # DistributedDataParallel: gradients averaged over the ranks
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-2)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    loss = create_loss_function("default_segmentation")
    evaluator = create_evaluator(network, val_loader, "cpu", roi_size=PATCH)
    trainer = create_trainer(
        network, sampler_loader, loss, optimizer, "cpu", max_epochs=epochs, evaluator=evaluator,
        lr_scheduler=lr_scheduler, progress_bar=False,
    )
    LossScheduleHandler(loss, "adaptive", {"temperature": 1.0}).attach(trainer, evaluator)
    strategy = {"strategy": "interval", "strategy_params": {"every": 1, "unit": "iteration"}} if every_iteration else {"strategy": "best"}
    checkpoints = CheckpointHandler(
        out / "checkpoints", **strategy, max_checkpoints=2, resume="auto" if resume else None, async_save=async_save
    )
    checkpoints.attach(trainer, evaluator)
    records: list[dict] = []
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED,
        lambda e: records.append(
            {"epoch": e.state.epoch, "loss": float(e.state.output[0]["loss"]), "weights": dict(e.state.loss_weights),
             "lr": optimizer.param_groups[0]["lr"], "val": evaluator.state.metrics.get("val_mean_dice")}
        ),
    )
    if kill is not None:
        epoch, iteration = kill

        def die(engine) -> None:
            if engine.state.epoch == epoch and (engine.state.iteration - 1) % engine.state.epoch_length + 1 == iteration:
                os.kill(os.getpid(), signal.SIGKILL)

        trainer.add_event_handler(Events.ITERATION_COMPLETED, die)
    trainer.run()
    result = {
        "hash": weights_hash(network),
        "records": records,
        "checkpoints": [e.file for e in checkpoints.checkpoints],
        "best": [float(evaluator.state.best_metric), int(evaluator.state.best_metric_epoch)],
        "world_size": world,
        "resumed_from": getattr(checkpoints.resumed_from, "file", None),
    }
    (out / f"result{rank if world > 1 else ''}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--kill", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--async", dest="async_save", action="store_true")
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--every-iteration", action="store_true", help="one volume per batch, a checkpoint per iteration")
    args = parser.parse_args()
    kill_at = tuple(int(v) for v in args.kill.split(":")) if args.kill else None
    if args.ddp:
        with idist.Parallel(backend="gloo") as parallel:
            parallel.run(lambda local_rank: main(args.out, args.epochs, kill_at, args.resume, args.async_save, args.every_iteration))
    else:
        main(args.out, args.epochs, kill_at, args.resume, args.async_save, args.every_iteration)
