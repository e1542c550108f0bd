"""Performance schedule: ReduceLROnPlateau for loss weights -- shift weight between term groups on a plateau."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from pipeline.errors import SettingsError
from pipeline.schedules.weight_schedule import WeightSchedule, check_count
from pipeline.schedules.weight_math import check_names

__all__ = ["PerformanceSchedule", "TOPOLOGY_TERMS", "THRESHOLD_MODES"]

logger = logging.getLogger(__name__)

#: the terms that score the vessel tree's connectivity rather than voxel overlap
TOPOLOGY_TERMS = ("cldice", "skeleton_recall")
THRESHOLD_MODES = ("rel", "abs")
_MODES = ("max", "min")


class PerformanceSchedule(WeightSchedule):
    """When the monitored validation metric stops improving, move weight from one group of terms to another.

    A validation *improves* when (``mode="max"``) ``metric > best + threshold * |best|`` (``threshold_mode="rel"``)
    or ``metric > best + threshold`` (``"abs"``), as in PyTorch's ``ReduceLROnPlateau`` (mirrored for ``"min"``);
    the first validation always improves. Only finite metrics count (the callers drop NaN and infinities). After ``patience`` validations in a row without improvement (counted as Ignite's
    ``EarlyStopping`` counts), weight is shifted::

        delta = min(shift * S, sum_{k in from} (w_k - min_k), sum_{j in to} (max_j - w_j))
        w_k -= delta * (w_k - min_k) / sum_{from} (w - min)      for k in from_terms
        w_j += delta * (max_j - w_j) / sum_{to} (max - w)        for j in to_terms

    with ``S`` the sum of the initial weights (which the shift keeps), ``min``/``max`` the bounds (``max`` defaults to
    ``S``). The counter then restarts and ``cooldown`` validations are not counted. At most ``max_shifts`` shifts
    happen (no limit by default); once the ``from`` group is at its floors nothing more moves. A NaN metric is
    ignored by the callers with a warning.

    The default groups move weight towards the topology terms (``cldice``, ``skeleton_recall``) from the others, e.g.
    from Dice to clDice once Dice plateaus; a loss without topology terms moves weight from its first term to the rest.

    Args:
        initial: the weights at the start (``loss.weights``).
        monitor: the validation metric to follow (default: the evaluator's key metric when attached to engines).
        mode: ``"max"`` or ``"min"``.
        patience: validations without improvement before a shift (>= 1).
        cooldown: validations after a shift that are not counted.
        threshold: how much better counts as an improvement (>= 0).
        threshold_mode: ``"rel"`` or ``"abs"``.
        shift: the fraction of ``S`` moved per shift, in (0, 1].
        from_terms: the group that gives weight; to_terms: the group that receives it.
        max_shifts: the most shifts in a run (None: no limit).
        min_weight, max_weight, start_weights: see :class:`~pipeline.schedules.weight_schedule.WeightSchedule`; e.g.
            ``start_weights={"cldice": 0}`` on ``vessel_cldice`` starts without clDice and gives it weight only when
            Dice stops improving.
    """

    name = "performance"
    needs_metric = True

    def __init__(
        self,
        initial: Mapping[str, float],
        monitor: str | None = None,
        mode: str = "max",
        patience: int = 5,
        cooldown: int = 0,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        shift: float = 0.1,
        from_terms: Sequence[str] | None = None,
        to_terms: Sequence[str] | None = None,
        max_shifts: int | None = None,
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        start_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(initial, min_weight, max_weight, True, start_weights)
        if len(self.terms) < 2:
            raise SettingsError(f"the performance schedule moves weight between terms; this loss has only {self.terms}.")
        if mode not in _MODES:
            raise SettingsError(f"mode must be one of {list(_MODES)}, got {mode!r}.")
        if threshold_mode not in THRESHOLD_MODES:
            raise SettingsError(f"threshold_mode must be one of {list(THRESHOLD_MODES)}, got {threshold_mode!r}.")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
            raise SettingsError(f"threshold must be a number >= 0, got {threshold!r}.")
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 < shift <= 1:
            raise SettingsError(f"shift must be a fraction in (0, 1], got {shift!r}.")
        self.monitor = monitor
        self.mode, self.threshold, self.threshold_mode, self.shift = mode, float(threshold), threshold_mode, float(shift)
        self.patience = check_count("patience", patience, 1)
        self.cooldown = check_count("cooldown", cooldown)
        self.max_shifts = None if max_shifts is None else check_count("max_shifts", max_shifts, 1)
        self.from_terms, self.to_terms = self._groups(from_terms, to_terms)
        self.upper = {t: min(u, self.total) for t, u in self.upper.items()}
        self.best: float | None = None
        self.bad_evaluations = 0
        self.cooldown_left = 0
        self.shifts = 0

    def _groups(self, from_terms: Sequence[str] | None, to_terms: Sequence[str] | None) -> tuple[list[str], list[str]]:
        givers = None if from_terms is None else check_names(from_terms, self.terms, "from_terms")
        if to_terms is not None:
            receivers = check_names(to_terms, self.terms, "to_terms")
        elif givers is not None:
            receivers = [t for t in self.terms if t not in givers]
        else:
            topology = [t for t in self.terms if t in TOPOLOGY_TERMS]
            receivers = topology if 0 < len(topology) < len(self.terms) else self.terms[1:]
        if givers is None:
            givers = [t for t in self.terms if t not in receivers]
        if not givers or not receivers or set(givers) & set(receivers):
            raise SettingsError(
                f"from_terms {givers} and to_terms {receivers} must be non-empty groups of different terms of {self.terms}."
            )
        return givers, receivers

    def improves(self, metric: float) -> bool:
        """Whether ``metric`` beats the best so far by more than the threshold."""
        if self.best is None:
            return True
        sign = 1.0 if self.mode == "max" else -1.0
        margin = self.threshold * abs(self.best) if self.threshold_mode == "rel" else self.threshold
        return sign * (metric - self.best) > margin

    def _evaluation_completed(self, metric: float) -> None:
        if self.improves(metric):
            self.best, self.bad_evaluations = metric, 0
        else:
            self.bad_evaluations += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_evaluations = 0
        if self.bad_evaluations >= self.patience:
            self._shift()
            self.cooldown_left, self.bad_evaluations = self.cooldown, 0

    def _shift(self) -> None:
        if self.max_shifts is not None and self.shifts >= self.max_shifts:
            return
        w = self.weights
        room_from = {t: max(w[t] - self.lower[t], 0.0) for t in self.from_terms}
        room_to = {t: max(self.upper[t] - w[t], 0.0) for t in self.to_terms}
        delta = min(self.shift * self.total, sum(room_from.values()), sum(room_to.values()))
        if delta <= 0:
            logger.info("performance loss weights: plateau after epoch %d, but no weight is left to move %s.", self.epoch, w)
            return
        given, taken = sum(room_from.values()), sum(room_to.values())
        new = dict(w)
        for t in self.from_terms:
            new[t] = max(w[t] - delta * room_from[t] / given, self.lower[t])
        for t in self.to_terms:
            new[t] = min(w[t] + delta * room_to[t] / taken, self.upper[t])
        self.weights = new
        self.shifts += 1
        logger.info("performance loss weights: plateau after epoch %d, weights now %s.", self.epoch, new)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "bad_evaluations": self.bad_evaluations,
            "cooldown_left": self.cooldown_left,
            "shifts": self.shifts,
        }

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        best = state.get("best")
        self.best = None if best is None else float(best)
        self.bad_evaluations = int(state.get("bad_evaluations", 0))
        self.cooldown_left = int(state.get("cooldown_left", 0))
        self.shifts = int(state.get("shifts", 0))
