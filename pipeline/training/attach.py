"""One way to put the project's handlers on a trainer: the bundle, ``TrainingManager.attach`` and a user's own
Ignite code all call :func:`attach_training_handlers`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler
from pipeline.handler_order import attached_handler
from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.losses import CombinedLoss
from pipeline.schedules import LossScheduleHandler

__all__ = ["TrainingHandlers", "attach_training_handlers"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingHandlers:
    """The handlers on a trainer after :func:`attach_training_handlers`."""

    schedule: LossScheduleHandler | None
    epoch_log: EpochSummaryLogger
    checkpoints: CheckpointHandler | None
    tracker: Any


def attach_training_handlers(
    trainer: Engine,
    evaluator: Engine | None = None,
    *,
    loss: Any = None,
    schedule: LossScheduleHandler | None = None,
    checkpoints: CheckpointHandler | None = None,
    tracker: Any = None,
    epoch_log: EpochSummaryLogger | None = None,
) -> TrainingHandlers:
    """Attach the loss-weight schedule, the epoch log, MLflow tracking and checkpoints to ``trainer`` (a plain Ignite
    engine or MONAI's ``SupervisedTrainer``), reading validation metrics from ``evaluator``.

    - ``schedule``: attached with ``evaluator``; without one, a loss with named terms (a
      :class:`~pipeline.losses.CombinedLoss` ``loss``) gets a constant-weight ``LossScheduleHandler``, so its
      weights and term losses are published (``state.loss_weights`` / ``state.loss_components``) the same way;
    - ``epoch_log``: the :class:`~pipeline.epoch_summary.EpochSummaryLogger` already on the trainer (MONAI trainers made
      by :func:`pipeline.engines.create_trainer` have one), else the given or a new one, attached;
    - ``tracker``: an :class:`~pipeline.tracking.MLflowTracker`, following ``checkpoints``' decisions;
    - ``checkpoints``: a :class:`~pipeline.checkpoint.CheckpointHandler`, attached last; it finds the schedule, the
      epoch log and the tracker on the trainer and saves their states with the rest of the training state.

    Example::

        handlers = attach_training_handlers(trainer, evaluator, loss=loss,
                                            schedule=LossScheduleHandler(loss, "cosine"),
                                            checkpoints=CheckpointHandler("runs/x/checkpoints", resume="auto"))
        trainer.run()
        handlers.epoch_log.history     # one record per epoch

    Returns:
        the :class:`TrainingHandlers` attached.
    """
    if schedule is None and isinstance(loss, CombinedLoss):
        schedule = LossScheduleHandler(loss, "constant")
    if schedule is not None:
        schedule.attach(trainer, evaluator)
    found = attached_handler(trainer, Events.EPOCH_COMPLETED, EpochSummaryLogger)
    if found is None:
        found = epoch_log or EpochSummaryLogger(evaluator=evaluator)
        found.attach(trainer)
    elif epoch_log is not None and epoch_log is not found:
        logger.warning("the trainer already has an epoch log; the one given is not attached")
    if tracker is not None:
        if getattr(tracker, "checkpoint", None) is None:
            tracker.checkpoint = checkpoints
        tracker.attach(trainer, evaluator)
    if checkpoints is not None:
        checkpoints.attach(trainer, evaluator)
    return TrainingHandlers(schedule, found, checkpoints, tracker)
