"""Step schedule: weights multiply by a factor every ``step_size`` epochs or at milestones, within bounds."""

from __future__ import annotations

import bisect
from typing import Mapping, Sequence

from pipeline.errors import SettingsError
from pipeline.schedules.weight_schedule import WeightSchedule, check_count
from pipeline.schedules.weight_math import check_names, per_term

__all__ = ["StepSchedule"]


def _power(base: float, exponent: int) -> float:
    """``base ** exponent``, held at 1e300 where it would overflow (a factor > 1 over very many steps)."""
    try:
        return min(base**exponent, 1e300)
    except OverflowError:
        return 1e300


class StepSchedule(WeightSchedule):
    """Multiply weights by ``gamma`` at regular steps or at milestones (PyTorch's ``StepLR``/``MultiStepLR`` for loss
    weights).

    After ``e`` completed epochs (the weights of epoch ``e + 1``)::

        n = floor(e / step_size)                  (or: the number of milestones <= e)
        w_k = clip(start_k * gamma_k ** n, min_weight_k, max_weight_k)

    then, with ``normalize`` (default), scaled to the initial sum within the bounds. ``gamma_k`` is ``gamma`` for the
    terms in ``terms`` and 1 for the others, or given per term as a dict. With ``normalize``, a factor < 1 on one
    term hands its weight over to the others step by step; ``min_weight`` stops it at a floor.

    The default (``gamma=0.5`` on the first term, every 10 epochs) halves the overlap term's raw weight every 10
    epochs, the sum then restored, so its share shrinks in favour of the others (``dice`` 0.7 / ``bce`` 0.3 becomes
    0.538 / 0.462, then 0.368 / 0.632).

    Args:
        initial: the weights at the start (``loss.weights``).
        gamma: the factor (> 0), or term -> factor.
        step_size: epochs between steps (default 10 when no ``milestones``).
        milestones: epochs (completed, increasing) after which a step happens, instead of ``step_size``.
        terms: the terms a single ``gamma`` applies to (default: the first term).
        min_weight, max_weight, normalize, start_weights: see :class:`~pipeline.schedules.weight_schedule.WeightSchedule`.
    """

    name = "step"

    def __init__(
        self,
        initial: Mapping[str, float],
        gamma: float | Mapping[str, float] = 0.5,
        step_size: int | None = None,
        milestones: Sequence[int] | None = None,
        terms: Sequence[str] | None = None,
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        normalize: bool = True,
        start_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(initial, min_weight, max_weight, normalize, start_weights)
        if isinstance(gamma, Mapping):
            if terms is not None:
                raise SettingsError("give either gamma per term (a dict) or terms with one gamma, not both.")
            self.gamma = per_term(gamma, self.terms, 1.0, "gamma")
        else:
            chosen = check_names(terms, self.terms, "terms") if terms is not None else self.terms[:1]
            factor = per_term(gamma, chosen, 1.0, "gamma")
            self.gamma = {t: factor.get(t, 1.0) for t in self.terms}
        if any(g <= 0 for g in self.gamma.values()):
            raise SettingsError(f"gamma must be > 0, got {self.gamma}.")
        if milestones is not None and step_size is not None:
            raise SettingsError("give either step_size or milestones, not both.")
        self.milestones: list[int] | None = None
        self.step_size = 10
        if milestones is not None:
            if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
                raise SettingsError(f"milestones must be a list of epochs, got {milestones!r}.")
            values = [check_count("milestones[]", m, 1) for m in milestones]
            if not values or values != sorted(set(values)):
                raise SettingsError(f"milestones must be a non-empty increasing list of epochs, got {list(milestones)}.")
            self.milestones = values
        elif step_size is not None:
            self.step_size = check_count("step_size", step_size, 1)

    def steps_after(self, epoch: int) -> int:
        """How many steps have happened after ``epoch`` completed epochs."""
        if self.milestones is not None:
            return bisect.bisect_right(self.milestones, epoch)
        return epoch // self.step_size

    def weights_after(self, epoch: int) -> dict[str, float]:
        """The weights for epoch ``epoch + 1`` (``epoch`` epochs completed)."""
        n = self.steps_after(epoch)
        return self.settle({k: self.start[k] * _power(self.gamma[k], n) for k in self.terms})

    def _epoch_completed(self, losses: Mapping[str, float] | None) -> None:
        self.weights = self.weights_after(self.epoch)

    def resume_at(self, epoch: int) -> bool:
        self.epoch_completed(epoch)
        return True
