"""Keeping a cosine learning-rate schedule annealing to the end of a run that a resume made longer."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine, Events

__all__ = ["CosineToRunEnd", "stretch_cosine"]


class CosineToRunEnd:
    """Keep a :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` annealing to the end of the run after a resume.

    A resumed run restores the scheduler's state, ``T_max`` included; when the run was extended (``--epochs 60`` on a
    40-epoch run) the old ``T_max`` would be passed and the learning rate would climb back up the cosine. At
    ``STARTED`` (after the checkpoint handler restored the state) this sets ``T_max`` to the run's ``max_epochs``: the
    learning rate then goes on from where it is down to ``eta_min`` at the new last epoch (a run that had already
    reached ``eta_min`` stays there). A run that is not extended is not changed.

    Args:
        lr_scheduler: the scheduler, stepped once per epoch.
    """

    def __init__(self, lr_scheduler: torch.optim.lr_scheduler.CosineAnnealingLR) -> None:
        self.lr_scheduler = lr_scheduler

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        stretch_cosine(self.lr_scheduler, engine.state.max_epochs)


def stretch_cosine(lr_scheduler: torch.optim.lr_scheduler.CosineAnnealingLR, num_epochs: int | None) -> bool:
    """Set ``lr_scheduler.T_max`` to ``num_epochs`` (the run's new length after a resume), so the learning rate goes
    on from where it is down to ``eta_min`` at the new last epoch (see :class:`CosineToRunEnd`).

    Returns:
        whether ``T_max`` changed (not when ``num_epochs`` is falsy or already ``T_max``).
    """
    if not num_epochs or lr_scheduler.T_max == num_epochs:
        return False
    logging.getLogger(__name__).info("learning-rate cosine stretched from %d to %d epochs", lr_scheduler.T_max, num_epochs)
    lr_scheduler.T_max = int(num_epochs)
    return True
