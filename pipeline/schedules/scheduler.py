"""The original API's engine-free ``LossScheduler``: a schedule applied to a CombinedLoss, stepped once per epoch."""

from __future__ import annotations

import logging
import math
import weakref
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.combined import CombinedLoss, component_key
from pipeline.schedules.weight_schedule import WeightSchedule
from pipeline.schedules.meter import TermLossMeter
from pipeline.schedules.schedule_names import create_schedule

__all__ = ["LossScheduler", "MONITOR_GUESSES"]

logger = logging.getLogger(__name__)

#: metric names a performance schedule follows, in this order, when no monitor is given (all: higher is better)
MONITOR_GUESSES = ("val_mean_dice", "val_dice", "mean_dice", "dice")
#: loss -> (the LossScheduler that owns its weights, as a weak reference; the weights the loss had before any schedule,
#: which every schedule starts from and ``close`` restores). Kept here, so no schedule writes into the loss object.
_OWNERS: "weakref.WeakKeyDictionary[CombinedLoss, tuple[weakref.ref, dict[str, float]]]" = weakref.WeakKeyDictionary()


def _owner(loss: CombinedLoss) -> "LossScheduler | None":
    entry = _OWNERS.get(loss)
    return None if entry is None else entry[0]()


class LossScheduler:
    """Change the term weights of a :class:`~pipeline.losses.combined.CombinedLoss` once per epoch by a schedule.

    The original API's loop works as it is::

        loss_scheduler = LossManager.create_loss_scheduler(loss_function, {"type": "adaptive", "params": {}})
        for epoch in range(num_epochs):
            ...                                       # train: loss_function(logits, labels) each batch
            loss_scheduler.step(epoch, val_metrics)   # the weights for the next epoch are set on the loss

    The epoch's mean term losses (what the adaptive schedule follows) are gathered by a
    :class:`~pipeline.schedules.meter.TermLossMeter` from the loss's own training calls, so ``step`` needs nothing
    more; pass ``losses=`` to use other values. The Ignite handler
    :class:`~pipeline.schedules.schedule_handler.LossScheduleHandler` drives the same object from engine events.

    Args:
        loss_function: the loss whose weights change.
        schedule: ``"adaptive"``, ``"cosine"``, ``"step"``, ``"performance"``, or a built
            :class:`~pipeline.schedules.weight_schedule.WeightSchedule` for this loss's terms.
        params: the schedule's parameters (see its class).

    Attributes:
        history: one record per completed epoch: ``epoch`` (1-based), ``weights`` in force during it, ``losses``
            (the term means; empty when none were measured).
    """

    def __init__(
        self,
        loss_function: CombinedLoss,
        schedule: str | WeightSchedule = "adaptive",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(loss_function, CombinedLoss):
            raise SettingsError(
                "a loss-weight schedule needs a pipeline CombinedLoss (named, weighted terms), got "
                f"{type(loss_function).__name__}; build it with LossManager.create_loss_function(...)."
            )
        owner = _owner(loss_function)
        if owner is not None:  # two schedules would overwrite each other's weights: the new one takes over
            logger.warning("a new loss-weight schedule (%s) replaces %r on this loss.", schedule, owner.schedule)
            owner.close()  # gives the loss back its configured weights
        elif loss_function in _OWNERS:  # an earlier schedule was dropped without close(): the same
            loss_function.set_weights(_OWNERS[loss_function][1])
        if isinstance(schedule, WeightSchedule):
            if params:
                raise SettingsError(f"params {sorted(params)} given with an already built schedule {schedule!r}.")
            if set(schedule.terms) != set(loss_function.weights):
                raise SettingsError(
                    f"the schedule is for terms {schedule.terms}, the loss has {list(loss_function.weights)}."
                )
        else:
            schedule = create_schedule(schedule, loss_function.weights, params)
        _OWNERS[loss_function] = (weakref.ref(self), dict(loss_function.weights))
        self.closed = False
        self.loss = loss_function
        self.schedule = schedule
        self.meter = TermLossMeter(loss_function)
        self.history: list[dict[str, Any]] = []
        self.apply()

    @property
    def weights(self) -> dict[str, float]:
        """The weights the schedule asks for (set on the loss by :meth:`apply`)."""
        return dict(self.schedule.weights)

    @property
    def monitor(self) -> str | None:
        """The validation metric a performance schedule follows (None for the other schedules, or not yet known)."""
        return getattr(self.schedule, "monitor", None)

    @monitor.setter
    def monitor(self, name: str | None) -> None:
        if self.schedule.needs_metric:
            self.schedule.monitor = name

    def apply(self) -> dict[str, float]:
        """Set the schedule's weights on the loss; returns them.

        Raises:
            RuntimeError: this scheduler was closed (or replaced by a newer one on the same loss).
        """
        if self.closed:
            raise RuntimeError("this loss-weight schedule was closed or replaced by a newer one on the same loss.")
        self.loss.set_weights(self.schedule.weights)
        return self.weights

    def _term_losses(self, losses: Mapping[str, float]) -> dict[str, float]:
        keys = {component_key(t): t for t in self.schedule.terms}
        return {keys.get(k, k): float(v) for k, v in losses.items() if keys.get(k, k) in self.schedule.terms}

    def epoch_completed(self, epoch: int, losses: Mapping[str, float] | None = None) -> None:
        """Tell the schedule that ``epoch`` epochs (1-based count) are complete. The new weights are *not* yet
        applied: :meth:`apply` at the next epoch's start does that, so the weights in force stay those of the epoch
        being closed until then.

        Args:
            epoch: completed epochs.
            losses: term -> mean loss of the epoch (keys ``"dice"`` or ``"dice_loss"``); default: measured.
        """
        measured = self.meter.means()
        self.meter.reset()
        term_losses = self._term_losses(losses) if losses is not None else measured
        self.history.append({"epoch": int(epoch), "weights": dict(self.loss.weights), "losses": term_losses})
        self.schedule.epoch_completed(epoch, term_losses if term_losses else None)

    def resolve_monitor(self, metrics: Mapping[str, Any]) -> str:
        """The name of the monitored metric in ``metrics``; when none was given, the first of
        :data:`MONITOR_GUESSES` present (fixed from then on).

        Raises:
            ValueError: the monitored metric is not in ``metrics``, or none was given and none of the guesses is there.
        """
        if self.monitor is None:
            guesses = [g for g in MONITOR_GUESSES if g in metrics]
            if not guesses:
                raise SettingsError(
                    f"the performance schedule does not know which metric to follow among {sorted(metrics)} (it "
                    f"guesses only {list(MONITOR_GUESSES)}); give params={{'monitor': <name>, 'mode': 'max' or 'min'}}."
                )
            self.monitor = guesses[0]
        if self.monitor not in metrics:
            raise SettingsError(
                f"the performance schedule follows {self.monitor!r}, which is not among the validation metrics "
                f"{sorted(metrics)}."
            )
        return self.monitor

    def evaluation_completed(self, metrics: Mapping[str, Any]) -> None:
        """Tell a metric-driven schedule the result of a validation (others ignore it); a NaN or infinite metric is
        ignored with a warning. The new weights are applied by :meth:`apply`, as for :meth:`epoch_completed`."""
        if not self.schedule.needs_metric:
            return
        name = self.resolve_monitor(metrics)
        value = float(metrics[name])
        if not math.isfinite(value):
            logger.warning(
                "loss-weight schedule: %s is %s after epoch %d; this validation is ignored.", name, value, self.schedule.epoch
            )
            return
        self.schedule.evaluation_completed(value)

    def step(
        self, epoch: int, val_metrics: Mapping[str, Any] | None = None, losses: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """End of epoch ``epoch`` (0-based, as in ``for epoch in range(num_epochs)``): update and apply the weights.

        Args:
            epoch: the epoch just trained, counted from 0.
            val_metrics: this epoch's validation metrics, or None when there was no validation.
            losses: the epoch's mean term losses, to override the measured ones.

        Returns:
            the weights for the next epoch.
        """
        self.epoch_completed(epoch + 1, losses)
        if val_metrics:
            self.evaluation_completed(val_metrics)
        return self.apply()

    def close(self) -> None:
        """Stop following the loss's calls and give the loss back the weights it had before this schedule (so a
        new schedule starts from the configured weights, not from where this one ended)."""
        self.closed = True
        self.meter.close()
        if _owner(self.loss) is self:
            self.loss.set_weights(_OWNERS.pop(self.loss)[1])

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, the epoch's partial term sums and the history (plain numbers and lists)."""
        return {"schedule": self.schedule.state_dict(), "meter": self.meter.state_dict(), "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` and set its weights on the loss."""
        self.schedule.load_state_dict(state["schedule"])
        self.meter.load_state_dict(state.get("meter", {}))
        self.history = [dict(record) for record in state.get("history", [])]
        self.apply()
