"""How long a checkpoint save blocks the training loop, and what the full checkpoint handler costs per epoch.

    .venv/bin/python bench/bench_checkpoint_save.py [--sizes 30 300] [--saves 4] [--epochs 10]

1. Blocking time per save, for a model + Adam state of about 30 MB and 300 MB, of: our ``CheckpointHandler`` (sync),
   our ``CheckpointHandler(async_save=True)``, Ignite's ``ModelCheckpoint`` and MONAI's ``CheckpointSaver``, each
   keeping one checkpoint and fsync'ing as it does by default (ours fsyncs file and folder; Ignite and MONAI do not).
   Between saves every engine runs the same CPU work on one thread (about 2 s), as an epoch would, so a background
   write competes with training for the machine as it would in real use. Blocking = wall time from the first to the
   end of the last EPOCH_COMPLETED handler (for async: the copy of the state, plus any wait for the previous write).
2. Epoch time of a small MONAI UNet training on data_samples/ (random crops, validation every epoch, an adaptive
   loss-weight schedule) with our full checkpoint stack (CheckpointHandler finding the whole training state, strategy
   ``best`` + ``last``, a save every epoch), sync and async, against the same training with no checkpointing, run in
   the order A, B, C, C, B, A in this process so
   that a noisy machine's drifts hit all three; an epoch is the time from one EPOCH_STARTED to the next (so the save at its
   end is included); the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ModelCheckpoint
from monai.handlers import CheckpointSaver

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pipeline.checkpoint import CheckpointHandler  # noqa: E402

WORK_SECONDS = 2.0


def _state(megabytes: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A linear layer + Adam moments of about ``megabytes`` MB in all (3 float32 copies of the weights)."""
    features = int((megabytes * 1e6 / 4 / 3) ** 0.5)
    net = torch.nn.Linear(features, features, bias=False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    net(torch.ones(1, features)).sum().backward()
    opt.step()
    return net, opt


def _work(engine: Engine, batch: int) -> None:
    """About WORK_SECONDS of single-threaded CPU work (matrix products), the stand-in for an epoch."""
    a = torch.rand(256, 256)
    end = time.perf_counter() + WORK_SECONDS
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def _blocking(kind: str, megabytes: int, saves: int, folder: Path) -> list[float]:
    net, opt = _state(megabytes)
    trainer = Engine(_work)
    to_save = {"model": net, "optimizer": opt}
    if kind == "ours sync" or kind == "ours async":
        handler = CheckpointHandler(folder, {**to_save, "trainer": trainer}, "epoch", max_checkpoints=1,
                                    save_final=False, async_save=kind == "ours async")
        handler.attach(trainer)
    elif kind == "Ignite ModelCheckpoint":
        trainer.add_event_handler(Events.EPOCH_COMPLETED, ModelCheckpoint(folder, "ckpt", n_saved=1, require_empty=False),
                                  {**to_save, "trainer": trainer})
    else:
        CheckpointSaver(str(folder), {**to_save, "trainer": trainer}, save_interval=1, n_saved=1).attach(trainer)
    starts: list[float] = []
    blocked: list[float] = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: starts.append(time.perf_counter()))
    # the first EPOCH_COMPLETED handler: moved to the front of that event's list
    handlers = trainer._event_handlers[Events.EPOCH_COMPLETED]
    handlers.insert(0, handlers.pop())
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: blocked.append(time.perf_counter() - starts[-1]) if starts else None)
    trainer.add_event_handler(Events.COMPLETED, lambda e: blocked.append(time.perf_counter() - starts[-1]))
    trainer.run([0], max_epochs=saves)
    if kind == "ours async":
        handler.checkpointer.flush()
    return blocked


