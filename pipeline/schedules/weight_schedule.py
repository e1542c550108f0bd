"""What every loss-weight schedule shares: the weights it starts from, their bounds and sum, and its state."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.weight_checks import check_weights
from pipeline.schedules.weight_math import check_names, clip, per_term, reachable, rebalance

__all__ = ["WeightSchedule", "check_count", "check_flag"]


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool, or a :class:`SettingsError` naming it (``"false"`` is not taken for True)."""
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be True or False, got {value!r}.")
    return value


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``, or a :class:`SettingsError` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return value


class WeightSchedule:
    """Base of the loss-weight schedules: the *policy* that says which weights the next epoch trains with.

    A schedule is a pure object: it is told when an epoch ends (:meth:`epoch_completed`, with the epoch's mean term
    losses) and when a validation ends (:meth:`evaluation_completed`, with the monitored metric), and answers with
    :attr:`weights`. It never touches the loss; :class:`~pipeline.schedules.scheduler.LossScheduler` and the Ignite
    handler :class:`~pipeline.schedules.schedule_handler.LossScheduleHandler` apply its weights. Its state is plain numbers,
    so it loads with ``torch.load(weights_only=True)``.

    The loss's configured weights (``initial``) fix the sum ``S``; the schedule starts from them, or from
    ``start_weights`` (e.g. a topology term at 0, to be given weight later). Every schedule keeps each weight within
    ``[min_weight, max_weight]``; with ``normalize`` (always for the schedules that move weight between terms) the
    weights are then scaled to sum to ``S``, by :func:`~pipeline.schedules.weight_math.rebalance`.

    Args:
        initial: the loss's configured weights (name -> weight), ``loss.weights``.
        min_weight: lower bound, for all terms or per term (name -> bound; unnamed terms: 0).
        max_weight: upper bound, for all terms or per term (default: no bound other than the sum).
        normalize: scale the weights to keep their sum at ``S``.
        start_weights: the weights of the first epoch, per term (terms not named: their configured weight);
            scaled to ``S`` with ``normalize``. Default: the configured weights.
    """

    name: ClassVar[str] = ""
    #: whether the schedule reads a validation metric
    needs_metric: ClassVar[bool] = False

    def __init__(
        self,
        initial: Mapping[str, float],
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        normalize: bool = True,
        start_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.initial = check_weights(initial, "initial loss weight")
        self.terms = list(self.initial)
        self.total = sum(self.initial.values())
        self.normalize = check_flag("normalize", normalize)
        #: the weights the schedule starts from
        self.start = self.named_weights("start_weights", start_weights) or dict(self.initial)
        self.lower = per_term(min_weight, self.terms, 0.0, "min_weight")
        self.upper = per_term(max_weight, self.terms, math.inf, "max_weight")
        bad = [t for t in self.terms if self.lower[t] > self.upper[t]]
        if bad:
            raise SettingsError(f"min_weight exceeds max_weight for {bad}: {self.lower} > {self.upper}.")
        #: the terms whose weights the schedule moves (the others keep their start weight)
        self.active = self._active_terms()
        share = self.total - sum(self.start[t] for t in self.terms if t not in self.active)
        lower, upper = ([bound[t] for t in self.active] for bound in (self.lower, self.upper))
        if self.normalize and not reachable(share, lower, upper):
            raise SettingsError(
                f"the weights of {self.active} must sum to {share:g} (with the others, the sum of the configured "
                f"weights {self.initial}); min_weight {self.lower} / max_weight {self.upper} make that impossible."
            )
        self.epoch = 0
        self.weights: dict[str, float] = self.settle(self.start)

    def named_weights(self, what: str, given: Mapping[str, float] | None) -> dict[str, float] | None:
        """``given`` (term -> weight) checked and completed with the configured weights of the terms it does not
        name; None when not given.

        Raises:
            ValueError: not a dict, an unknown term, a weight that is not a finite number >= 0, or all 0.
        """
        if given is None:
            return None
        if not isinstance(given, Mapping):
            raise SettingsError(f"{what} must be a dict of term -> weight, got {given!r}.")
        check_names(given, self.terms, what)
        values = per_term(given, self.terms, 0.0, what)
        weights = {t: values[t] if t in given else self.initial[t] for t in self.terms}
        if not any(v > 0 for v in weights.values()):
            raise SettingsError(f"at least one of the {what} must be > 0, got {weights}.")
        return weights

    # ------------------------------------------------------------------------------------------------ policy
    def epoch_completed(self, epoch: int, losses: Mapping[str, float] | None = None) -> dict[str, float]:
        """An epoch ended: ``epoch`` epochs are complete (1-based, as Ignite's ``engine.state.epoch``).

        Args:
            epoch: the number of completed epochs.
            losses: the epoch's mean loss of each term (``"dice"`` -> value), for schedules that read them.

        Returns:
            the weights for the next epoch.
        """
        self.epoch = int(epoch)
        self._epoch_completed(losses)
        return dict(self.weights)

    def evaluation_completed(self, metric: float) -> dict[str, float]:
        """A validation ended with the monitored ``metric``; a NaN or infinite one changes nothing (the callers
        warn). Returns the weights."""
        if math.isfinite(float(metric)):
            self._evaluation_completed(float(metric))
        return dict(self.weights)

    def _epoch_completed(self, losses: Mapping[str, float] | None) -> None:
        """Update :attr:`weights` at the end of epoch :attr:`epoch`."""

    def resume_at(self, epoch: int) -> bool:
        """Jump to ``epoch`` completed epochs without the history in between (a trainer resumed without this
        schedule's state). Only schedules that are a function of the epoch alone can; the others return False."""
        return False

    def _evaluation_completed(self, metric: float) -> None:
        """Update :attr:`weights` after a validation."""

    def _active_terms(self) -> list[str]:
        """The terms the schedule moves: all of them unless a schedule says otherwise."""
        return list(self.terms)

    def settle(self, raw: Mapping[str, float]) -> dict[str, float]:
        """``raw`` weights of the active terms within the bounds and, with ``normalize``, scaled to keep the sum
        of all weights at the initial sum; the other terms keep their weight."""
        part = {t: raw[t] for t in self.active}
        if not self.normalize:
            return {**raw, **clip(part, self.lower, self.upper)}
        total = self.total - sum(raw[t] for t in self.terms if t not in part)
        return {**raw, **rebalance(part, total, self.lower, self.upper)}

    # ------------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain numbers: the completed epochs, the weights and the schedule's own counters."""
        return {"type": self.name, "epoch": self.epoch, "weights": dict(self.weights), **self._extra_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (of a schedule of the same kind on a loss with the same terms).

        Raises:
            ValueError: the state is of another schedule type, or its weights are for other terms.
        """
        if state.get("type", self.name) != self.name:
            raise SettingsError(f"saved loss-weight schedule state is of type {state['type']!r}, this schedule is {self.name!r}.")
        weights = dict(state["weights"])
        if set(weights) != set(self.terms):
            raise SettingsError(f"saved schedule weights are for terms {sorted(weights)}, this loss has {sorted(self.terms)}.")
        self.weights = {t: float(weights[t]) for t in self.terms}
        self.epoch = int(state["epoch"])
        self._load_extra_state(state)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def __repr__(self) -> str:
        weights = ", ".join(f"{k}={v:.4g}" for k, v in self.weights.items())
        return f"{type(self).__name__}(epoch={self.epoch}, {weights})"
