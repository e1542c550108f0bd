"""Adaptive schedule: Dynamic Weight Averaging, weights that follow how fast each term's loss is falling."""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.schedules.weight_schedule import WeightSchedule, check_flag

__all__ = ["AdaptiveSchedule"]

logger = logging.getLogger(__name__)

#: the lowest exponent of the softmax: a term keeps at least exp(-50) of the largest weight, so it is still computed
_MIN_EXPONENT = -50.0


class AdaptiveSchedule(WeightSchedule):
    """Dynamic Weight Averaging (Liu, Johns and Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019).

    With ``L_k(t)`` the mean loss of term ``k`` over epoch ``t`` (the unweighted term, as reported by
    ``CombinedLoss``), the weights of epoch ``t >= 3`` are::

        r_k = L_k(t-1) / L_k(t-2)
        w_k = S * p_k * exp(r_k / T) / sum_j p_j * exp(r_j / T)

    where ``S`` is the sum of the configured weights, ``T`` the temperature and ``p_k = 1`` (the paper; with
    ``keep_ratios=True``, ``p_k`` is the start weight, so the configured proportions stay the baseline). A term whose
    loss falls more slowly (``r_k`` nearer 1 or above) gets more weight. Epochs 1 and 2 train with the start weights.
    A larger ``T`` gives weights closer to equal. The weights are then bounded (``min_weight``/``max_weight``) and
    their sum kept at ``S``. An exponent ``(r_k - max_j r_j) / T`` is held at -50 at the lowest, so no term's weight
    becomes exactly 0 (a term weighted 0 is not computed, and could then never come back).

    Only the terms with a start weight > 0 take part (a term weighted 0 is not computed, so it has no loss to
    follow); the others stay at 0. An epoch whose loss ratio is not finite or positive for a term (NaN or inf loss,
    a loss of 0) leaves the weights as they are, with a warning.

    Args:
        initial: the weights at the start (``loss.weights``).
        temperature: ``T`` > 0 (the paper uses 2).
        keep_ratios: weigh the softmax by the start weights.
        min_weight, max_weight, start_weights: see :class:`~pipeline.schedules.weight_schedule.WeightSchedule`.
    """

    name = "adaptive"

    def __init__(
        self,
        initial: Mapping[str, float],
        temperature: float = 2.0,
        keep_ratios: bool = False,
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        start_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(initial, min_weight, max_weight, True, start_weights)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise SettingsError(f"temperature must be a number > 0, got {temperature!r}.")
        self.temperature = float(temperature)
        self.keep_ratios = check_flag("keep_ratios", keep_ratios)
        #: mean term losses of the last two epochs, oldest first
        self.recent: list[dict[str, float]] = []

    def _active_terms(self) -> list[str]:
        return [t for t in self.terms if self.start[t] > 0]

    def _epoch_completed(self, losses: Mapping[str, float] | None) -> None:
        missing = [t for t in self.active if losses is None or t not in losses]
        if missing:
            logger.warning(
                "adaptive loss weights: no loss of %s for epoch %d (the term was not computed: its weight was 0, or "
                "the loss was not called with gradients enabled); the weights stay %s.", missing, self.epoch, self.weights,
            )
            return
        self.recent = [*self.recent, {t: float(losses[t]) for t in self.active}][-2:]
        if len(self.recent) < 2:
            return
        before, last = self.recent
        ratios = {t: last[t] / before[t] if before[t] > 0 else math.nan for t in self.active}
        if not all(math.isfinite(r) and r > 0 for r in ratios.values()):
            logger.warning(
                "adaptive loss weights: loss ratios %s after epoch %d are not all finite and positive; the weights "
                "stay %s.", ratios, self.epoch, self.weights,
            )
            return
        top = max(ratios.values())  # softmax shifted by its largest exponent: no overflow for any T
        raw = {
            t: (self.start[t] if self.keep_ratios else 1.0)
            * math.exp(max((ratios[t] - top) / self.temperature, _MIN_EXPONENT))
            for t in self.active
        }
        self.weights = self.settle({**self.weights, **raw})  # scaled to S (the normalisation of the formula)

    def _extra_state(self) -> dict[str, Any]:
        return {"recent": [dict(r) for r in self.recent]}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.recent = [{t: float(v) for t, v in r.items()} for r in state.get("recent", [])]
