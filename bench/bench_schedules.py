"""Cost of a loss-weight schedule: epoch time of a small training with and without ``LossScheduleHandler``, and
the per-call cost of the term meter (the forward hook) on a tiny loss call, where it weighs most.

    .venv/bin/python bench/bench_schedules.py [--epochs 12] [--threads 2]

Both trainings run in the same process, interleaved epoch by epoch (A, B, A, B, ...) so that drifts of a noisy
machine hit both; the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from ignite.engine import Engine, Events
from monai.networks.nets import UNet

from pipeline.losses import create_loss_function
from pipeline.schedules import LossScheduleHandler, TermLossMeter


def _trainer(schedule: str | None) -> tuple[Engine, list[float], list]:
    torch.manual_seed(0)
    net = UNet(3, 1, 1, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = create_loss_function("vessel_cldice")
    generator = torch.Generator().manual_seed(0)
    data = []
    for _ in range(8):
        image = torch.rand(2, 1, 48, 48, 48, generator=generator)
        data.append((image, (image > 0.7).float()))

    def step(engine: Engine, batch: tuple) -> float:
        opt.zero_grad()
        value = loss(net(batch[0]), batch[1])
        value.backward()
        opt.step()
        return value.item()

    trainer = Engine(step)
    if schedule is not None:
        LossScheduleHandler(loss, schedule).attach(trainer)
    times: list[float] = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: times.append(-time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: times.__setitem__(-1, times[-1] + time.perf_counter()))
    return trainer, times, data


def epoch_times(epochs: int) -> dict[str, list[float]]:
    runs = {name: _trainer(schedule) for name, schedule in (("no schedule", None), ("adaptive schedule", "adaptive"))}
    for epoch in range(1, epochs + 1):
        for trainer, _, data in runs.values():
            trainer.run(data, max_epochs=epoch)  # one more epoch each: Ignite continues a run up to max_epochs
    return {name: times[1:] for name, (_, times, _) in runs.items()}  # the first epoch warms up


def hook_cost(blocks: int = 12, calls: int = 300) -> tuple[float, float]:
    """Median microseconds per loss call without and with a term meter, in alternating blocks."""
    loss = create_loss_function("default_segmentation")
    x = torch.randn(1, 1, 8, 8, 8, requires_grad=True)
    y = (torch.rand(1, 1, 8, 8, 8) > 0.5).float()
    for _ in range(100):
        loss(x, y)
    per_call: dict[bool, list[float]] = {False: [], True: []}
    for block in range(blocks):
        metered = bool(block % 2)
        meter = TermLossMeter(loss) if metered else None
        start = time.perf_counter()
        for _ in range(calls):
            loss(x, y)
        per_call[metered].append((time.perf_counter() - start) / calls * 1e6)
        if meter is not None:
            meter.close()
    return statistics.median(per_call[False]), statistics.median(per_call[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    times = epoch_times(args.epochs)
    base = statistics.median(times["no schedule"])
    print(f"training: UNet 8-16-32, vessel_cldice, 8 batches of (2,1,48,48,48) per epoch, {args.threads} threads, "
          f"median of {args.epochs - 1} epochs")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:18s} {median:7.3f} s/epoch   ratio {median / base:.3f}")
    plain, hooked = hook_cost()
    print(f"loss call on (1,1,8,8,8), Dice+BCE: {plain:.1f} us plain, {hooked:.1f} us with the term meter "
          f"(+{hooked - plain:.1f} us, ratio {hooked / plain:.3f})")


if __name__ == "__main__":
    main()