def blocking_table(sizes: list[int], saves: int) -> None:
    kinds = ["ours sync", "ours async", "Ignite ModelCheckpoint", "MONAI CheckpointSaver"]
    print(f"\nblocking time per save (median of {saves} saves, seconds; {WORK_SECONDS:.0f} s of CPU work between saves)")
    print(f"{'state':>8}  " + "  ".join(f"{k:>22}" for k in kinds) + "  async/sync")
    for megabytes in sizes:
        medians = {}
        for kind in kinds:
            with tempfile.TemporaryDirectory() as folder:
                medians[kind] = statistics.median(_blocking(kind, megabytes, saves, Path(folder)))
        cells = "  ".join(f"{medians[k]:>22.3f}" for k in kinds)
        print(f"{megabytes:>5} MB  {cells}  {medians['ours async'] / medians['ours sync']:>10.2f}")


def epoch_overhead(epochs: int) -> None:
    from exact_resume_child import PATCH, DATA  # the same small training as the exact-resume test

    from monai.utils import set_determinism

    from pipeline.data import load_datalist, make_loader
    from pipeline.engines import create_evaluator, create_trainer
    from pipeline.losses import create_loss_function
    from pipeline.networks import create_unet
    from pipeline.schedules import LossScheduleHandler
    from transforms import get_train_transforms, get_val_transforms

    def build(stack: str, folder: Path):
        set_determinism(seed=0)
        loader = make_loader(load_datalist(DATA, "training"), get_train_transforms(PATCH, num_samples=2), batch_size=2,
                             shuffle=True, seed=7)
        val_loader = make_loader(load_datalist(DATA, "validation"), get_val_transforms())
        network = create_unet(channels=(8, 16, 32), strides=(2, 2), num_res_units=1, dropout=0.1)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-2)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
        loss = create_loss_function("default_segmentation")
        evaluator = create_evaluator(network, val_loader, "cpu", roi_size=PATCH)
        trainer = create_trainer(network, loader, loss, optimizer, "cpu", max_epochs=epochs, evaluator=evaluator,
                                 lr_scheduler=scheduler, progress_bar=False)
        LossScheduleHandler(loss, "adaptive").attach(trainer, evaluator)
        if stack != "no checkpointing":
            CheckpointHandler(folder, strategy="best", max_checkpoints=2, async_save=stack.endswith("async")).attach(trainer, evaluator)
        starts: list[float] = []
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: starts.append(time.perf_counter()))
        handlers = trainer._event_handlers[Events.EPOCH_STARTED]
        handlers.insert(0, handlers.pop())  # first: an epoch runs from one EPOCH_STARTED to the next, saves included
        trainer.add_event_handler(Events.COMPLETED, lambda e: starts.append(time.perf_counter()))
        # after validation and every other epoch-end handler but the checkpoint handler, which moves itself last
        ends: list[float] = []
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: ends.append(time.perf_counter()))
        return trainer, starts, ends

    names = ["no checkpointing", "full stack, sync", "full stack, async"]
    times: dict[str, list[float]] = {name: [] for name in names}
    blocked: dict[str, list[float]] = {name: [] for name in names}
    for name in names + names[::-1]:  # A B C C B A: a drift of the machine hits all alike
        with tempfile.TemporaryDirectory() as folder:
            trainer, starts, ends = build(name, Path(folder))
            trainer.run()
        times[name] += [b - a for a, b in zip(starts[1:], starts[2:])]  # the first epoch warms up
        blocked[name] += [b - a for a, b in zip(ends[1:], starts[2:])]
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["no checkpointing"]
    print(f"\nepoch time of a small UNet training with validation (median of {len(times[names[0]])} epochs, seconds);")
    print("epoch end = from the last other EPOCH_COMPLETED handler to the next epoch (the checkpoint handler's time)")
    for name, value in medians.items():
        end = statistics.median(blocked[name])
        print(f"{name:>20}: epoch {value:.3f} (ratio {value / base:.3f})   epoch end {end * 1000:6.1f} ms "
              f"({100 * end / base:.1f}% of an epoch without checkpoints)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--saves", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} compute thread")
    blocking_table(args.sizes, args.saves)
    epoch_overhead(args.epochs)


if __name__ == "__main__":
    main()
