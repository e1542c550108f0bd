"""The Ignite glue: trainer/evaluator events -> strategy -> store, and resume."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import CheckpointEvents

from pipeline.checkpoint.checkpointer import RESUME_CHOICES
from pipeline.checkpoint.settings import STRATEGY_DEFAULT, CheckpointSettings
from pipeline.checkpoint.state.distributed import PerRank, agree, is_writer
from pipeline.checkpoint.state.loader_state import LoaderState, finish_epoch_iterator
from pipeline.checkpoint.storage.manifest import CheckpointEntry, scalar_metrics
from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore, load_checkpoint_file
from pipeline.checkpoint.state.discovery import discover_training_state, has_state, state_target, training_loader
from pipeline.checkpoint.strategies import CheckpointEvent, CheckpointStrategy
from pipeline.errors import CheckpointError, InputError, SettingsError
from pipeline.handler_order import run_first, run_last

__all__ = ["CheckpointHandler", "STATE_KEY", "register_checkpoint_events"]

logger = logging.getLogger(__name__)

#: the key under which the handler saves its own state next to the objects of ``to_save``.
STATE_KEY = "checkpointer"


def register_checkpoint_events(engine: Engine) -> None:
    """Register Ignite's checkpoint events (``CheckpointEvents.SAVED_CHECKPOINT``) on ``engine`` unless they already
    are, so that handlers can listen to them before the checkpoint handler is attached."""
    if not engine.has_registered_events(CheckpointEvents.SAVED_CHECKPOINT):
        engine.register_events(*CheckpointEvents)


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))


class CheckpointHandler:
    """Save checkpoints of a training run by a named strategy, crash-safely, and resume from them.

    Attach it to a trainer (a plain :class:`ignite.engine.Engine` or MONAI's ``SupervisedTrainer``) and, for the
    metric-driven strategies, give it the evaluator whose metrics it should read. Decisions are taken at the end of
    each epoch (and of each iteration for strategies that work per iteration), *after* every other handler of that
    event (validation, LR scheduler steps, loggers), so a checkpoint holds the state the next epoch starts from.

    A checkpoint holds the whole training state, found from the trainer
    (:func:`~pipeline.checkpoint.state.discovery.discover_training_state`): network, optimizer, AMP scaler, LR
    scheduler, loss-weight schedules and other stateful handlers, epoch and iteration, the random generators of every
    process, the loader's shuffling and augmentation generators, the best metric so far, the strategy's state and the
    training clock. A run resumed from it continues exactly as the uninterrupted run would (bit for bit on CPU).

    Each checkpoint written fires Ignite's ``CheckpointHandler.SAVED_CHECKPOINT`` (``Checkpoint.SAVED_CHECKPOINT``) on
    the trainer once the file is durable, with ``trainer.state.saved_checkpoint`` telling what was saved: the manifest
    entry's fields (``file``, ``epoch``, ``iteration``, ``reasons``, ``metrics``, ``score``, ``size``, ``sha256``, ...),
    ``path``, ``evicted`` (the files retention removed after it) and ``history`` (every save so far, as
    :attr:`Checkpointer.history`). A background write (``async_save``) fires it on the training thread at the first
    event after the write completed. The MLflow tracker and the training curves listen to it.

    Under ``torch.distributed`` rank 0 decides and writes (and alone fires ``SAVED_CHECKPOINT``); the decision is broadcast, every rank takes part in
    gathering the per-process random state, the other ranks wait for rank 0, and every rank resumes from the same
    checkpoint.

    Example::

        handler = CheckpointHandler("runs/x/checkpoints", strategy="best", max_checkpoints=3, resume="auto")
        handler.attach(trainer, evaluator)   # monitor: the evaluator's key metric unless given
        trainer.run()                        # continues from the newest checkpoint that verifies, if any

    Args:
        checkpoint_dir: folder of the checkpoints and their manifest.
        to_save: objects with ``state_dict``/``load_state_dict`` to save under the given names (model, optimizer,
            ...); None to save only what is found from the trainer. What is found is added under its own names
            (unless ``discover=False``). The handler adds its own state under ``"checkpointer"``.
        strategy: a strategy name (``best``, ``epoch``, ``interval``, ``all``, ``adaptive``, ``performance_based``,
            ``time_based``) or a :class:`CheckpointStrategy`.
        model_name: file prefix.
        monitor: metric that scores checkpoints (default: the evaluator's key metric, for MONAI evaluators).
        mode: ``"max"`` or ``"min"``.
        max_checkpoints: retention of the strategy (its default when None).
        strategy_params: further parameters of the named strategy (e.g. ``{"every": 5}`` for ``interval``).
        save_last: write a ``last`` checkpoint at every epoch end the strategy skips.
        save_final: mark (or write) a ``final`` checkpoint when the run completes.
        save_on_exception: write an ``exception`` checkpoint when the run fails, then re-raise.
        save_optimizer: include optimizers of ``to_save``; save_scheduler: include LR schedulers.
        disk_budget: optional limit in bytes on the total size of the checkpoints.
        fsync: fsync every write (leave on unless the run is disposable).
        existing: when a run starts from scratch (not resumed) and the folder holds an earlier run's checkpoints:
            ``"error"`` (default) refuses, ``"replace"`` removes them once the new run's first checkpoint is durable,
            ``"keep"`` keeps them under retention.
        resume: ``"auto"``, ``"best"``, ``"last"`` or a checkpoint path to resume from when the trainer starts (see
            :meth:`resume`); None to start from scratch (or call :meth:`resume` yourself before ``run``).
        async_save: copy the state on the training thread and write it on a background thread; a save then blocks
            training for the copy only; a failed write is raised at the next save or when the run ends.
        discover: add the training state found from the trainer to ``to_save``.
        settings: a :class:`~pipeline.checkpoint.settings.CheckpointSettings` in place of the arguments from
            ``strategy`` to ``async_save`` (e.g. a :class:`~pipeline.checkpoint.CheckpointManager`'s ``settings``, so
            that both share one strategy).
    """

    #: fired on the trainer after each checkpoint written (Ignite's own event, as ``ignite.handlers.Checkpoint`` fires)
    SAVED_CHECKPOINT = CheckpointEvents.SAVED_CHECKPOINT

    def __init__(
        self,
        checkpoint_dir: str | Path,
        to_save: Mapping[str, Any] | None = None,
        strategy: str | CheckpointStrategy = "best",
        model_name: str = "model",
        monitor: str | None = None,
        mode: str | None = None,
        max_checkpoints: int | None = None,
        strategy_params: Mapping[str, Any] | None = None,
        save_last: bool = True,
        save_final: bool = True,
        save_on_exception: bool = True,
        save_optimizer: bool = True,
        save_scheduler: bool = True,
        disk_budget: int | None = None,
        fsync: bool = True,
        existing: str = "error",
        resume: str | Path | None = None,
        async_save: bool = False,
        discover: bool = True,
        settings: CheckpointSettings | None = None,
    ) -> None:
        if settings is None:
            settings = CheckpointSettings(
                strategy=strategy, model_name=model_name, monitor=monitor, mode=mode,
                max_checkpoints=STRATEGY_DEFAULT if max_checkpoints is None else max_checkpoints,
                strategy_params=dict(strategy_params or {}), save_last=save_last, save_optimizer=save_optimizer,
                save_scheduler=save_scheduler, disk_budget=disk_budget, fsync=fsync, existing=existing,
                async_save=async_save,
            )
        self.settings = settings.resolved()
        self.strategy = self.settings.strategy
        if to_save is None and not discover:
            raise SettingsError("to_save is needed when discover=False: there would be nothing to save")
        if resume is not None and not isinstance(resume, (str, Path)):
            raise SettingsError(f"resume must be None, one of {list(RESUME_CHOICES)} or a checkpoint path, got {resume!r}")
        self._save_optimizer, self._save_scheduler = self.settings.save_optimizer, self.settings.save_scheduler
        self._explicit = self._select(to_save, self._save_optimizer, self._save_scheduler) if to_save is not None else {}
        self._discovered: dict[str, Any] = {}
        self._discover = discover
        self._resume_request = resume
        self._pending: dict[str, Any] = {}  # states of a loaded checkpoint whose objects are found only at STARTED
        # only rank 0 sweeps the folder and writes; the others read the manifest rank 0 keeps
        self.checkpointer = self.settings.checkpointer(checkpoint_dir, writer=is_writer())
        self.save_final = save_final
        self.save_on_exception = save_on_exception
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = None
        self._fresh: tuple[int, dict[str, float]] | None = None  # (trainer epoch, metrics) of the last evaluation
        self._begun = False  # a run started, or a checkpoint was loaded: what is in the folder is this training's
        self._handled_error: BaseException | None = None
        self._elapsed = 0.0
        self._clock_start: float | None = None
        #: the checkpoint this run resumed from (an entry of this folder, or a path), None when it started afresh
        self.resumed_from: CheckpointEntry | Path | None = None
        self._announced: CheckpointEntry | None = None  # the newest save SAVED_CHECKPOINT was fired for

    @staticmethod
    def _select(to_save: Mapping[str, Any], save_optimizer: bool, save_scheduler: bool, check: bool = True) -> dict[str, Any]:
        if check and (not isinstance(to_save, Mapping) or not to_save):
            raise SettingsError("to_save must be a non-empty mapping of names to objects with state_dict()")
        if STATE_KEY in to_save:
            raise SettingsError(f"{STATE_KEY!r} is reserved for the checkpoint handler's own state in to_save")
        chosen = {}
        for name, obj in to_save.items():
            if not has_state(obj):
                raise SettingsError(f"to_save[{name!r}] ({type(obj).__name__}) has no state_dict()/load_state_dict()")
            if (isinstance(obj, torch.optim.Optimizer) and not save_optimizer) or (_is_scheduler(obj) and not save_scheduler):
                continue
            chosen[name] = obj
        return chosen

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def to_save(self) -> dict[str, Any]:
        """What a checkpoint holds besides the handler's own state: ``to_save`` as given, then what was found."""
        return {**self._explicit, **self._discovered}

    @property
    def last_saved(self) -> CheckpointEntry | None:
        """The newest checkpoint this handler wrote (with ``async_save``: once its write completed)."""
        return self.checkpointer.last_saved

    @property
    def store(self) -> CheckpointStore:
        if not is_writer():
            self.checkpointer.store.reload()  # rank 0 keeps the manifest
        return self.checkpointer.store

    @property
    def checkpoints(self) -> list[CheckpointEntry]:
        """The checkpoints on disk, oldest first."""
        return self.store.entries

    @property
    def best_checkpoint(self) -> Path | None:
        entry = self.checkpointer.best_entry
        return None if entry is None else self.store.path(entry)

    @property
    def last_checkpoint(self) -> Path | None:
        entry = self.store.newest()
        return None if entry is None else self.store.path(entry)

    def elapsed(self) -> float:
        """Training seconds so far, over every run and resume of this training."""
        running = 0.0 if self._clock_start is None else time.perf_counter() - self._clock_start
        return self._elapsed + running

    # ------------------------------------------------------------------------------------------------ attaching
    def attach(self, trainer: Engine, evaluator: Engine | None = None) -> None:
        """Attach to ``trainer``, reading validation metrics from ``evaluator`` when given.

        Raises:
            SettingsError: the strategy needs a monitored metric and none is given nor known from the evaluator.
        """
        if self.strategy.monitor is None and evaluator is not None:
            self.strategy.monitor = getattr(evaluator.state, "key_metric_name", None)
        if self.strategy.needs_monitor and self.strategy.monitor is None:
            raise SettingsError(
                f"checkpoint strategy {self.strategy.name!r} needs a metric to monitor: pass monitor=... "
                "(or an evaluator with a key metric)"
            )
        self.trainer, self.evaluator = trainer, evaluator
        register_checkpoint_events(trainer)
        if evaluator is not None:
            evaluator.add_event_handler(Events.COMPLETED, self._record_metrics)
        trainer.add_event_handler(Events.STARTED, self._started)
        # first: a resumed state must be in place before any other handler sees the run start
        run_first(trainer, Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._run_last)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        for event, handler in self._ordered_handlers():
            trainer.add_event_handler(event, handler)
        self._find_state()

    def _find_state(self) -> None:
        """(Re)discover the training state from the trainer; objects found only now (a loader given to ``run``, a
        scaler made by ``run``, handlers attached after this one) get the states of a checkpoint loaded before."""
        if not self._discover or self.trainer is None:
            return
        loader = self._discovered.get("train_loader")
        if loader is not None and state_target(loader) is not training_loader(self.trainer):
            del self._discovered["train_loader"]  # another run() with other data: its loader is the one to follow
        known = (self, *self._explicit.values(), *(state_target(v) for v in self._discovered.values()))
        found = discover_training_state(self.trainer, self.evaluator, exclude=known, taken=(*self._explicit, *self._discovered))
        # what was found before stays (with anything a resume gave it); only new objects are added
        self._discovered.update(self._select(found, self._save_optimizer, self._save_scheduler, check=False))
        for name in [n for n in self._pending if n in self._discovered]:
            self._discovered[name].load_state_dict(self._pending.pop(name))

    def _ordered_handlers(self) -> list[tuple[Events, Any]]:
        handlers: list[tuple[Events, Any]] = [(Events.EPOCH_COMPLETED, self._epoch_completed)]
        if "iteration" in self.strategy.levels:
            handlers.append((Events.ITERATION_COMPLETED, self._iteration_completed))
        handlers += [
            (Events.COMPLETED, self._completed),
            (Events.EXCEPTION_RAISED, self._exception_raised),
            (Events.EXCEPTION_RAISED, self._reraise),
        ]
        return handlers

    def _started(self, engine: Engine) -> None:
        self._find_state()
        if self._resume_request is not None and not self._begun:
            configured = engine.state.max_epochs
            self.resume(self._resume_request)
            if configured is not None and engine.state.max_epochs != configured:
                # the run's own setting wins (a longer run extends the resumed one), as MONAI's CheckpointLoader does
                engine.state.max_epochs = configured
                if engine.state.epoch >= configured:
                    logger.warning(
                        "the checkpoint is at epoch %d, which this run's max_epochs=%d has reached: nothing to train",
                        engine.state.epoch,
                        configured,
                    )
        if not self._begun:  # from scratch, not resumed
            agree(self.checkpointer.begin)
            self._begun = True
        if self._pending:
            logger.warning("checkpoint states %s have no object in this run; they were not restored", sorted(self._pending))
            self._pending = {}
        self._handled_error = None
        self._run_last(engine)
        # last of its event, right before Ignite makes the epoch's iterator (moved here, not while the event fires)
        run_last(engine, Events.EPOCH_STARTED, self._epoch_started)
        self._clock_start = time.perf_counter()

    def _run_last(self, engine: Engine) -> None:
        # run after every other handler of the same events, including those attached after this one and those that
        # other handlers move to the end at STARTED (hence again at every EPOCH_STARTED)
        for event, handler in self._ordered_handlers():
            run_last(engine, event, handler)
        # but save on an exception first, before a handler that re-raises it (MONAI's StatsHandler does) ends the
        # event; `_reraise`, last, makes sure the error still propagates when no other handler re-raises it
        run_first(engine, Events.EXCEPTION_RAISED, self._exception_raised)

    def _stop_clock(self) -> None:
        self._elapsed = self.elapsed()
        self._clock_start = None

    def _record_metrics(self, evaluator: Engine) -> None:
        epoch = self.trainer.state.epoch if self.trainer is not None else 0
        self._fresh = (epoch, scalar_metrics(evaluator.state.metrics))

    def _event(self, engine: Engine, level: str) -> CheckpointEvent:
        metrics: dict[str, float] | None
        if level != "epoch":
            metrics = None
        elif self.evaluator is None:
            metrics = scalar_metrics(engine.state.metrics)
        else:
            metrics = self._fresh[1] if self._fresh is not None and self._fresh[0] == engine.state.epoch else None
        return CheckpointEvent(
            epoch=engine.state.epoch,
            iteration=engine.state.iteration,
            metrics=metrics,
            elapsed=self.elapsed(),
            max_epochs=engine.state.max_epochs,
            level=level,
        )

    def _step(self, engine: Engine, level: str, extra: tuple[str, ...] = ()) -> CheckpointEntry | None:
        """Decide on rank 0 and tell every rank; gather the state on every rank; write on rank 0."""
        event = self._event(engine, level)
        prepared: list[dict[str, Any]] = []  # rank 0's record of the save

        def decide() -> list[str]:
            reasons = self.checkpointer.decide(event, extra)
            if reasons:
                prepared.append(self.checkpointer.prepare(event, reasons))
            return reasons

        reasons = agree(decide)
        self._announce(engine)  # a background write the decision waited for
        if not reasons:
            return None
        try:
            state = self._collect()
        except BaseException:
            if prepared:
                self.checkpointer.rollback(prepared[0])
            raise
        written = agree(lambda: self._write(event, prepared[0], state))
        self._announce(engine)
        return self.checkpointer.store.find(written) if written and is_writer() else None

    def _write(self, event: CheckpointEvent, record: dict[str, Any], state: Mapping[str, Any]) -> str | None:
        entry = self.checkpointer.write(event, record, state)
        if entry is None:  # written in the background
            logger.info("checkpoint of epoch %d, iteration %d queued (%s)", event.epoch, event.iteration, ", ".join(record["reasons"]))
            return None
        logger.info("checkpoint %s saved (%s)", entry.file, ", ".join(entry.reasons))
        return entry.file

    def _announce(self, engine: Engine) -> None:
        """Fire ``SAVED_CHECKPOINT`` for the newest checkpoint written, once, when its write is complete (rank 0)."""
        entry = self.checkpointer.last_saved
        writer = self.checkpointer.writer
        if entry is None or entry is self._announced or (writer is not None and writer.busy):
            return
        self._announced = entry
        history = copy.deepcopy(self.checkpointer.history)
        index = next((i for i in range(len(history) - 1, -1, -1) if history[i]["file"] == entry.file), len(history) - 1)
        history = history[: index + 1]  # not the save being prepared now
        record = history[-1] if history else {}
        engine.state.saved_checkpoint = {
            **entry.to_dict(), "reasons": list(record.get("reasons", entry.reasons)),  # as saved (a "final" mark comes later)
            "path": self.checkpointer.store.path(entry), "evicted": list(record.get("evicted", [])), "history": history,
        }
        engine.fire_event(CheckpointEvents.SAVED_CHECKPOINT)

    def _epoch_started(self, engine: Engine) -> None:
        self._announce(engine)  # a background write that completed during the last epoch
        loader = self._discovered.get("train_loader")
        if isinstance(loader, PerRank) and isinstance(loader.obj, LoaderState):
            loader.obj.start_epoch()

    def _epoch_completed(self, engine: Engine) -> None:
        if self._discover:
            finish_epoch_iterator(engine)
        self._step(engine, "epoch")

    def _iteration_completed(self, engine: Engine) -> None:
        length = engine.state.epoch_length
        if length and engine.state.iteration % length == 0:
            return  # the epoch end comes next and decides for this iteration too
        self._step(engine, "iteration")

    def _completed(self, engine: Engine) -> None:
        def final_needs_a_save() -> bool:
            self.checkpointer.flush()
            newest = self.store.newest()
            if newest is not None and newest.iteration == engine.state.iteration and "exception" not in newest.reasons:
                self.checkpointer.mark(newest, "final")
                return False
            return True

        if self.save_final and agree(final_needs_a_save):
            self._step(engine, "final", ("final",))
        agree(self.checkpointer.flush)
        self._announce(engine)
        self._stop_clock()

    def _exception_raised(self, engine: Engine, error: BaseException) -> None:
        if error is self._handled_error:  # Ignite fires the event again when a handler re-raises
            return
        self._handled_error = error
        self._stop_clock()
        try:  # a background write in flight first: the exception checkpoint comes after it
            self.checkpointer.flush()
            self._announce(engine)
        except Exception as write_error:
            logger.error("the last background checkpoint write failed: %s", write_error)
        # no collective here: the other processes may not have failed; rank 0 saves its own state only
        if self.save_on_exception and is_writer() and not isinstance(error, InputError):
            try:
                event = self._event(engine, "exception")
                entry = self.checkpointer.save(event, self.checkpointer.decide(event, ("exception",)), lambda: self._collect(gather=False))
                self.checkpointer.flush()
                logger.warning(
                    "training stopped by %s at epoch %d, iteration %d: exception checkpoint %s saved (resume='auto' "
                    "continues from the newest regular checkpoint; give this file's path to continue from it)",
                    type(error).__name__, event.epoch, event.iteration,
                    self.store.path(entry) if entry is not None else self.checkpointer.history[-1]["file"],
                )
            except Exception as save_error:  # the original error matters more; report both
                logger.error("could not save the exception checkpoint: %s", save_error)
        self._announce(engine)

    @staticmethod
    def _reraise(engine: Engine, error: BaseException) -> None:
        raise error

    # ------------------------------------------------------------------------------------------------ state
    def _collect(self, gather: bool = True) -> dict[str, Any]:
        state = {}
        for name, obj in self.to_save.items():
            if isinstance(obj, PerRank):
                obj.gather = gather
            state[name] = obj.state_dict()
        state[STATE_KEY] = self.state_dict()
        return state

    def state_dict(self) -> dict[str, Any]:
        """The handler's own state: the strategy's state, the save history and the training clock."""
        return {**self.checkpointer.state_dict(), "elapsed": self.elapsed()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.checkpointer.load_state_dict(state)
        self._elapsed = float(state.get("elapsed", 0.0))
        if self._clock_start is not None:
            self._clock_start = time.perf_counter()

    def resume(self, which: str | Path = "auto", map_location: Any = "cpu", strict: bool = True) -> CheckpointEntry | Path | None:
        """Load a checkpoint into every object of ``to_save``, into what was found from the trainer, and into this
        handler. Under ``torch.distributed`` rank 0 chooses the checkpoint and every rank loads that one.

        States of objects found only when the trainer starts (a loader given to ``run``) are kept and restored then.

        Args:
            which: ``"auto"`` (newest checkpoint that verifies; nothing happens in an empty folder), ``"best"``,
                ``"last"`` or a path to a checkpoint file.
            map_location: as for :func:`torch.load`.
            strict: require a state for every object of ``to_save`` given by name (what was found from the trainer
                is restored when the checkpoint has it; a checkpoint without it is resumed with a warning).

        Returns:
            the entry (or path) loaded, or None when ``"auto"`` found no checkpoint.

        Raises:
            CheckpointError: the checkpoint is missing, damaged, unsafe, or lacks a state ``to_save`` needs.
        """
        choice = agree(lambda: self._choose(which))
        if choice is None:
            logger.info("no checkpoint in %s: starting from scratch", self.store.directory)
            return None
        path = self.store.path(choice["file"]) if choice["entry"] else Path(choice["file"])
        payload = load_checkpoint_file(path, map_location, size=choice.get("size"), sha256=choice.get("sha256"))
        source: CheckpointEntry | Path = (self.checkpointer.store.find(choice["file"]) if choice["entry"] else None) or path
        state = payload.get("state", payload)
        missing = [name for name in self._explicit if name not in state]
        if missing and strict:
            raise CheckpointError(f"checkpoint {source} has no state for {missing} (it holds {sorted(state)})")
        absent = [name for name in self._discovered if name not in state]
        if absent:
            logger.warning("checkpoint %s has no state for %s: they start afresh", source, absent)
        for name, obj in self.to_save.items():
            if name in state:
                obj.load_state_dict(state[name])
        known = set(self.to_save) | {STATE_KEY}
        self._pending = {name: value for name, value in state.items() if name not in known}
        if STATE_KEY in state:
            self.load_state_dict(state[STATE_KEY])
        self._begun = True
        self.resumed_from = source
        logger.info("resumed from checkpoint %s", source.file if isinstance(source, CheckpointEntry) else source)
        return source

    def _choose(self, which: str | Path) -> dict[str, Any] | None:
        """The checkpoint to resume from, as plain data (rank 0 chooses it for every rank)."""
        if isinstance(which, str) and which in RESUME_CHOICES:
            entry = self.checkpointer.resolve(which)
            if entry is None:
                return None
            return {"file": entry.file, "entry": True, "size": entry.size, "sha256": entry.sha256}
        path = Path(which)
        if not path.is_file():
            raise CheckpointError(f"resume must be one of {list(RESUME_CHOICES)} or a checkpoint file, got {str(which)!r}")
        entry = self.store.find(path)  # a file of this folder is checked against its manifest entry
        if entry is not None:
            return {"file": entry.file, "entry": True, "size": entry.size, "sha256": entry.sha256}
        return {"file": str(path), "entry": False}
