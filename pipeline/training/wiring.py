"""``TrainingManager.attach``: the manager's loss, schedule, checkpoints, history, plots and MLflow run on Ignite
engines, through the project's handlers (the same objects the hand-written loop uses)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler
from pipeline.errors import SettingsError
from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.handler_order import attached_handler
from pipeline.schedules import LossScheduleHandler
from pipeline.training.loss_terms import LossTermsHandler
from pipeline.training.steps import VAL_METRIC

if TYPE_CHECKING:
    from pipeline.training.manager import TrainingManager

__all__ = ["attach_manager", "default_to_save"]

logger = logging.getLogger(__name__)


def default_to_save(trainer: Engine) -> dict[str, Any]:
    """What to checkpoint of a MONAI ``SupervisedTrainer``: its network, optimizer and the trainer itself.

    Raises:
        SettingsError: a plain Ignite engine (it does not know its model): pass ``to_save``.
    """
    network, optimizer = getattr(trainer, "network", None), getattr(trainer, "optimizer", None)
    if network is None or optimizer is None:
        raise SettingsError(
            "attach() on a plain Ignite engine needs to_save={'model': model, 'optimizer': optimizer, 'trainer': "
            "trainer, ...}: the engine does not know what to checkpoint"
        )
    return {"network": network, "optimizer": optimizer, "trainer": trainer}


def _checkpoint_handler(manager: "TrainingManager", states: Mapping[str, Any], resume: str | Path | None) -> CheckpointHandler:
    """A checkpoint handler with the manager's strategy, folder and settings (it adds the training state it finds
    from the trainer to ``states``); the manager's CheckpointManager then reads the handler's checkpointer, so its
    summary and lists show what the handler saves."""
    cm = manager.checkpoint_manager
    checkpointer = cm.checkpointer
    handler = CheckpointHandler(
        checkpointer.store.directory,
        states,
        strategy=cm.strategy,
        model_name=checkpointer.store.model_name,
        save_last=checkpointer.save_last,
        save_optimizer=cm.save_optimizer,
        save_scheduler=cm.save_scheduler,
        disk_budget=checkpointer.disk_budget,
        fsync=checkpointer.store.fsync,
        existing=checkpointer.existing,
        resume=resume,
    )
    cm.checkpointer = handler.checkpointer
    return handler


def _record_lr(engine: Engine, manager: "TrainingManager", optimizer: torch.optim.Optimizer) -> None:
    """The epoch's ``lr`` in the history (as the hand-written loop records it) and, for an engine the tracker does
    not take it from (a plain Ignite engine), in MLflow."""
    lr = float(optimizer.param_groups[0]["lr"])
    if manager.history and manager.history[-1].get("epoch") == engine.state.epoch:
        manager.history[-1]["lr"] = lr
    tracker = manager.tracker
    if tracker is not None and tracker.active and not isinstance(getattr(engine, "optimizer", None), torch.optim.Optimizer):
        tracker.log_metrics({"lr": lr}, engine.state.epoch)


def attach_manager(
    manager: "TrainingManager", trainer: Engine, evaluator: Engine | None = None,
    to_save: Mapping[str, Any] | None = None, resume: str | Path | None = None,
) -> None:
    """Attach ``manager`` to ``trainer`` (a plain Ignite engine or MONAI's ``SupervisedTrainer``) and ``evaluator``.

    - the loss: a MONAI trainer's ``loss_function`` becomes the manager's (a plain engine's process function should
      call ``manager.loss_function``, e.g. ``Engine(manager.process_function(model, optimizer, device))``);
    - the loss-weight schedule: a :class:`~pipeline.schedules.LossScheduleHandler` with the configured schedule (or,
      without one, a :class:`~pipeline.training.loss_terms.LossTermsHandler`), so every epoch has its weights and
      term losses;
    - history: the trainer's :class:`~pipeline.epoch_summary.EpochSummaryLogger` (one is attached if it has none) is the
      manager's ``history`` (with the optimizer's ``lr``); the plot is refreshed at each epoch's start (so it shows
      the previous epoch's checkpoint decision) and at ``COMPLETED``, when the history is exported;
    - checkpoints: a :class:`~pipeline.checkpoint.CheckpointHandler` with the manager's strategy, saving ``to_save``
      (default for a MONAI trainer: network, optimizer, trainer) plus the schedule, the history, the MLflow run id and
      what the handler finds from the trainer (LR scheduler, random generators, ...); a strategy monitoring
      ``val_dice`` follows a MONAI evaluator's key metric instead;
    - MLflow: the manager's tracker, when on.

    Call it after the validation handlers are attached (so the epoch's record holds the validation metrics).

    Args:
        resume: ``"auto"``, ``"best"``, ``"last"`` or a checkpoint file to continue from when the trainer starts
            (None: from scratch); the MLflow run of that checkpoint is continued.

    Raises:
        SettingsError: loss or checkpointing not set up, a plain engine without ``to_save``, or attached twice.
    """
    loss = manager._require("loss_function", "setup_loss_function(config)")
    manager._require("checkpoint_manager", "setup_checkpointing(config)")
    if manager.checkpoint_handler is not None:
        raise SettingsError("this TrainingManager is already attached to a trainer")
    states = dict(to_save) if to_save is not None else default_to_save(trainer)
    models = [obj for obj in states.values() if isinstance(obj, torch.nn.Module)]
    if models:
        manager.describe_model(models[0])
    if getattr(trainer, "loss_function", loss) is not loss:
        logger.info("the trainer's loss_function is replaced by the manager's %s", type(loss).__name__)
        trainer.loss_function = loss

    if manager.loss_scheduler is not None:
        manager.loss_scheduler.close()  # the handler's own scheduler takes over the same schedule
        scheduler = manager.loss_config["scheduler"]
        schedule = scheduler if isinstance(scheduler, str) else scheduler["type"]
        params = None if isinstance(scheduler, str) else scheduler.get("params")
        schedule_handler = LossScheduleHandler(loss, schedule, params)
        schedule_handler.attach(trainer, evaluator)
        manager.loss_scheduler = schedule_handler.scheduler
        states["loss_schedule"] = schedule_handler
    else:
        LossTermsHandler(loss).attach(trainer)

    epoch_log = attached_handler(trainer, Events.EPOCH_COMPLETED, EpochSummaryLogger)
    if epoch_log is None:
        epoch_log = EpochSummaryLogger(evaluator=evaluator)
        epoch_log.attach(trainer)
    manager.history = epoch_log.history
    states["epoch_log"] = epoch_log

    strategy = manager.checkpoint_manager.strategy
    key_metric = getattr(getattr(evaluator, "state", None), "key_metric_name", None)
    if strategy.monitor == VAL_METRIC and key_metric and key_metric != VAL_METRIC:
        logger.info("checkpoints monitor the evaluator's key metric %s (configured: %s)", key_metric, VAL_METRIC)
        strategy.monitor = manager.checkpoint_manager.monitor_metric = key_metric
    if manager.tracker is not None:
        states["tracker"] = manager.tracker
    checkpoints = _checkpoint_handler(manager, states, resume)

    optimizers = [getattr(trainer, "optimizer", None), *states.values()]
    optimizer = next((o for o in optimizers if isinstance(o, torch.optim.Optimizer)), None)
    if optimizer is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, _record_lr, manager, optimizer)
    if manager.plots:  # at the next epoch's start: the checkpoint handler, last at EPOCH_COMPLETED, has decided
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: manager.plot())
    trainer.add_event_handler(Events.COMPLETED, lambda engine: manager._write_exports())  # plot included
    if manager.tracker is not None:
        manager.tracker.checkpoint = checkpoints
        manager.tracker.attach(trainer, evaluator)
    checkpoints.attach(trainer, evaluator)
    manager.checkpoint_handler, manager.trainer = checkpoints, trainer
