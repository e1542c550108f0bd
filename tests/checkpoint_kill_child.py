"""Child process of test_checkpoint_kill.py and bench/bench_checkpoint_kill.py: trains forever, checkpointing every
epoch, until it is killed.

Usage: python checkpoint_kill_child.py CHECKPOINT_DIR STRATEGY

STRATEGY is one of our checkpoint strategies (one checkpoint kept), or ``ignite`` for Ignite's
``ModelCheckpoint(n_saved=1)``, the baseline of the benchmark.

The state is about 24 MB (a 2M-parameter linear layer and its Adam moments) and epochs are two tiny steps, so the
process spends most of its time inside a save, which is where the kill is meant to land.
"""

import sys

import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler


def main(directory: str, strategy: str) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Linear(2048, 1024)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = torch.randn(4, 2048)

    def step(engine: Engine, _) -> float:
        opt.zero_grad()
        loss = net(batch).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    trainer = Engine(step)
    # a stand-in validation score that rises and falls, so "best" saves and evicts
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(score=float(e.state.epoch % 7)))
    to_save = {"model": net, "optimizer": opt, "trainer": trainer}
    if strategy == "ignite":
        from ignite.handlers import ModelCheckpoint

        trainer.add_event_handler(Events.EPOCH_COMPLETED, ModelCheckpoint(directory, "ckpt", n_saved=1, require_empty=False), to_save)
    else:
        handler = CheckpointHandler(directory, to_save, strategy, monitor="score", max_checkpoints=1)
        handler.attach(trainer)
        handler.resume("auto")
    trainer.run([0, 1], max_epochs=100000)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
