"""Kill -9 a training process at random moments while it checkpoints every epoch, keeping one checkpoint.

Compares Ignite's ``ModelCheckpoint(n_saved=1)`` with our ``CheckpointHandler(strategy="epoch", max_checkpoints=1)``
on the same loop (a 2M-parameter layer and Adam: ~25 MB per checkpoint, epochs of two tiny steps, so most of the time
is spent saving). After each kill it counts whether any checkpoint file in the folder still loads.

Usage: python bench/bench_checkpoint_kill.py [--trials 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(kind: str, directory: str) -> None:
    import torch
    from ignite.engine import Engine, Events

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Linear(2048, 1024)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = torch.randn(4, 2048)

    def step(engine, _):
        opt.zero_grad()
        net(batch).pow(2).mean().backward()
        opt.step()

    trainer = Engine(step)
    to_save = {"model": net, "optimizer": opt, "trainer": trainer}
    if kind == "ignite":
        from ignite.handlers import ModelCheckpoint

        trainer.add_event_handler(Events.EPOCH_COMPLETED, ModelCheckpoint(directory, "ckpt", n_saved=1, require_empty=False), to_save)
    else:
        from pipeline.checkpoint import CheckpointHandler

        CheckpointHandler(directory, to_save, "epoch", max_checkpoints=1, save_last=False).attach(trainer)
    Path(directory, "READY").touch()
    trainer.run([0, 1], max_epochs=1_000_000)


def loadable(directory: Path) -> int:
    import torch

    count = 0
    for path in directory.glob("*.pt"):
        try:
            torch.load(path, weights_only=True)
            count += 1
        except Exception:
            pass
    return count


def trial(kind: str, rng: random.Random) -> tuple[int, int]:
    directory = Path(tempfile.mkdtemp(prefix=f"kill_{kind}_"))
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(directory)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    while not list(directory.glob("*.pt")):  # wait for the first complete checkpoint
        if proc.poll() is not None:
            raise SystemExit(f"{kind} child exited with {proc.returncode}")
        time.sleep(0.01)
    time.sleep(rng.uniform(0.2, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = len(list(directory.iterdir()))
    return loadable(directory), files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{args.trials} kills per implementation, each at a random moment 0.2-1.2 s after the first checkpoint")
    print(f"{'implementation':42s} {'no loadable checkpoint':>24s}")
    for kind, label in (("ignite", "Ignite ModelCheckpoint(n_saved=1)"), ("ours", "CheckpointHandler('epoch', max_checkpoints=1)")):
        rng = random.Random(args.seed)
        results = [trial(kind, rng) for _ in range(args.trials)]
        lost = sum(1 for ok, _ in results if ok == 0)
        print(f"{label:42s} {lost:>17d} of {args.trials}")


if __name__ == "__main__":
    main()
