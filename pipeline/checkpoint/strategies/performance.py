"""Performance-based checkpoints: keep every checkpoint within a band around the best score."""

from __future__ import annotations

import math
from typing import Sequence

from pipeline.checkpoint.strategies.base import (
    CheckpointEvent,
    Decision,
    KeptCheckpoint,
    MetricStrategy,
    _check_non_negative,
    top_by_score,
)

__all__ = ["PerformanceStrategy"]


class PerformanceStrategy(MetricStrategy):
    """Keep every checkpoint whose metric is within ``threshold`` of the best so far.

    Rule: at an event that carries metrics, the best is updated first; then the checkpoint is saved (reason
    ``"performance"``) when its score lies in the band: ``score >= best - delta`` for ``mode="max"``
    (``score <= best + delta`` for ``"min"``), where ``delta = threshold`` or, with ``relative=True``,
    ``delta = threshold * |best|``. NaN/inf never saves. Retention: checkpoints that fell out of the band of the current
    best are evicted, and of the rest the ``max_checkpoints`` best-scored are kept.

    Args:
        threshold: the band width (absolute, or a fraction of the best with ``relative=True``), >= 0.
        relative: whether ``threshold`` is a fraction of ``|best|``.
        max_checkpoints, monitor, mode, min_delta: see :class:`MetricStrategy`.
    """

    name = "performance_based"
    reasons = ("performance",)

    def __init__(
        self,
        max_checkpoints: int | None = 3,
        monitor: str | None = None,
        mode: str = "max",
        threshold: float = 0.01,
        relative: bool = False,
        min_delta: float = 0.0,
    ) -> None:
        super().__init__(max_checkpoints, monitor, mode, min_delta)
        _check_non_negative("threshold", threshold)
        self.threshold = float(threshold)
        self.relative = bool(relative)

    def in_band(self, score: float | None) -> bool:
        """Whether ``score`` lies within the band around the current best."""
        if score is None or not math.isfinite(score) or self.best is None:
            return False
        delta = self.threshold * abs(self.best) if self.relative else self.threshold
        return score >= self.best - delta if self.mode == "max" else score <= self.best + delta

    def decide(self, event: CheckpointEvent) -> Decision:
        if event.level != "epoch":
            return Decision()
        score, _ = self.observe(event)
        return Decision(self.reasons) if self.in_band(score) else Decision()

    def retain(self, kept: Sequence[KeptCheckpoint]) -> set[str]:
        in_band = [c for c in kept if self.in_band(c.score)]
        return {c.key for c in top_by_score(in_band, self.max_checkpoints, self.mode)}
