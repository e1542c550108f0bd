"""Adaptive checkpoints: frequent while the metric improves, sparser on plateaus, always on a new best."""

from __future__ import annotations

from typing import Any, Mapping

from pipeline.checkpoint.strategies.base import CheckpointEvent, Decision, MetricStrategy, _check_count
from pipeline.errors import SettingsError

__all__ = ["AdaptiveStrategy"]


class AdaptiveStrategy(MetricStrategy):
    """Saving frequency follows training progress.

    Rule, at the end of each epoch ``e``:

    - a new best (as :class:`BestStrategy` defines it, from the validation metrics that came with the event) saves
      with reason ``"best"`` and resets the gap to ``min_gap``;
    - otherwise, when ``e - last_saved_epoch >= gap``, it saves with reason ``"adaptive"`` and the gap doubles, up to
      ``max_gap``.

    So while the metric keeps improving a checkpoint is written at every evaluation, and on a plateau the saves
    thin out: ``min_gap``, then 2, 4, 8, ... epochs apart, up to ``max_gap``. Retention: the ``max_checkpoints``
    newest of these checkpoints (the best one is protected by the checkpointer regardless).

    Args:
        min_gap: the gap in epochs while improving (>= 1).
        max_gap: the largest gap on a plateau (>= ``min_gap``).
        max_checkpoints, monitor, mode, min_delta: see :class:`MetricStrategy`.
    """

    name = "adaptive"
    reasons = ("best", "adaptive")

    def __init__(
        self,
        max_checkpoints: int | None = 5,
        monitor: str | None = None,
        mode: str = "max",
        min_delta: float = 0.0,
        min_gap: int = 1,
        max_gap: int = 16,
    ) -> None:
        super().__init__(max_checkpoints, monitor, mode, min_delta)
        _check_count("min_gap", min_gap, allow_none=False)
        _check_count("max_gap", max_gap, allow_none=False)
        if max_gap < min_gap:
            raise SettingsError(f"max_gap ({max_gap}) must be >= min_gap ({min_gap})")
        self.min_gap, self.max_gap = min_gap, max_gap
        self.gap = min_gap
        self.last_saved_epoch = 0

    def decide(self, event: CheckpointEvent) -> Decision:
        if event.level != "epoch":
            return Decision()
        _, improved = self.observe(event)
        if improved:
            self.gap = self.min_gap
            reasons: tuple[str, ...] = ("best",)
        elif event.epoch - self.last_saved_epoch >= self.gap:
            self.gap = min(self.gap * 2, self.max_gap)
            reasons = ("adaptive",)
        else:
            return Decision()
        self.last_saved_epoch = event.epoch
        return Decision(reasons)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "gap": self.gap, "last_saved_epoch": self.last_saved_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.gap = int(state.get("gap", self.min_gap))
        self.last_saved_epoch = int(state.get("last_saved_epoch", 0))
