"""The per-epoch summary line and history of a training run (:class:`EpochSummaryLogger`), and how an engine's
output and a loss schedule's weights become history entries."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import ignite.distributed as idist
from ignite.engine import Engine, Events

from pipeline.epoch_loss import LOSS_METRIC, attach_epoch_loss

__all__ = ["EpochSummaryLogger", "schedule_values"]


def schedule_values(weights: Mapping[str, float] | None, components: Mapping[str, float] | None) -> dict[str, float]:
    """A loss's term weights and mean term losses as history/metric entries: ``weight_<term>`` and ``<term>_loss``
    (what :class:`~pipeline.schedules.LossScheduleHandler` publishes as ``state.loss_weights`` and
    ``state.loss_components``)."""
    values = {f"weight_{name}": float(w) for name, w in (weights or {}).items()}
    values.update({f"{name}_loss": float(v) for name, v in (components or {}).items()})
    return values


class EpochSummaryLogger:
    """Log one readable line per training epoch and keep the same numbers as a history.

    The line holds the epoch, the mean training loss over the epoch (over every process under ``ignite.distributed``:
    :class:`~pipeline.epoch_loss.EpochLoss`), the evaluator's metrics when it ran this epoch,
    the best key metric so far and the epoch's wall time, e.g.
    ``epoch 12/40  loss 0.3121  val_mean_dice 0.8123 (best 0.8123 @ 12)  9.8 s``. With a loss-weight schedule
    (:class:`~pipeline.schedules.LossScheduleHandler`) the line also holds the weights in force, and the history
    each term's weight (``weight_<term>``) and mean loss (``<term>_loss``).

    Args:
        evaluator: the validation engine whose ``state.metrics`` to report (optional).
        logger: where to log; default ``logging.getLogger("pipeline.train")``.

    Under ``ignite.distributed`` only process 0 logs the line; every process keeps the same history.

    The evaluator's metrics belong to an epoch when the evaluator completed a run during it (a MONAI evaluator run
    by ``ValidationHandler``, or a plain Ignite evaluator run from a trainer handler).

    Attributes:
        history: one dict per epoch (``epoch``, ``loss``, ``time_s``, the metrics of that epoch and, with a loss-weight
            schedule, ``weight_<term>`` and ``<term>_loss``); in :meth:`state_dict`, so a resumed run's history goes
            on.
    """

    def __init__(self, evaluator: Engine | None = None, logger: logging.Logger | None = None) -> None:
        self.evaluator = evaluator
        self.logger = logger or logging.getLogger("pipeline.train")
        self.history: list[dict[str, float]] = []
        self._epoch_start = 0.0
        self._validated_epoch: int | None = None

    def attach(self, engine: Engine) -> None:
        attach_epoch_loss(engine)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._log)
        if self.evaluator is not None:
            self.evaluator.add_event_handler(Events.COMPLETED, self._validated, engine)

    def _validated(self, evaluator: Engine, trainer: Engine) -> None:
        self._validated_epoch = trainer.state.epoch

    def _start(self, engine: Engine) -> None:
        self._epoch_start = time.perf_counter()

    def _log(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        record: dict[str, float] = {"epoch": epoch, "loss": float(engine.state.metrics[LOSS_METRIC])}
        text = f"epoch {epoch}/{engine.state.max_epochs}  loss {record['loss']:.4f}"
        weights = getattr(engine.state, "loss_weights", None)
        if weights:
            record.update(schedule_values(weights, getattr(engine.state, "loss_components", {})))
            text += "  weights " + " ".join(f"{name} {w:.3f}" for name, w in weights.items())
        ev = self.evaluator
        if ev is not None and getattr(ev.state, "epoch", 0) and ev.state.metrics and self._validated_now(ev, epoch):
            for name, value in ev.state.metrics.items():
                if isinstance(value, (int, float)):
                    record[name] = float(value)
                    text += f"  {name} {value:.4f}"
            best = getattr(ev.state, "best_metric", None)
            if best is not None and best > -1:
                text += f" (best {best:.4f} @ {ev.state.best_metric_epoch})"
        record["time_s"] = time.perf_counter() - self._epoch_start
        text += f"  {record['time_s']:.1f} s"
        self.history.append(record)
        if idist.get_rank() == 0:
            self.logger.info(text)

    def _validated_now(self, evaluator: Engine, epoch: int) -> bool:
        # MONAI evaluators also record the trainer epoch they ran for in state.epoch
        return self._validated_epoch == epoch or int(evaluator.state.epoch) == epoch

    def state_dict(self) -> dict[str, Any]:
        """The history so far (plain numbers: loads with ``torch.load(weights_only=True)``)."""
        return {"history": [dict(record) for record in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the history of ``state`` (the list object is kept, so views of it stay valid)."""
        self.history[:] = [dict(record) for record in state.get("history", [])]
