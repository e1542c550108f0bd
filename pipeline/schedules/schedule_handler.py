"""The Ignite glue: trainer/evaluator events -> loss-weight schedule -> the CombinedLoss."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ignite.engine import Engine, Events

from pipeline.errors import SettingsError
from pipeline.handler_order import run_first, run_last
from pipeline.losses.combined import CombinedLoss
from pipeline.schedules.weight_schedule import WeightSchedule
from pipeline.schedules.scheduler import LossScheduler

__all__ = ["LossScheduleHandler"]

logger = logging.getLogger(__name__)


def _format(weights: Mapping[str, float]) -> str:
    return " ".join(f"{name}={value:.4f}" for name, value in weights.items())


class LossScheduleHandler:
    """Change a :class:`~pipeline.losses.combined.CombinedLoss`'s term weights during training, as an Ignite handler
    (MONAI's ``LrScheduleHandler``, for loss weights).

    Works on a plain :class:`ignite.engine.Engine` and on MONAI's ``SupervisedTrainer``. Per epoch:

    - ``EPOCH_STARTED`` (first of that event's handlers): the schedule's weights are set on the loss and published as
      ``trainer.state.loss_weights`` (a dict; logged when they change).
    - every training forward of the loss: its terms are added up (a forward hook, no device sync).
    - ``EPOCH_COMPLETED`` (first of that event's handlers): the epoch's mean term losses go to
      ``trainer.state.loss_components`` and to the schedule.
    - after each validation (``evaluator``'s ``COMPLETED``, or, without an evaluator, the trainer's
      ``state.metrics`` at the end of ``EPOCH_COMPLETED``): the monitored metric goes to a metric-driven schedule.
      Without an evaluator the metric must be fresh each epoch (an Ignite metric attached to the trainer); an epoch
      whose metrics lack it counts as no validation. A validation every few epochs belongs in an evaluator.

    New weights take effect at the next epoch's start. The handler has ``state_dict``/``load_state_dict`` (plain
    numbers): put it into the checkpoint handler's ``to_save`` and a resumed run continues the same weight sequence.

    A trainer resumed without the handler's state (not in the checkpoint's ``to_save``) is noticed at ``STARTED``:
    ``cosine`` and ``step``, functions of the epoch alone, continue at the trainer's epoch; the others warn.

    Example::

        loss = LossManager.create_loss_function("vessel_cldice")
        LossScheduleHandler(loss, "performance", {"patience": 3}).attach(trainer, evaluator)

    Args:
        loss_function: the loss whose weights change.
        schedule: ``"adaptive"``, ``"cosine"``, ``"step"``, ``"performance"`` or a built schedule.
        params: the schedule's parameters.
        evaluator: the validation engine to follow, for MONAI's ``train_handlers=[...]`` (which call
            ``attach(trainer)``); ``attach(trainer, evaluator)`` does the same.

    Attributes:
        scheduler: the :class:`~pipeline.schedules.scheduler.LossScheduler` doing the work (its ``history`` holds the
            weights and term losses of every epoch).
    """

    def __init__(
        self,
        loss_function: CombinedLoss,
        schedule: str | WeightSchedule = "adaptive",
        params: Mapping[str, Any] | None = None,
        evaluator: Engine | None = None,
    ) -> None:
        self.scheduler = LossScheduler(loss_function, schedule, params)
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = evaluator
        self._logged: dict[str, float] | None = None
        self._missing_warned = False

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
            SettingsError: the schedule needs a validation metric, and neither a monitor nor an evaluator is given;
                or the handler is already attached.
        """
        if self.trainer is not None:
            raise SettingsError("this LossScheduleHandler is already attached; a second attach would step it twice per epoch.")
        evaluator = evaluator if evaluator is not None else self.evaluator
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
                trainer.add_event_handler(Events.EPOCH_COMPLETED, self._validated_by_trainer)

    def _started(self, engine: Engine) -> None:
        # the weights first, so every handler of the epoch sees those in force; the epoch's term means first, so
        # loggers and trackers of EPOCH_COMPLETED (also those attached earlier, as the engines' epoch logger) read
        # this epoch's loss_components; the trainer's own metrics last, once every metric of the epoch is computed
        # (the checkpoint handler still comes after: it re-asserts its place at every EPOCH_STARTED)
        run_first(engine, Events.EPOCH_STARTED, self._epoch_started)
        run_first(engine, Events.EPOCH_COMPLETED, self._epoch_completed)
        run_last(engine, Events.EPOCH_COMPLETED, self._validated_by_trainer)
        set_run_length = getattr(self.schedule, "set_run_length", None)
        if set_run_length is not None and engine.state.max_epochs:
            set_run_length(engine.state.max_epochs)
        self._check_resumed(int(engine.state.epoch or 0))
        engine.state.loss_weights = self.scheduler.weights

    def _check_resumed(self, epoch: int) -> None:
        if epoch == self.schedule.epoch:
            return
        if epoch > self.schedule.epoch and self.schedule.resume_at(epoch):
            logger.info("the trainer is at epoch %d: the %s loss-weight schedule continues there.", epoch, self.schedule.name)
            return
        if epoch > self.schedule.epoch:
            cause = "was the trainer resumed without the schedule's state? Put the LossScheduleHandler into the checkpoint's to_save"
        else:
            cause = ("was the schedule's state loaded but not the trainer's, or did the trainer start its finished run "
                     "again from epoch 0? The schedule goes on from its own epoch")
        logger.warning(
            "the trainer is at epoch %d but the %s loss-weight schedule at epoch %d: %s.", epoch, self.schedule.name,
            self.schedule.epoch, cause,
        )

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

    def _validated_by_trainer(self, engine: Engine) -> None:
        if self.scheduler.monitor in engine.state.metrics:
            self._validated(engine)
        elif not self._missing_warned:
            self._missing_warned = True
            logger.warning(
                "the %s loss-weight schedule follows %r, which is not in the trainer's metrics %s at epoch %d: no "
                "validation is counted until it is there.",
                self.schedule.name, self.scheduler.monitor, sorted(engine.state.metrics), engine.state.epoch,
            )

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, the epoch's partial term sums and the weight history."""
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
