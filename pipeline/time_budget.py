"""An Ignite handler that ends training when a budget of training time is spent, for comparisons at equal compute.

Only the training itself is counted: from fetching each batch to the end of its iteration (data loading, augmentation,
forward, backward, optimiser step). What runs at epoch ends — validation, checkpoints, logging — is not, so recipes
that validate more or write larger checkpoints get the same training time. Unlike Ignite's
:class:`~ignite.handlers.TimeLimit` (wall time of the whole run), the clock can be the process's CPU time, which a
machine shared with other jobs disturbs less.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping

import torch
from ignite.engine import Engine, Events

from pipeline.errors import SettingsError

__all__ = ["CLOCKS", "TimeBudget"]

logger = logging.getLogger(__name__)

#: clock name -> function returning seconds
CLOCKS: dict[str, Callable[[], float]] = {"process": time.process_time, "wall": time.perf_counter}


def _set_run_length(lr_scheduler: Any, epochs: int) -> None:
    """Make a per-epoch cosine (``T_max``) or polynomial (``total_iters``) schedule end at ``epochs``; the schedules
    compute each step from the previous learning rate, so the curve goes on from where it is."""
    if isinstance(lr_scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        lr_scheduler.T_max = epochs
    elif isinstance(lr_scheduler, torch.optim.lr_scheduler.PolynomialLR):
        lr_scheduler.total_iters = epochs


class TimeBudget:
    """End the trainer's run once ``seconds`` of training time are spent.

    When the budget runs out within an epoch, that epoch is ended at once (``terminate_epoch``) and made the last one:
    its ``EPOCH_COMPLETED`` handlers (learning-rate step, validation on its interval, checkpoint) still run, and if
    ``evaluator`` has not validated that epoch, this handler runs it, so the final model is always scored.

    With ``fit_schedule``, after each epoch the run's length is projected from the mean epoch time
    (``max_epochs`` = epochs done + epochs the rest of the budget holds, never more than the run's own
    ``max_epochs``), and a per-epoch cosine or polynomial ``lr_scheduler`` is stretched or shrunk to end there — a
    decaying learning rate then reaches its end when the budget does.

    Args:
        seconds: the training-time budget.
        clock: ``"process"`` (CPU time of this process, all its threads), ``"wall"``, or a function returning seconds.
        evaluator: the validation engine (MONAI evaluators record the trainer epoch they ran for in ``state.epoch``).
        lr_scheduler: a per-epoch ``CosineAnnealingLR`` or ``PolynomialLR`` to fit to the budget.
        fit_schedule: project the run's length and fit ``max_epochs`` (and ``lr_scheduler``) to it.

    Raises:
        SettingsError: ``seconds`` not > 0 or an unknown clock.
    """

    def __init__(
        self,
        seconds: float,
        clock: str | Callable[[], float] = "process",
        evaluator: Engine | None = None,
        lr_scheduler: Any = None,
        fit_schedule: bool = True,
    ) -> None:
        if not seconds > 0:
            raise SettingsError(f"time budget must be > 0 seconds, got {seconds}.")
        if not callable(clock) and clock not in CLOCKS:
            raise SettingsError(f"unknown clock {clock!r}; valid clocks: {sorted(CLOCKS)} or a function.")
        self.seconds = float(seconds)
        self.clock: Callable[[], float] = clock if callable(clock) else CLOCKS[clock]
        self.evaluator = evaluator
        self.lr_scheduler = lr_scheduler
        self.fit_schedule = fit_schedule
        self.spent = 0.0
        self.epochs_timed = 0
        self.exhausted = False
        self._started: float | None = None
        self._epoch_start_spent = 0.0
        self._max_epochs: int | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._on_started)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self._on_batch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._on_iteration)
        engine.add_event_handler(Events.EPOCH_STARTED, self._on_epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._on_epoch)

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.spent)

    def _on_started(self, engine: Engine) -> None:
        self._max_epochs = int(engine.state.max_epochs)

    def _on_batch(self, engine: Engine) -> None:
        self._started = self.clock()

    def _on_epoch_started(self, engine: Engine) -> None:
        self._epoch_start_spent = self.spent

    def _on_iteration(self, engine: Engine) -> None:
        if self._started is not None:
            self.spent += self.clock() - self._started
            self._started = None
        if self.spent >= self.seconds and not self.exhausted:
            self.exhausted = True
            logger.info("time budget of %.0f s spent at epoch %d, iteration %d", self.seconds, engine.state.epoch, engine.state.iteration)
            engine.state.max_epochs = engine.state.epoch
            engine.terminate_epoch()

    def _on_epoch(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        if not self.exhausted:
            self.epochs_timed += 1
            if self.fit_schedule and self.epochs_timed:
                per_epoch = self.spent / max(1, self.epochs_timed)
                projected = epoch + int(math.floor(self.remaining / per_epoch + 0.5)) if per_epoch > 0 else epoch
                projected = min(self._max_epochs or projected, max(epoch, projected))
                if projected != engine.state.max_epochs:
                    engine.state.max_epochs = projected
                    if self.lr_scheduler is not None:
                        _set_run_length(self.lr_scheduler, projected)
        if epoch >= engine.state.max_epochs and self.evaluator is not None and int(self.evaluator.state.epoch) != epoch:
            self.evaluator.run(epoch)

    def state_dict(self) -> dict[str, Any]:
        """Training time spent so far (a resumed run continues the same budget)."""
        return {"seconds": self.seconds, "spent": self.spent, "epochs_timed": self.epochs_timed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.spent = float(state["spent"])
        self.epochs_timed = int(state.get("epochs_timed", 0))
