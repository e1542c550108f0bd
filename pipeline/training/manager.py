"""The seed's ``TrainingManager``: one front door over the loss, its schedule, checkpointing, history, plots and MLflow.

It composes the project's pieces and holds no training logic of its own: the step is
:func:`pipeline.training.steps.train_step`, validation is the project's MONAI evaluator, the weights come from a
:class:`~pipeline.schedules.LossScheduler`, checkpoints from a :class:`~pipeline.checkpoint.CheckpointManager`,
tracking from an :class:`~pipeline.tracking.MLflowTracker`. :meth:`TrainingManager.attach` puts the same objects
on Ignite engines with :func:`~pipeline.training.attach.attach_training_handlers`.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import ignite.distributed as idist
import torch
from ignite.engine import Events

from pipeline.checkpoint import CheckpointHandler, create_checkpoint_manager, get_checkpoint_preset
from pipeline.checkpoint.storage.manifest import scalar_metrics
from pipeline.errors import CheckpointError, InputError, SettingsError
from pipeline.handler_order import attached_handler
from pipeline.cosine_lr import stretch_cosine
from pipeline.epoch_summary import EpochSummaryLogger, schedule_values
from pipeline.history import export_history, with_checkpoints
from pipeline.io import write_json
from pipeline.losses import get_preset_loss_config
from pipeline.schedules import LossManager, create_loss_scheduler
from pipeline.plots import plot_training_curves
from pipeline.schedules import LossScheduleHandler
from pipeline.tracking import MLflowTracker
from pipeline.training.attach import attach_training_handlers
from pipeline.training.steps import VAL_METRIC, StepMeans, process_function, split_batch, train_step, validate
from pipeline.training.summary import training_summary

__all__ = ["TrainingManager", "CHECKPOINT_DIR", "STATE_KEYS"]

logger = logging.getLogger(__name__)

#: sub-folder of ``model_dir`` holding the checkpoints
CHECKPOINT_DIR = "checkpoints"
#: names of the manager's states in a checkpoint (next to model, optimizer, scheduler)
STATE_KEYS = {"loss_schedule": "loss_schedule", "tracker": "tracker", "history": "epoch_log"}
#: history entries that are not logged as MLflow metrics (the epoch is the metric's step)
NOT_LOGGED = ("epoch", "steps")


def default_to_save(trainer: Any) -> dict[str, Any]:
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


def _end_at_exit(tracker: MLflowTracker) -> None:
    """End ``tracker``'s run if still active (a loop without ``finish()``), at interpreter exit or when the manager is
    collected: ``FAILED`` after an uncaught exception, else ``FINISHED``. Never raises (a killed process runs nothing:
    its run stays ``RUNNING`` and the next fresh start in the folder warns of it)."""
    if not tracker.active:
        return
    status = "FAILED" if getattr(sys, "last_value", None) is not None else "FINISHED"
    try:
        tracker.log_checkpoint_events()
        tracker.end(status)
    except Exception as error:  # noqa: BLE001 - at exit nothing can be done about it but saying so
        logger.warning("could not end MLflow run %s at exit: %s", tracker.run_id, error)


def _writable_dir(path: str | Path) -> Path:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as error:
        raise InputError(f"model_dir '{directory}' is not a writable folder: {error.strerror or error}") from error
    return directory


def _config(config: Mapping[str, Any] | str | None, presets: Any, what: str) -> dict[str, Any]:
    if isinstance(config, str):
        return presets(config)
    if not isinstance(config, Mapping):
        raise SettingsError(f"the {what} config must be a dict or a preset name, got {config!r}")
    return dict(config)


def _artifacts_of(manager: "TrainingManager") -> Any:
    """``manager.artifact_files`` without a strong reference (the tracker must not keep the manager alive: its
    collection ends a run left open)."""
    ref = weakref.ref(manager)

    def files() -> list[Path]:
        owner = ref()
        return [] if owner is None else owner.artifact_files()

    return files


class TrainingManager:
    """Loss, loss-weight schedule, checkpoints, history, plots and (optionally) MLflow for one training.

    The seed's loop works as it is (``epoch`` counts from 0, as in ``for epoch in range(num_epochs)``; files, history
    and MLflow steps count completed epochs from 1)::

        manager = TrainingManager("./out", "coronary_unet", enable_mlflow=True)
        manager.setup_loss_function({"type": "combined", "dice_weight": 0.8, "bce_weight": 0.2,
                                     "scheduler": {"type": "adaptive"}})
        manager.setup_checkpointing({"manager_type": "auto", "auto_strategy": "adaptive", "max_checkpoints": 3})
        for epoch in range(num_epochs):
            for inputs, targets in train_loader:
                step_metrics = manager.train_step(model, (inputs, targets), optimizer, device)
            val_metrics = manager.validation_step(model, val_loader, device)
            manager.save_checkpoint(model, optimizer, scheduler, epoch, val_metrics)
            manager.end_epoch(epoch, step_metrics, val_metrics)
        manager.finish()   # history, plots and the best model as MLflow artifacts; the run ends

    An epoch is closed (its record made, the loss schedule stepped once) by whichever of :meth:`save_checkpoint` and
    :meth:`end_epoch` comes first, so a checkpoint holds the schedule's state for the next epoch; either order works
    (with ``end_epoch`` first, its ``checkpoint_path`` is None: the file is what ``save_checkpoint`` returns).
    Without :meth:`finish`, :meth:`export_training_data` logs the files to MLflow and the run is ended ``FINISHED``
    when the interpreter exits.

    Files under ``model_dir``: ``checkpoints/``, ``<model_name>_history.json`` / ``.csv``,
    ``<model_name>_training_curves.png`` (refreshed every epoch), ``<model_name>_training_data.json``, and with
    MLflow the store ``mlflow.db`` and ``mlartifacts/``.

    Args:
        model_dir: output folder (created; must be writable).
        model_name: file prefix of checkpoints and exports, and the MLflow run name.
        enable_mlflow: track the run in MLflow (see :class:`~pipeline.tracking.MLflowTracker`).
        tracking_uri, experiment_name: MLflow store and experiment (default: SQLite under ``model_dir``).
        roi_size: sliding-window size for :meth:`validation_step` (default: the spatial size of the first training
            batch, i.e. the patch size).
        threshold: probability threshold of the predicted mask (Dice metrics).
        plots: refresh the training-curves PNG at every epoch end.

    Raises:
        InputError: ``model_dir`` cannot be created or written.
    """

    def __init__(
        self,
        model_dir: str | Path,
        model_name: str = "model",
        enable_mlflow: bool = False,
        tracking_uri: str | None = None,
        experiment_name: str = "vessel-segmentation",
        roi_size: Sequence[int] | None = None,
        threshold: float = 0.5,
        plots: bool = True,
    ) -> None:
        self.model_dir = _writable_dir(model_dir)
        self.model_name = model_name
        self.roi_size = tuple(roi_size) if roi_size else None
        self.threshold = threshold
        self.plots = plots
        self.loss_function: Any = None
        self.loss_config: dict[str, Any] | None = None
        self.loss_scheduler: Any = None
        self.checkpoint_manager: Any = None
        self.checkpoint_config: dict[str, Any] | None = None
        self.checkpoint_handler: Any = None
        self.trainer: Any = None
        self.tracker = (
            MLflowTracker(self.model_dir, model_name, experiment_name, tracking_uri, artifacts=_artifacts_of(self))
            if enable_mlflow else None
        )
        self.history: list[dict[str, Any]] = []
        self.model_info: dict[str, Any] = {}
        self._steps = StepMeans()
        self._total_steps = 0
        self._closed: dict[str, Any] | None = None  # the record of the last closed epoch (ended or not)
        self._closed_means: dict[str, float] = {}  # its step means
        self._saved: tuple[int, Path | None] | None = None  # (epoch number, file) of the last save_checkpoint
        self._exit_hook = None if self.tracker is None else weakref.finalize(self, _end_at_exit, self.tracker)
        self._start = time.perf_counter()
        self._epoch_clock = self._start

    # ------------------------------------------------------------------------------------------------ set-up
    def setup_loss_function(self, config: Mapping[str, Any] | str) -> Any:
        """Build the loss from a seed-style config or a loss preset name; a ``scheduler`` entry
        (``{"type": "adaptive" | "cosine" | "step" | "performance", "params": {...}}``) adds a loss-weight schedule,
        stepped once per epoch. Returns the loss.

        Raises:
            ValueError: unknown preset, type, key or schedule (the valid ones are listed).
        """
        settings = _config(config, get_preset_loss_config, "loss")
        loss = LossManager.create_loss_function(settings)  # checks a scheduler entry before anything changes
        if self.loss_scheduler is not None:
            self.loss_scheduler.close()
        self.loss_function, self.loss_config = loss, settings
        self.loss_scheduler = create_loss_scheduler(loss, settings["scheduler"]) if settings.get("scheduler") else None
        self._update_params()
        return loss

    def setup_checkpointing(self, config: Mapping[str, Any] | str) -> Any:
        """Build the checkpoint manager (in ``model_dir/checkpoints``) from a seed-style config or a checkpoint preset
        name. An earlier run's checkpoints there are replaced once this run's first one is saved, unless the config
        says ``existing="error"`` or ``"keep"`` (or :meth:`resume` continues them). Returns the manager.

        Raises:
            ValueError: unknown preset, manager type, strategy or parameter (the valid ones are listed).
        """
        settings = _config(config, get_checkpoint_preset, "checkpoint")
        self.checkpoint_manager = create_checkpoint_manager(
            self.model_dir / CHECKPOINT_DIR, self.model_name, {"existing": "replace", **settings}
        )
        self.checkpoint_config = settings
        if self.tracker is not None:
            self.tracker.checkpoint = self.checkpoint_manager
        self._update_params()
        return self.checkpoint_manager

    def _update_params(self) -> None:
        if self.tracker is None:
            return
        params = {"model": self.model_info, "loss": self.loss_config, "checkpoint": self.checkpoint_config}
        self.tracker.params = {k: v for k, v in params.items() if v}
        if self.tracker.active:
            self.tracker.log_params(self.tracker.params)

    def _require(self, name: str, how: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise SettingsError(f"TrainingManager.{name} is not set up: call {how} first (or use quick_training_setup)")
        return value

    # ------------------------------------------------------------------------------------------------ the loop
    def describe_model(self, model: torch.nn.Module) -> None:
        """Record the model's class and size (``model_info``, an MLflow parameter) once."""
        if not self.model_info:
            self.model_info = {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters())}
            self._update_params()

    def _begin(self, model: torch.nn.Module, batch: Any) -> None:
        self.describe_model(model)
        if self.roi_size is None:
            self.roi_size = tuple(split_batch(batch, None)[0].shape[2:])
        if self.tracker is not None and not self.tracker.active:
            self.tracker.start()

    def train_step(self, model: torch.nn.Module, batch: Any, optimizer: torch.optim.Optimizer, device: Any = None) -> dict[str, float]:
        """One optimisation step on ``batch`` (``(inputs, targets)`` or ``{"image", "label"}``).

        Returns:
            ``loss``, each term (``dice_loss``, ``bce_loss``, ...), ``dice`` on the batch and ``lr``.

        Raises:
            SettingsError: :meth:`setup_loss_function` was not called.
        """
        loss = self._require("loss_function", "setup_loss_function(config)")
        self._begin(model, batch)
        metrics = train_step(model, batch, optimizer, loss, device, self.threshold)
        self._steps.add(metrics)
        self._total_steps += 1
        return metrics

    def process_function(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: Any = None) -> Any:
        """The same step as :meth:`train_step`, as a process function for a plain ``ignite.engine.Engine``."""
        return process_function(model, optimizer, self._require("loss_function", "setup_loss_function(config)"), device, self.threshold)

    def validation_step(self, model: torch.nn.Module, val_loader: Any, device: Any) -> dict[str, float]:
        """Mean Dice (``val_dice``) over ``val_loader``'s whole volumes by sliding-window inference (windows of
        ``roi_size``)."""
        if self.roi_size is None:
            raise SettingsError("validation_step needs roi_size: pass TrainingManager(..., roi_size=(x, y, z)) or run a train_step first")
        return validate(model, val_loader, device, self.roi_size, self.threshold)

    def _close_epoch(self, epoch: int, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
        """The record of epoch ``epoch`` (0-based): made, and the loss schedule stepped, only by the first of
        :meth:`save_checkpoint` / :meth:`end_epoch` for that epoch; the second gets the same record."""
        number = int(epoch) + 1
        if self._closed is not None and self._closed["epoch"] == number:
            return self._closed
        means = self._steps.means()
        record: dict[str, Any] = {"epoch": number, **means, "steps": self._steps.steps}
        if self.loss_function is not None:
            record.update(schedule_values(self.loss_function.weights, None))
        if self.loss_scheduler is not None:
            self.loss_scheduler.step(epoch, scalar_metrics(metrics) or None)
        self._steps.reset()
        self._closed, self._closed_means = record, means
        return record

    def _ended(self, record: Mapping[str, Any]) -> bool:
        return bool(self.history) and self.history[-1] is record

    def save_checkpoint(
        self, model: torch.nn.Module, optimizer: Any = None, scheduler: Any = None, epoch: int = 0, metrics: Mapping[str, Any] | None = None
    ) -> Path | None:
        """Offer epoch ``epoch``'s state (model, optimizer, LR scheduler, loss schedule, MLflow run id, history) to
        the checkpoint strategy. Returns the file written, or None.

        The step values among ``metrics`` (the seed passes ``{**step_metrics, **val_metrics}``: ``loss``, the terms,
        ``dice``, ``lr`` of the last step) are replaced by their epoch means, so the checkpoint's metrics and score
        are those of the history. Called after :meth:`end_epoch` of the same epoch, it saves that epoch's record (the
        schedule is not stepped again) and logs the save to MLflow.

        Raises:
            SettingsError: :meth:`setup_checkpointing` was not called.
        """
        manager = self._require("checkpoint_manager", "setup_checkpointing(config)")
        record = self._close_epoch(epoch, metrics)
        ended = self._ended(record)
        values = dict(metrics or {})
        values.update({k: self._closed_means[k] for k in values if k in self._closed_means})
        for key, value in scalar_metrics(values).items():
            record.setdefault(key, value)
        history = [*self.history] if ended else [*self.history, record]
        extra = {STATE_KEYS["history"]: {"history": [dict(r) for r in history]}}
        if self.loss_scheduler is not None:
            extra[STATE_KEYS["loss_schedule"]] = self.loss_scheduler.state_dict()
        if self.tracker is not None:
            extra[STATE_KEYS["tracker"]] = self.tracker.state_dict()
        path = manager.save_checkpoint(model, optimizer, scheduler, epoch + 1, values, iteration=self._total_steps, extra_state=extra)
        self._saved = (record["epoch"], path)
        if ended:
            if self.tracker is not None and self.tracker.active:
                self.tracker.log_checkpoint_events()
            if self.plots and path is not None:
                self.plot()
        return path

    def end_epoch(self, epoch: int, step_metrics: Mapping[str, Any] | None = None, val_metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Close epoch ``epoch``: record it (epoch means of the steps, weights in force, ``val_metrics``, time, the
        checkpoint decision), log it to MLflow (all but ``epoch`` and ``steps``), refresh the plot.

        Returns:
            the epoch's record, with ``checkpoint_path``: the file :meth:`save_checkpoint` wrote for this epoch, or
            None (nothing saved, or ``end_epoch`` came first: that save returns its file itself).
        """
        record = self._close_epoch(epoch, val_metrics)
        if not self._ended(record):
            record.update(scalar_metrics(val_metrics))
            for key, value in scalar_metrics(step_metrics).items():
                record.setdefault(key, value)  # the epoch means stay; the last step's values fill only what is missing
            now = time.perf_counter()
            record["time_s"] = now - self._epoch_clock
            self._epoch_clock = now
            self.history.append(record)
            if self.tracker is not None and self.tracker.active:
                self.tracker.log_metrics({k: v for k, v in record.items() if k not in NOT_LOGGED}, record["epoch"])
                self.tracker.log_checkpoint_events()
            if self.plots:
                self.plot()
        saved = self._saved if self._saved is not None and self._saved[0] == record["epoch"] else None
        return {**record, "checkpoint_path": None if saved is None or saved[1] is None else str(saved[1])}

    # ------------------------------------------------------------------------------------------------ resume
    def resume(
        self, model: torch.nn.Module, optimizer: Any = None, scheduler: Any = None, checkpoint: str | Path = "auto",
        num_epochs: int | None = None,
    ) -> int:
        """Load a checkpoint (``"auto"``, ``"best"``, ``"last"`` or a file) into the objects and the manager (loss
        schedule, history, MLflow run, which is then continued).

        Args:
            num_epochs: the run's (new) number of epochs: a :class:`~torch.optim.lr_scheduler.CosineAnnealingLR`
                ``scheduler`` restored with the old run's ``T_max`` is stretched to it
                (:func:`pipeline.cosine_lr.stretch_cosine`), so an extended run keeps annealing instead of the learning
                rate climbing back up.

        Returns:
            the next epoch to train (0-based, for ``range(start, num_epochs)``); 0 when ``"auto"`` finds nothing.
        """
        manager = self._require("checkpoint_manager", "setup_checkpointing(config)")
        try:
            info = manager.load_checkpoint(checkpoint, model, optimizer, scheduler)
        except CheckpointError:
            if checkpoint == "auto" and not manager.store.entries:
                return 0
            raise
        state = info["state"]
        if self.loss_scheduler is not None and STATE_KEYS["loss_schedule"] in state:
            self.loss_scheduler.load_state_dict(state[STATE_KEYS["loss_schedule"]])
        if self.tracker is not None and STATE_KEYS["tracker"] in state:
            self.tracker.load_state_dict(state[STATE_KEYS["tracker"]])
        self.history[:] = [dict(r) for r in state.get(STATE_KEYS["history"], {}).get("history", [])]
        self._total_steps = int(info.get("iteration") or 0)
        self._closed, self._saved = None, None
        if num_epochs and isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
            stretch_cosine(scheduler, num_epochs)
        logger.info("resumed %s from %s (epoch %s)", self.model_name, info["path"], info["epoch"])
        return int(info["epoch"] or 0)

    # ------------------------------------------------------------------------------------------------ ignite
    def attach(self, trainer: Any, evaluator: Any = None, to_save: Mapping[str, Any] | None = None, resume: str | Path | None = None) -> "TrainingManager":
        """Put this manager's loss, loss schedule, checkpointing, history, plots and MLflow run on Ignite engines
        (a plain Ignite engine or MONAI's ``SupervisedTrainer``), through
        :func:`~pipeline.training.attach.attach_training_handlers`, the function the bundle uses too:

        - the loss: a MONAI trainer's ``loss_function`` becomes the manager's (a plain engine's process function
          should call ``manager.loss_function``, e.g. ``Engine(manager.process_function(model, optimizer, device))``);
        - the loss-weight schedule: a :class:`~pipeline.schedules.LossScheduleHandler` with the configured schedule
          (constant weights without one), so every epoch has its weights and term losses;
        - history: the trainer's :class:`~pipeline.epoch_summary.EpochSummaryLogger` is the manager's ``history`` (with the
          optimizer's ``lr``); the plot is refreshed at each epoch's start and at ``COMPLETED``, when the history is
          exported;
        - checkpoints: a :class:`~pipeline.checkpoint.CheckpointHandler` with the manager's strategy, saving
          ``to_save`` (default for a MONAI trainer: network, optimizer, trainer) plus what it finds on the trainer
          (schedule, history, MLflow run id, LR scheduler, random generators, ...); a strategy monitoring
          ``val_dice`` (the original API's name) follows a MONAI evaluator's key metric ``val_mean_dice``;
        - MLflow: the manager's tracker, when on.

        Call it after the validation handlers are attached (so the epoch's record holds the validation metrics).

        Args:
            resume: ``"auto"``, ``"best"``, ``"last"`` or a checkpoint file to continue from when the trainer starts
                (None: from scratch); the MLflow run of that checkpoint is continued.

        Returns:
            the manager.

        Raises:
            SettingsError: loss or checkpointing not set up, a plain engine without ``to_save``, or attached twice.
        """
        loss = self._require("loss_function", "setup_loss_function(config)")
        self._require("checkpoint_manager", "setup_checkpointing(config)")
        if self.checkpoint_handler is not None:
            raise SettingsError("this TrainingManager is already attached to a trainer")
        states = dict(to_save) if to_save is not None else default_to_save(trainer)
        models = [obj for obj in states.values() if isinstance(obj, torch.nn.Module)]
        if models:
            self.describe_model(models[0])
        if getattr(trainer, "loss_function", loss) is not loss:
            logger.info("the trainer's loss_function is replaced by the manager's %s", type(loss).__name__)
            trainer.loss_function = loss
        schedule = None
        if self.loss_scheduler is not None:
            self.loss_scheduler.close()  # the handler's own scheduler takes over the same schedule
            setting = self.loss_config["scheduler"]
            name = setting if isinstance(setting, str) else setting["type"]
            schedule = LossScheduleHandler(loss, name, None if isinstance(setting, str) else setting.get("params"))
            self.loss_scheduler = schedule.scheduler
        else:
            schedule = LossScheduleHandler(loss, "constant")  # the same handler publishes the constant weights
        epoch_log = attached_handler(trainer, Events.EPOCH_COMPLETED, EpochSummaryLogger) or EpochSummaryLogger(evaluator=evaluator)
        states[STATE_KEYS["loss_schedule"]], states[STATE_KEYS["history"]] = schedule, epoch_log
        if self.tracker is not None:
            states[STATE_KEYS["tracker"]] = self.tracker
        key_metric = getattr(getattr(evaluator, "state", None), "key_metric_name", None)
        strategy = self.checkpoint_manager.strategy
        if strategy.monitor == VAL_METRIC and key_metric and key_metric != VAL_METRIC:
            logger.info("checkpoints monitor the evaluator's key metric %s (configured: %s)", key_metric, VAL_METRIC)
            strategy.monitor = self.checkpoint_manager.monitor_metric = key_metric
        checkpoints = self._checkpoint_handler(states, resume)
        handlers = attach_training_handlers(
            trainer, evaluator, loss=loss, schedule=schedule, checkpoints=checkpoints, tracker=self.tracker, epoch_log=epoch_log
        )
        self.history = handlers.epoch_log.history
        optimizers = [getattr(trainer, "optimizer", None), *states.values()]
        optimizer = next((o for o in optimizers if isinstance(o, torch.optim.Optimizer)), None)
        if optimizer is not None:
            trainer.add_event_handler(Events.EPOCH_COMPLETED, self._record_lr, optimizer)
        if self.plots:  # at the next epoch's start: the checkpoint handler, last at EPOCH_COMPLETED, has decided
            trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: self.plot())
        trainer.add_event_handler(Events.COMPLETED, lambda engine: self._write_exports())  # plot included
        self.checkpoint_handler, self.trainer = checkpoints, trainer
        return self

    def _checkpoint_handler(self, states: Mapping[str, Any], resume: str | Path | None) -> CheckpointHandler:
        """A checkpoint handler with this manager's strategy, folder and settings; the CheckpointManager then reads
        the handler's checkpointer, so its summary and lists show what the handler saves."""
        cm = self.checkpoint_manager
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
        if self.tracker is not None:
            self.tracker.checkpoint = handler
        return handler

    def _record_lr(self, engine: Any, optimizer: torch.optim.Optimizer) -> None:
        """The epoch's ``lr`` in the history (as the hand-written loop records it) and, for an engine the tracker
        does not take it from (a plain Ignite engine), in MLflow."""
        lr = float(optimizer.param_groups[0]["lr"])
        if self.history and self.history[-1].get("epoch") == engine.state.epoch:
            self.history[-1]["lr"] = lr
        tracker = self.tracker
        if tracker is not None and tracker.active and not isinstance(getattr(engine, "optimizer", None), torch.optim.Optimizer):
            tracker.log_metrics({"lr": lr}, engine.state.epoch)

    # ------------------------------------------------------------------------------------------------ outputs
    @property
    def _checkpointer(self) -> Any:
        return None if self.checkpoint_manager is None else self.checkpoint_manager.checkpointer

    def records(self) -> list[dict[str, Any]]:
        """The history with each epoch's checkpoint decisions (:func:`pipeline.history.with_checkpoints`)."""
        saves = [] if self._checkpointer is None else self._checkpointer.history
        return with_checkpoints(self.history, saves)

    def plot(self) -> Path:
        """Write ``<model_name>_training_curves.png`` (losses and terms, loss weights, validation with checkpoints);
        under ``torch.distributed`` only rank 0 writes. Returns its path."""
        path = self.model_dir / f"{self.model_name}_training_curves.png"
        if idist.get_rank() != 0 or not self.history:
            return path
        return plot_training_curves(self.records(), path, title=f"{self.model_name}: training")

    def get_checkpoint_summary(self) -> dict[str, Any]:
        """The checkpoint manager's summary (strategy, ``total_checkpoints``, best, the files) and its save decisions."""
        manager = self._require("checkpoint_manager", "setup_checkpointing(config)")
        return {**manager.get_checkpoint_summary(), "decisions": list(self._checkpointer.history)}

    def get_training_summary(self) -> dict[str, Any]:
        """``training_progress`` (``total_epochs``, ...), ``model_info`` (``best_metric``, ...), ``loss_info``,
        ``checkpoint_info`` (``total_checkpoints``, ...) and ``tracking``, as the seed reports them."""
        loss_info = {
            "config": self.loss_config,
            "weights": None if self.loss_function is None else dict(self.loss_function.weights),
            "scheduler": None if self.loss_scheduler is None else self.loss_scheduler.schedule.name,
        }
        tracking = {"enabled": self.tracker is not None}
        if self.tracker is not None:
            tracking.update(tracking_uri=self.tracker.tracking_uri, run_id=self.tracker.run_id, experiment=self.tracker.experiment_name)
        return training_summary(
            self.model_name, str(self.model_dir), self.history,
            None if self.checkpoint_manager is None else self.get_checkpoint_summary(),
            self.model_info, loss_info, tracking, time.perf_counter() - self._start,
            self._total_steps if self.trainer is None else self.trainer.state.iteration,
        )

    def export_training_data(self) -> Path:
        """Write the history (``<model_name>_history.json`` / ``.csv``), the plot and ``<model_name>_training_data.json``
        (summary and history together); with MLflow, log the checkpoint saves not logged yet and these files and the
        best checkpoint as artifacts (the run stays open: :meth:`finish` ends it, or the interpreter's exit does).
        Under ``torch.distributed`` only rank 0 writes and logs. Returns the path of ``_training_data.json``."""
        path = self._write_exports()
        if self.tracker is not None and self.tracker.active:
            self.tracker.log_checkpoint_events()
            self.tracker.log_artifacts()
        return path

    def _write_exports(self) -> Path:
        path = self.model_dir / f"{self.model_name}_training_data.json"
        if idist.get_rank() != 0:
            return path
        records = self.records()
        export_history(records, self.model_dir, f"{self.model_name}_history")
        if self.plots:
            self.plot()
        payload = {"summary": self.get_training_summary(), "history": records}
        write_json(path, payload)
        return path

    def artifact_files(self) -> list[Path]:
        """The exported files that exist (what the MLflow run keeps as artifacts, with the best checkpoint)."""
        names = ["_history.json", "_history.csv", "_training_curves.png", "_training_data.json"]
        return [p for p in (self.model_dir / f"{self.model_name}{n}" for n in names) if p.is_file()]

    def finish(self, status: str = "FINISHED") -> Path:
        """End of a hand-written training: export (:meth:`export_training_data`), log the files and the best
        checkpoint to MLflow and end the run with ``status``. Returns the export path."""
        try:
            return self.export_training_data()
        finally:
            if self.tracker is not None:
                self.tracker.end(status)

    def __enter__(self) -> "TrainingManager":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        """:meth:`finish`; on an exception ``finish("FAILED")`` (the epochs so far exported and logged), and the
        exception goes on."""
        if error is None:
            self.finish()
            return
        try:
            self.finish("FAILED")
        except Exception as failure:  # noqa: BLE001 - the training's own exception is the one to see
            logger.warning("exporting after %s failed: %s", type(error).__name__, failure)
