"""Kill -9 a training process at random moments while it checkpoints every epoch, keeping one checkpoint.

Compares Ignite's ``ModelCheckpoint(n_saved=1)`` with our ``CheckpointHandler(strategy="epoch", max_checkpoints=1)``
on the same loop, ``tests/checkpoint_kill_child.py`` (a 2M-parameter layer and Adam: ~25 MB per checkpoint, epochs of
two tiny steps, so most of the time is spent saving). After each kill it counts whether any checkpoint file in the
folder still loads.

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

#: the training process that is killed (shared with tests/test_checkpoint_kill.py)
CHILD = Path(__file__).resolve().parents[1] / "tests" / "checkpoint_kill_child.py"


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


def trial(kind: str, rng: random.Random) -> int:
    """Start the child, kill it at a random moment after its first checkpoint; the number of files that still load."""
    directory = Path(tempfile.mkdtemp(prefix=f"kill_{kind}_"))
    proc = subprocess.Popen([sys.executable, str(CHILD), str(directory), kind], env={**os.environ, "OMP_NUM_THREADS": "1"})
    while not list(directory.glob("*.pt")):  # wait for the first complete checkpoint
        if proc.poll() is not None:
            raise SystemExit(f"{kind} child exited with {proc.returncode}")
        time.sleep(0.01)
    time.sleep(rng.uniform(0.2, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return loadable(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.trials} kills per implementation, each at a random moment 0.2-1.2 s after the first checkpoint")
    print(f"{'implementation':42s} {'no loadable checkpoint':>24s}")
    for kind, label in (("ignite", "Ignite ModelCheckpoint(n_saved=1)"), ("epoch", "CheckpointHandler('epoch', max_checkpoints=1)")):
        rng = random.Random(args.seed)
        lost = sum(1 for _ in range(args.trials) if trial(kind, rng) == 0)
        print(f"{label:42s} {lost:>17d} of {args.trials}")


if __name__ == "__main__":
    main()
