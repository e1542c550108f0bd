"""The Ignite glue: trainer/evaluator events -> strategy -> store, and resume."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint.checkpointer import RESUME_CHOICES, Checkpointer
from pipeline.checkpoint.manifest import CheckpointEntry, scalar_metrics
from pipeline.checkpoint.store import CheckpointStore
from pipeline.checkpoint.strategies import CheckpointEvent, CheckpointStrategy, create_strategy
from pipeline.errors import CheckpointError, InputError, SettingsError
from pipeline.handlers import run_first, run_last

__all__ = ["CheckpointHandler", "STATE_KEY"]

logger = logging.getLogger(__name__)

#: the key under which the handler saves its own state next to the objects of ``to_save``.
STATE_KEY = "checkpointer"


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))


class CheckpointHandler:
    """Save checkpoints of a training run by a named strategy, crash-safely, and resume from them.

    Attach it to a trainer (a plain :class:`ignite.engine.Engine` or MONAI's ``SupervisedTrainer``) and, for the
    metric-driven strategies, give it the evaluator whose metrics it should read. Decisions are taken at the end of
    each epoch (and of each iteration for strategies that work per iteration), *after* every other handler of that
    event (validation, LR scheduler steps, loggers), so a checkpoint holds the state the next epoch starts from.

    Example::

        handler = CheckpointHandler("runs/x/checkpoints", {"model": net, "optimizer": opt, "trainer": trainer},
                                    strategy="best", max_checkpoints=3)
        handler.attach(trainer, evaluator)   # monitor: the evaluator's key metric unless given
        handler.resume("auto")               # newest checkpoint that verifies, if any
        trainer.run()

    Args:
        checkpoint_dir: folder of the checkpoints and their manifest.
        to_save: objects with ``state_dict``/``load_state_dict`` (model, optimizer, LR scheduler, the trainer for
            its epoch/iteration, ...). The handler adds its own state under ``"checkpointer"``.
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
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        to_save: Mapping[str, Any],
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
    ) -> None:
        params = dict(strategy_params or {})
        for key, value in (("monitor", monitor), ("mode", mode), ("max_checkpoints", max_checkpoints)):
            if value is not None:
                params[key] = value
        self.strategy = create_strategy(strategy, **params)
        self.to_save = self._select(to_save, save_optimizer, save_scheduler)
        store = CheckpointStore(checkpoint_dir, model_name, fsync)
        self.checkpointer = Checkpointer(store, self.strategy, save_last, disk_budget, existing)
        self.save_final = save_final
        self.save_on_exception = save_on_exception
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = None
        self._fresh: tuple[int, dict[str, float]] | None = None  # (trainer epoch, metrics) of the last evaluation
        self._begun = False  # a run started, or a checkpoint was loaded: what is in the folder is this training's
        self._handled_error: BaseException | None = None
        self._elapsed = 0.0
        self._clock_start: float | None = None
        self.last_saved: CheckpointEntry | None = None

    @staticmethod
    def _select(to_save: Mapping[str, Any], save_optimizer: bool, save_scheduler: bool) -> dict[str, Any]:
        if not isinstance(to_save, Mapping) or not to_save:
            raise SettingsError("to_save must be a non-empty mapping of names to objects with state_dict()")
        if STATE_KEY in to_save:
            raise SettingsError(f"{STATE_KEY!r} is reserved for the checkpoint handler's own state in to_save")
        chosen = {}
        for name, obj in to_save.items():
            if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
                raise SettingsError(f"to_save[{name!r}] ({type(obj).__name__}) has no state_dict()/load_state_dict()")
            if (isinstance(obj, torch.optim.Optimizer) and not save_optimizer) or (_is_scheduler(obj) and not save_scheduler):
                continue
            chosen[name] = obj
        return chosen

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def store(self) -> CheckpointStore:
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
        if evaluator is not None:
            evaluator.add_event_handler(Events.COMPLETED, self._record_metrics)
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._run_last)
        for event, handler in self._ordered_handlers():
            trainer.add_event_handler(event, handler)

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
        if not self._begun:  # from scratch, not resumed
            self.checkpointer.begin()
            self._begun = True
        self._handled_error = None
        self._run_last(engine)
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
        entry = self.checkpointer.step(self._event(engine, level), self._collect, extra)
        if entry is not None:
            self.last_saved = entry
            logger.info("checkpoint %s saved (%s)", entry.file, ", ".join(entry.reasons))
        return entry

    def _epoch_completed(self, engine: Engine) -> None:
        self._step(engine, "epoch")

    def _iteration_completed(self, engine: Engine) -> None:
        length = engine.state.epoch_length
        if length and engine.state.iteration % length == 0:
            return  # the epoch end comes next and decides for this iteration too
        self._step(engine, "iteration")

    def _completed(self, engine: Engine) -> None:
        newest = self.store.newest()
        if self.save_final:
            if newest is not None and newest.iteration == engine.state.iteration and "exception" not in newest.reasons:
                self.checkpointer.mark(newest, "final")
            else:
                self._step(engine, "final", ("final",))
        self._stop_clock()

    def _exception_raised(self, engine: Engine, error: BaseException) -> None:
        if error is self._handled_error:  # Ignite fires the event again when a handler re-raises
            return
        self._handled_error = error
        self._stop_clock()
        if self.save_on_exception and not isinstance(error, InputError):
            try:
                self._step(engine, "exception", ("exception",))
            except Exception as save_error:  # the original error matters more; report both
                logger.error("could not save the exception checkpoint: %s", save_error)

    @staticmethod
    def _reraise(engine: Engine, error: BaseException) -> None:
        raise error

    # ------------------------------------------------------------------------------------------------ state
    def _collect(self) -> dict[str, Any]:
        state = {name: obj.state_dict() for name, obj in self.to_save.items()}
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
        """Load a checkpoint into every object of ``to_save`` and into this handler.

        Args:
            which: ``"auto"`` (newest checkpoint that verifies; nothing happens in an empty folder), ``"best"``,
                ``"last"`` or a path to a checkpoint file.
            map_location: as for :func:`torch.load`.
            strict: require a state for every object of ``to_save``.

        Returns:
            the entry (or path) loaded, or None when ``"auto"`` found no checkpoint.

        Raises:
            CheckpointError: the checkpoint is missing, damaged, unsafe, or lacks a state ``to_save`` needs.
        """
        if isinstance(which, str) and which in RESUME_CHOICES:
            source: CheckpointEntry | Path | None = self.checkpointer.resolve(which)
            if source is None:
                logger.info("no checkpoint in %s: starting from scratch", self.store.directory)
                return None
        else:
            source = Path(which)
            if not source.is_file():
                raise CheckpointError(f"resume must be one of {list(RESUME_CHOICES)} or a checkpoint file, got {str(which)!r}")
        payload = self.store.load(source, map_location)
        state = payload.get("state", payload)
        missing = [name for name in self.to_save if name not in state]
        if missing and strict:
            raise CheckpointError(f"checkpoint {source} has no state for {missing} (it holds {sorted(state)})")
        for name, obj in self.to_save.items():
            if name in state:
                obj.load_state_dict(state[name])
        if STATE_KEY in state:
            self.load_state_dict(state[STATE_KEY])
        self._begun = True
        logger.info("resumed from checkpoint %s", source.file if isinstance(source, CheckpointEntry) else source)
        return source
