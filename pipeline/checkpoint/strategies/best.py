"""Checkpoints chosen by a monitored metric: the best ones, and best plus regular together."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pipeline.checkpoint.strategies.base import (
    CheckpointEvent,
    CheckpointStrategy,
    Decision,
    KeptCheckpoint,
    MetricStrategy,
    _check_count,
    top_by_score,
)
from pipeline.checkpoint.strategies.regular import IntervalStrategy

__all__ = ["BestStrategy", "AllStrategy"]


class BestStrategy(MetricStrategy):
    """Save when the monitored metric improves; keep the top ``max_checkpoints`` by metric.

    Rule: at an event that carries metrics, save when ``monitor`` beats the best value seen so far by more than
    ``min_delta`` (``mode="max"``: ``score > best + min_delta``; ``"min"``: ``score < best - min_delta``). The first
    finite value always saves; NaN/inf never does; a tie with the best does not. Retention: the ``max_checkpoints``
    highest (``"max"``) or lowest (``"min"``) scores.
    """

    name = "best"
    reasons = ("best",)

    def decide(self, event: CheckpointEvent) -> Decision:
        if event.level != "epoch":
            return Decision()
        _, improved = self.observe(event)
        return Decision(self.reasons) if improved else Decision()

    def retain(self, kept: Sequence[KeptCheckpoint]) -> set[str]:
        return {c.key for c in top_by_score(kept, self.max_checkpoints, self.mode)}


class AllStrategy(CheckpointStrategy):
    """Best (top-k by metric) and regular (latest) checkpoints together, each with its own retention.

    Rule: a checkpoint is saved when :class:`BestStrategy` or the regular :class:`IntervalStrategy` (every
    ``every`` epochs) says so; one file serves both when both do. Retention: a file stays while either side keeps
    it: the ``max_best`` best-scored ``"best"`` files and the ``max_regular`` newest ``"regular"`` files.

    Args:
        max_best: best checkpoints to keep.
        max_regular: regular checkpoints to keep.
        every: regular interval in epochs.
        monitor, mode, min_delta: as for :class:`BestStrategy`.
    """

    name = "all"
    needs_monitor = True

    def __init__(
        self,
        max_best: int | None = 3,
        max_regular: int | None = 3,
        every: int = 1,
        monitor: str | None = None,
        mode: str = "max",
        min_delta: float = 0.0,
    ) -> None:
        _check_count("max_best", max_best)
        _check_count("max_regular", max_regular)
        self._best = BestStrategy(max_best, monitor, mode, min_delta)
        self._regular = IntervalStrategy(every, "epoch", max_regular, monitor, mode, reason="regular")
        super().__init__(None, monitor, mode)
        self.reasons = self._best.reasons + self._regular.reasons

    @property
    def monitor(self) -> str | None:
        return self._best.monitor

    @monitor.setter
    def monitor(self, value: str | None) -> None:
        # the two sides share the monitored metric (set late when it comes from the evaluator's key metric)
        if hasattr(self, "_best"):
            self._best.monitor = self._regular.monitor = value

    @property
    def best(self) -> float | None:
        return self._best.best

    def decide(self, event: CheckpointEvent) -> Decision:
        return Decision(self._best.decide(event).reasons + self._regular.decide(event).reasons)

    def retain(self, kept: Sequence[KeptCheckpoint]) -> set[str]:
        best = self._best.retain([c for c in kept if "best" in c.reasons])
        regular = self._regular.retain([c for c in kept if "regular" in c.reasons])
        return best | regular

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._best.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._best.load_state_dict(state.get("best", {}))
