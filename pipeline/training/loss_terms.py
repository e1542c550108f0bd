"""Publish a CombinedLoss's weights and epoch term means on the trainer's state when no loss-weight schedule runs."""

from __future__ import annotations

from ignite.engine import Engine, Events

from pipeline.handler_order import run_first
from pipeline.losses.combined import CombinedLoss
from pipeline.schedules.meter import TermLossMeter

__all__ = ["LossTermsHandler"]


class LossTermsHandler:
    """Set ``trainer.state.loss_weights`` (at each epoch start) and ``trainer.state.loss_components`` (the epoch's
    mean unweighted term losses, first of the ``EPOCH_COMPLETED`` handlers), as
    :class:`~pipeline.schedules.LossScheduleHandler` does, for a loss whose weights do not change; loggers and the
    MLflow tracker then report every term.

    Args:
        loss_function: the loss the trainer trains with.
    """

    def __init__(self, loss_function: CombinedLoss) -> None:
        self.loss = loss_function
        self.meter = TermLossMeter(loss_function)

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine: Engine) -> None:
        run_first(engine, Events.EPOCH_STARTED, self._epoch_started)
        run_first(engine, Events.EPOCH_COMPLETED, self._epoch_completed)

    def _epoch_started(self, engine: Engine) -> None:
        self.meter.reset()
        engine.state.loss_weights = dict(self.loss.weights)

    def _epoch_completed(self, engine: Engine) -> None:
        engine.state.loss_components = self.meter.means()
