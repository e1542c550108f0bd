"""The Ignite glue: trainer/evaluator events -> loss-weight schedule -> the CombinedLoss."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ignite.engine import Engine, Events

from pipeline.errors import SettingsError
from pipeline.handlers import run_first
from pipeline.losses.combined import CombinedLoss
from pipeline.schedules.base import WeightSchedule
from pipeline.schedules.scheduler import LossScheduler

__all__ = ["LossScheduleHandler"]

logger = logging.getLogger(__name__)


def _format(weights: Mapping[str, float]) -> str:
    return " ".join(f"{name}={value:.4f}" for name, value in weights.items())


class LossScheduleHandler:
    """Change a :class:`~pipeline.losses.combined.CombinedLoss`'s term weights during training, as an Ignite handler
    (MONAI's ``LrScheduleHandler``, for loss weights).

    Works on a plain :class:`ignite.engine.Engine` and on MONAI's ``SupervisedTrainer``. Per epoch:

    - ``EPOCH_STARTED``: the schedule's weights are set on the loss and published as ``trainer.state.loss_weights``
      (a dict; logged when they change).
    - every training forward of the loss: its terms are added up (a forward hook, no device sync).
    - ``EPOCH_COMPLETED`` (first of that event's handlers): the epoch's mean term losses go to
      ``trainer.state.loss_components`` and to the schedule.
    - after each validation (``evaluator``'s ``COMPLETED``, or, without an evaluator, the trainer's
      ``state.metrics`` at ``EPOCH_COMPLETED``): the monitored metric goes to a metric-driven schedule.

    New weights take effect at the next epoch's start. The handler has ``state_dict``/``load_state_dict`` (plain
    numbers): put it into the checkpoint handler's ``to_save`` and a resumed run continues the same weight sequence.

    Example::

        loss = LossManager.create_loss_function("vessel_cldice")
        LossScheduleHandler(loss, "performance", {"patience": 3}).attach(trainer, evaluator)

    Args:
        loss_function: the loss whose weights change.
        schedule: ``"adaptive"``, ``"cosine"``, ``"step"``, ``"performance"`` or a built schedule.
        params: the schedule's parameters.

    Attributes:
        scheduler: the :class:`~pipeline.schedules.scheduler.LossScheduler` doing the work (its ``history`` holds the
            weights and term losses of every epoch).
    """

    def __init__(
        self,
        loss_function: CombinedLoss,
        schedule: str | WeightSchedule = "adaptive",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.scheduler = LossScheduler(loss_function, schedule, params)
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = None
        self._logged: dict[str, float] | None = None

    @property
    def schedule(self) -> WeightSchedule:
        return self.scheduler.schedule

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.scheduler.history

    def attach(self, trainer: Engine, evaluator: Engine | None = None) -> None:
        """Attach to ``trainer``; a metric-driven schedule reads ``evaluator``'s metrics (its key metric unless
        ``monitor`` is given), or the trainer's own ``state.metrics`` when no evaluator is given.

        Raises:
            SettingsError: the schedule needs a validation metric, and neither a monitor nor an evaluator is given.
        """
        if self.schedule.needs_metric and self.scheduler.monitor is None:
            self.scheduler.monitor = getattr(getattr(evaluator, "state", None), "key_metric_name", None)
            if self.scheduler.monitor is None:
                raise SettingsError(
                    f"the {self.schedule.name!r} loss-weight schedule needs a metric to follow: give "
                    "params={'monitor': <name>} (or an evaluator with a key metric)."
                )
        self.trainer, self.evaluator = trainer, evaluator
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        if self.schedule.needs_metric:
            if evaluator is not None:
                evaluator.add_event_handler(Events.COMPLETED, self._validated)
            else:
                trainer.add_event_handler(Events.EPOCH_COMPLETED, self._validated)

    def _started(self, engine: Engine) -> None:
        # the epoch's term means first, so loggers and trackers of EPOCH_COMPLETED (also those attached earlier, as
        # the engines' epoch logger) read this epoch's loss_components
        run_first(engine, Events.EPOCH_COMPLETED, self._epoch_completed)
        set_run_length = getattr(self.schedule, "set_run_length", None)
        if set_run_length is not None and engine.state.max_epochs:
            set_run_length(engine.state.max_epochs)

    def _epoch_started(self, engine: Engine) -> None:
        length = engine.state.epoch_length
        if not length or engine.state.iteration % length == 0:
            self.scheduler.meter.reset()  # a true epoch start (a run resumed mid-epoch keeps the sums it loaded)
        weights = self.scheduler.apply()
        engine.state.loss_weights = weights
        if weights != self._logged:
            logger.info("loss weights for epoch %d: %s", engine.state.epoch, _format(weights))
            self._logged = weights

    def _epoch_completed(self, engine: Engine) -> None:
        self.scheduler.epoch_completed(engine.state.epoch)
        engine.state.loss_components = dict(self.history[-1]["losses"])

    def _validated(self, engine: Engine) -> None:
        self.scheduler.evaluation_completed(engine.state.metrics)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, the epoch's partial term sums and the weight history."""
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
