"""The mean training loss of each epoch, over every process: one Ignite ``Average`` attached to the trainer as its
metric ``loss``, which the epoch summary, the history and the MLflow tracker all read."""

from __future__ import annotations

import math
from typing import Any, Mapping

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.exceptions import NotComputableError
from ignite.metrics import Average
from ignite.metrics.metric import reinit__is_reduced

from pipeline.collective_exit import release_process_groups_at_exit
from pipeline.handler_order import attached_handler

__all__ = ["LOSS_METRIC", "EpochLoss", "attach_epoch_loss", "output_losses"]

#: the name of the epoch's mean training loss in ``trainer.state.metrics`` (and in the history and MLflow)
LOSS_METRIC = "loss"


def output_losses(output: Any) -> list[float]:
    """The training losses in an engine's ``state.output``: MONAI's dict (or list of dicts, one per sample) with a
    ``"loss"`` entry, or a plain number / one-element tensor (a plain Ignite process function's return)."""
    items = output if isinstance(output, list) else [output]
    losses = []
    for item in items:
        value = item.get("loss") if isinstance(item, dict) else item
        if value is None or isinstance(value, (str, bytes)):
            continue
        try:
            losses.append(float(value))
        except (TypeError, ValueError, RuntimeError):
            continue
    return losses


def _iteration_loss(output: Any) -> torch.Tensor | None:
    losses = output_losses(output)
    return torch.tensor(sum(losses) / len(losses), dtype=torch.float64) if losses else None


class EpochLoss(Average):
    """Ignite's :class:`~ignite.metrics.Average` of each iteration's training loss (see :func:`output_losses`; an
    iteration without a loss is skipped) over an epoch. Under ``ignite.distributed`` the sums are all-reduced when the
    epoch completes, so every process gets the mean over all of them (every process must reach that point: it is a
    collective). An epoch without any loss gives NaN.

    Its state (the sums of the epoch so far, of this process: no collective, so a save that one process makes alone
    does not wait for the others) is checkpointed with the trainer, and a run resumed in the middle of an epoch keeps
    the sums it loaded, so that epoch's mean is the uninterrupted run's. Under ``ignite.distributed`` only process 0
    takes the sums back (the others start from 0), so the all-reduce does not count them once per process; the other
    processes' partial sums are not saved, so a mid-epoch resume of several processes is approximate.
    """

    def __init__(self) -> None:
        super().__init__(output_transform=_iteration_loss, device="cpu")

    @reinit__is_reduced
    def update(self, output: torch.Tensor | None) -> None:
        if output is not None:
            super().update(output)

    def compute(self) -> float | torch.Tensor:
        if idist.get_world_size() > 1:
            release_process_groups_at_exit()  # the all-reduce below is a collective
        try:
            return super().compute()
        except NotComputableError:  # raised on every process alike, after the all-reduce
            return math.nan

    def started(self, engine: Engine) -> None:
        length = engine.state.epoch_length
        if length and engine.state.iteration % length:
            return  # a run resumed in the middle of an epoch: the sums it loaded belong to this epoch
        super().started(engine)

    def state_dict(self) -> dict[str, Any]:
        """This process's sums of the epoch so far (a tensor and a number: loads with ``weights_only=True``)."""
        return {"sum": torch.as_tensor(self.accumulator, dtype=torch.float64).clone(), "count": int(self.num_examples)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.reset()
        if idist.get_rank() == 0 and state_dict.get("count"):
            self.accumulator = torch.as_tensor(state_dict["sum"], dtype=torch.float64).clone()
            self.num_examples = int(state_dict["count"])


def attach_epoch_loss(engine: Engine) -> EpochLoss:
    """The :class:`EpochLoss` of ``engine`` (``state.metrics["loss"]`` at each epoch's end), attached now unless it
    already is; attach it before the handlers that read it at ``EPOCH_COMPLETED``, which then run after it."""
    found = attached_handler(engine, Events.EPOCH_COMPLETED, EpochLoss)
    if found is None:
        found = EpochLoss()
        found.attach(engine, LOSS_METRIC)
    return found
