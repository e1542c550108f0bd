"""MLflowTracker: one MLflow run per training, continued on resume; an Ignite handler with engine-free methods."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler, register_checkpoint_events
from pipeline.errors import SettingsError
from pipeline.epoch_loss import attach_epoch_loss
from pipeline.epoch_summary import schedule_values
from pipeline.handler_order import run_last
from pipeline.tracking.mlflow_store import (
    ARTIFACTS_DIR,
    flatten_params,
    get_or_create_experiment,
    mlflow_client,
    resolve_tracking_uri,
)

__all__ = ["MLflowTracker", "MODEL_DIR_TAG", "RESUMES_TAG"]

logger = logging.getLogger(__name__)

#: tags the tracker sets on its runs: the model folder, and how many times the run was continued
MODEL_DIR_TAG = "pipeline.model_dir"
RESUMES_TAG = "pipeline.resumes"
_CHECKPOINT_HISTORY = "checkpoints/history.json"
_BEST_MODEL_DIR = "best_model"

Artifacts = Sequence[str | Path] | Callable[[], Iterable[str | Path]]


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in metrics.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


class MLflowTracker:
    """Track a training run in MLflow: parameters, per-epoch metrics, checkpoint events and artifacts.

    One MLflow run per training: the run is created at the trainer's ``STARTED`` event, or, when
    :meth:`load_state_dict` gave it a run id (the checkpoint handler restores it on resume), that run is continued
    (status set back to ``RUNNING``, tag ``pipeline.resumes`` counted up; a run that had crashed or failed is named in
    a warning). A fresh start never appends to an earlier run: when an earlier run of the same model folder never
    ended (a crashed process), a warning says so and a new run is created.

    Logged:

    - at start: ``params`` flattened (``{"loss": {"dice_weight": 0.7}}`` -> ``loss.dice_weight``); parameters a
      continued run already has keep their first value (a changed one is reported in a warning);
    - per epoch (step = trainer epoch): ``loss`` (the epoch's mean training loss over every
      process, :class:`~pipeline.epoch_loss.EpochLoss`), ``time_s``, ``lr`` (of a MONAI
      trainer's optimizer), the trainer's own ``state.metrics``, ``weight_<term>`` / ``<term>_loss`` from
      ``trainer.state.loss_weights`` / ``trainer.state.loss_components`` (published by
      :class:`~pipeline.schedules.LossScheduleHandler`), and the evaluator's metrics after each validation;
    - each checkpoint save, as the :class:`~pipeline.checkpoint.CheckpointHandler` announces it
      (``CheckpointHandler.SAVED_CHECKPOINT``; for a hand-written loop, :meth:`log_checkpoint_events` reads
      ``checkpoint``, a :class:`~pipeline.checkpoint.CheckpointManager`): metrics ``checkpoint_saved`` (1) and
      ``checkpoint_best`` (1 when saved as best) at the epoch of the save, and the full save history as the artifact
      ``checkpoints/history.json``;
    - at ``COMPLETED`` (and every epoch with ``artifacts_every_epoch``): the files of ``artifacts`` and the best
      checkpoint (under ``best_model/``); then the run ends ``FINISHED``. On an exception it ends ``FAILED``.

    Default store: the embedded SQLite database ``sqlite:///<model_dir>/mlflow.db`` with artifacts under
    ``<model_dir>/mlartifacts`` (no server); ``MLFLOW_TRACKING_URI`` or ``tracking_uri`` override it. MLflow's usage
    telemetry is switched off. Under ``torch.distributed`` only rank 0 talks to MLflow; the others do nothing.

    Example::

        tracker = MLflowTracker("runs/x", params={"loss": loss_config}, checkpoint=checkpoints)
        tracker.attach(trainer, evaluator)
        CheckpointHandler("runs/x/checkpoints", {..., "tracker": tracker}).attach(trainer, evaluator)

    The engine-free methods (:meth:`start`, :meth:`log_metrics`, :meth:`log_checkpoint_events`,
    :meth:`log_artifacts`, :meth:`end`) serve hand-written loops (:class:`~pipeline.training.TrainingManager`).

    Args:
        model_dir: the training's output folder (holds the default store).
        run_name: name of the MLflow run (default: the folder's name).
        experiment_name: MLflow experiment (created if missing).
        tracking_uri: MLflow tracking URI; default ``$MLFLOW_TRACKING_URI`` or the embedded SQLite store.
        params: configuration to log as parameters (nested dicts are flattened).
        artifacts_every_epoch: also log the artifacts at each epoch end (e.g. to see refreshed plots during training).
        artifacts: files to log as artifacts, or a function returning them (called when logging, so it can write
            them first).
        checkpoint: the checkpoint handler or manager whose decisions to log and whose best checkpoint to keep.
        tags: extra MLflow tags of the run.
    """

    def __init__(
        self,
        model_dir: str | Path,
        run_name: str | None = None,
        experiment_name: str = "vessel-segmentation",
        tracking_uri: str | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_every_epoch: bool = False,
        artifacts: Artifacts | None = None,
        checkpoint: Any = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not experiment_name:
            raise SettingsError("experiment_name must be a non-empty string")
        self.model_dir = Path(model_dir)
        self.run_name = run_name or self.model_dir.resolve().name
        self.experiment_name = experiment_name
        self.tracking_uri = resolve_tracking_uri(model_dir, tracking_uri)
        self.params = dict(params or {})
        self.artifacts_every_epoch = artifacts_every_epoch
        self.artifacts = artifacts
        self.checkpoint = checkpoint
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self.active = False
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = None
        self._client: Any = None
        self._checkpoints_logged = 0
        self._handled_error: BaseException | None = None
        self._epoch_start = 0.0

    # ------------------------------------------------------------------------------------------------ store
    @staticmethod
    def _is_main() -> bool:
        return idist.get_rank() == 0

    @property
    def client(self) -> Any:
        """The :class:`mlflow.MlflowClient` of the store (created on first use)."""
        if self._client is None:
            self._client = mlflow_client(self.tracking_uri)
        return self._client

    def _artifact_root(self) -> Path | None:
        """Artifacts of a new experiment in a SQLite store go next to the database file (``mlartifacts/``); a server
        decides for itself."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        return Path(self.tracking_uri[len("sqlite:///"):]).parent / ARTIFACTS_DIR

    # ------------------------------------------------------------------------------------------------ engine-free
    def start(self) -> str | None:
        """Create the run, or continue the one this tracker knows (restored by :meth:`load_state_dict`, or started
        before in this process); log the parameters. Returns the run id (None on ranks other than 0)."""
        if not self._is_main():
            return None
        if self.active:
            return self.run_id
        experiment_id = get_or_create_experiment(self.client, self.experiment_name, self._artifact_root())
        run = self._continue() if self.run_id is not None else None
        if run is None:
            run = self._create(experiment_id)
        self.run_id, self.active = run.info.run_id, True
        self.log_params(self.params)
        return self.run_id

    def _continue(self) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(self.run_id)
        except MlflowException:
            run = None
        if run is None or run.info.lifecycle_stage != "active":
            logger.warning(
                "MLflow run %s (from the checkpoint) is not in %s (or was deleted): starting a new run",
                self.run_id, self.tracking_uri,
            )
            return None
        status = run.info.status
        if status != "FINISHED":
            logger.warning(
                "continuing MLflow run %s, left %s by a training that crashed or failed; epochs after the checkpoint "
                "that run had already logged are logged again (the later value of a step is the resumed one)",
                self.run_id, status,
            )
        self.client.update_run(self.run_id, status="RUNNING")
        resumes = int(run.data.tags.get(RESUMES_TAG, "0")) + 1
        self.client.set_tag(self.run_id, RESUMES_TAG, str(resumes))
        self.client.set_tag(self.run_id, f"pipeline.resume_{resumes}_from_status", status)
        logger.info("continuing MLflow run %s (resume %d)", self.run_id, resumes)
        return run

    def _create(self, experiment_id: str) -> Any:
        model_dir = str(self.model_dir.resolve())
        running = self.client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'")
        unfinished = [r for r in running if r.data.tags.get(MODEL_DIR_TAG) == model_dir]
        tags = {MODEL_DIR_TAG: model_dir, RESUMES_TAG: "0", **self.tags}
        if unfinished:
            ids = [r.info.run_id for r in unfinished]
            logger.warning(
                "MLflow run(s) %s of %s never ended (a crashed training?): a new run is started, not appended to "
                "them; to continue one, resume from its checkpoint", ids, model_dir,
            )
            tags["pipeline.unfinished_runs_before"] = ",".join(ids)
        run = self.client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        logger.info("MLflow run %s (%s) in %s", run.info.run_id, self.run_name, self.tracking_uri)
        return run

    def _require_run(self) -> bool:
        if not self._is_main():
            return False
        if not self.active:
            raise SettingsError("the MLflow run is not started: call start() first (attach() does it at STARTED)")
        return True

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` (flattened); keys the run already has keep their value (a different one is reported)."""
        if not self._require_run() or not params:
            return
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        new = {}
        for key, value in flatten_params(params).items():
            if key not in existing:
                new[key] = value
            elif existing[key] != value:
                logger.warning("MLflow parameter %s stays %r in run %s (now %r)", key, existing[key], self.run_id, value)
        items = [Param(k, v) for k, v in new.items()]
        for first in range(0, len(items), 100):  # MLflow's batch limit for parameters
            self.client.log_batch(self.run_id, params=items[first:first + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log the scalar entries of ``metrics`` at ``step`` (non-scalars are skipped)."""
        if not self._require_run():
            return
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, v, stamp, int(step)) for k, v in _scalars(metrics).items()]
        for first in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[first:first + 1000])

    def log_checkpoint_events(self, history: Sequence[Mapping[str, Any]] | None = None) -> int:
        """Log the checkpoint saves of ``history`` not logged yet (default: ``checkpoint.checkpointer.history``);
        returns how many."""
        if (history is None and self.checkpoint is None) or not self._require_run():
            return 0
        history = list(self.checkpoint.checkpointer.history if history is None else history)
        new = history[self._checkpoints_logged:]
        for record in new:
            reasons = record.get("reasons", [])
            self.log_metrics({"checkpoint_saved": 1.0, "checkpoint_best": float("best" in reasons)}, record["epoch"])
        if new:
            self.client.log_dict(self.run_id, history, _CHECKPOINT_HISTORY)
        self._checkpoints_logged = len(history)
        return len(new)

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint file of ``checkpoint`` (None without one)."""
        if self.checkpoint is None:
            return None
        best = getattr(self.checkpoint, "best_checkpoint", None)
        if best is None and callable(getattr(self.checkpoint, "get_best_checkpoint_path", None)):
            best = self.checkpoint.get_best_checkpoint_path()
        return None if best is None or callable(best) else Path(best)

    def log_artifacts(self) -> list[str]:
        """Log the files of ``artifacts`` (at the artifact root) and the best checkpoint (under ``best_model/``);
        returns the artifact paths logged."""
        if not self._require_run():
            return []
        files = self.artifacts() if callable(self.artifacts) else (self.artifacts or [])
        logged = []
        for file in files:
            path = Path(file)
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
                logged.append(path.name)
            else:
                logger.warning("artifact %s does not exist: not logged", path)
        flush = getattr(getattr(self.checkpoint, "checkpointer", None), "flush", None)
        if callable(flush):
            flush()  # a checkpoint still being written in the background (async_save) is complete before it is copied
        best = self.best_checkpoint()
        if best is not None and best.is_file():
            self.client.log_artifact(self.run_id, str(best), _BEST_MODEL_DIR)
            logged.append(f"{_BEST_MODEL_DIR}/{best.name}")
        return logged

    def end(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``); nothing when no run is active."""
        if not self._is_main() or not self.active:
            return
        self.client.set_terminated(self.run_id, status=status)
        self.active = False
        logger.info("MLflow run %s ended %s", self.run_id, status)

    # ------------------------------------------------------------------------------------------------ ignite
    def attach(self, trainer: Engine, evaluator: Engine | None = None) -> None:
        """Attach to ``trainer`` (a plain Ignite engine or MONAI's ``SupervisedTrainer``); the metrics of
        ``evaluator`` are logged after each of its runs, at the trainer's epoch."""
        self.trainer, self.evaluator = trainer, evaluator
        attach_epoch_loss(trainer)  # the epoch's mean loss over every process, as the trainer's metric "loss"
        register_checkpoint_events(trainer)
        trainer.add_event_handler(CheckpointHandler.SAVED_CHECKPOINT, self._checkpoint_saved)
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        trainer.add_event_handler(Events.COMPLETED, self._completed)
        trainer.add_event_handler(Events.EXCEPTION_RAISED, self._failed)
        trainer.add_event_handler(Events.EXCEPTION_RAISED, self._reraise)
        if evaluator is not None:
            evaluator.add_event_handler(Events.COMPLETED, self._validated)

    def _started(self, engine: Engine) -> None:
        # after the handlers attached later too, so a failing one still ends the run, and so the error propagates
        run_last(engine, Events.EXCEPTION_RAISED, self._failed)
        run_last(engine, Events.EXCEPTION_RAISED, self._reraise)
        self._handled_error = None
        self.start()

    def _epoch_started(self, engine: Engine) -> None:
        self._epoch_start = time.perf_counter()

    def _checkpoint_saved(self, engine: Engine) -> None:
        if self.active:
            self.log_checkpoint_events(engine.state.saved_checkpoint["history"])

    def _epoch_completed(self, engine: Engine) -> None:
        state = engine.state
        values: dict[str, Any] = dict(_scalars(state.metrics or {}))  # "loss" among them
        values.update(schedule_values(getattr(state, "loss_weights", None), getattr(state, "loss_components", None)))
        optimizer = getattr(engine, "optimizer", None)  # MONAI's trainers know theirs
        if isinstance(optimizer, torch.optim.Optimizer):
            values["lr"] = optimizer.param_groups[0]["lr"]
        values["time_s"] = time.perf_counter() - self._epoch_start
        self.log_metrics(values, state.epoch)
        if self.artifacts_every_epoch:
            self.log_artifacts()

    def _validated(self, evaluator: Engine) -> None:
        if self.active and self.trainer is not None:
            self.log_metrics(evaluator.state.metrics or {}, self.trainer.state.epoch)

    def _completed(self, engine: Engine) -> None:
        self.log_checkpoint_events()
        self.log_artifacts()
        if self.active and "pipeline.error" in self.client.get_run(self.run_id).data.tags:
            self.client.delete_tag(self.run_id, "pipeline.error")  # a resumed run that finished has no error left
        self.end("FINISHED")

    def _failed(self, engine: Engine, error: BaseException) -> None:
        if error is self._handled_error:  # Ignite fires the event again when a handler re-raises
            return
        self._handled_error = error
        if self.active:
            try:
                self.log_checkpoint_events()
                self.client.set_tag(self.run_id, "pipeline.error", f"{type(error).__name__}: {error}"[:5000])
            finally:
                self.end("FAILED")

    @staticmethod
    def _reraise(engine: Engine, error: BaseException) -> None:
        raise error

    # ------------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The run id and how many checkpoint saves were logged (plain str/int: loads with ``weights_only=True``)."""
        return {"run_id": self.run_id or "", "checkpoints_logged": int(self._checkpoints_logged)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the run ``state["run_id"]`` at the next :meth:`start` (an active run of this tracker is ended
        first)."""
        run_id = str(state.get("run_id") or "") or None
        if self.active and run_id != self.run_id:
            self.end("KILLED")
        self.run_id = run_id
        self._checkpoints_logged = int(state.get("checkpoints_logged", 0))
