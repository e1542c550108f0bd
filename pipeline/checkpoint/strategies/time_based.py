"""Time-based checkpoints: every T seconds of training time and at milestones of the planned epochs."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from pipeline.checkpoint.strategies.base import CheckpointEvent, CheckpointStrategy, Decision, KeptCheckpoint, newest
from pipeline.errors import SettingsError

__all__ = ["TimeStrategy"]


class TimeStrategy(CheckpointStrategy):
    """Save every ``interval_seconds`` of training time and at milestones (fractions of the planned epochs).

    Rule: at the end of any iteration or epoch, save (reason ``"time"``) when ``elapsed - last_saved_elapsed >=
    interval_seconds``, ``last_saved_elapsed`` being the clock at this strategy's previous save of either reason; at
    the end of epoch ``e``, save (reason ``"milestone"``) for each milestone ``m`` not yet
    reached with ``e >= ceil(m * max_epochs)``. ``elapsed`` is the training clock that the checkpoint handler keeps
    in its state, so after a resume the schedule continues where it was instead of restarting (Lightning's
    ``train_time_interval`` restarts). Retention: the ``max_checkpoints`` newest ``"time"`` checkpoints; milestone
    checkpoints are kept (``keep_milestones=True``) or retained like the time ones.

    Args:
        interval_seconds: seconds of training between saves (> 0), or None for milestones only.
        milestones: fractions in (0, 1] of ``max_epochs``.
        keep_milestones: whether milestone checkpoints are never evicted.
        max_checkpoints, monitor, mode: see :class:`CheckpointStrategy`.
    """

    name = "time_based"
    reasons = ("time", "milestone")

    def __init__(
        self,
        interval_seconds: float | None = 600.0,
        milestones: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        keep_milestones: bool = True,
        max_checkpoints: int | None = 3,
        monitor: str | None = None,
        mode: str = "max",
    ) -> None:
        super().__init__(max_checkpoints, monitor, mode)
        if interval_seconds is not None and (
            isinstance(interval_seconds, bool) or not isinstance(interval_seconds, (int, float)) or not interval_seconds > 0
        ):
            raise SettingsError(f"interval_seconds must be a number > 0 or None, got {interval_seconds!r}")
        bad = [m for m in milestones if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= 1]
        if bad:
            raise SettingsError(f"milestones must be fractions in (0, 1] of the planned epochs, got {bad}")
        if interval_seconds is None and not milestones:
            raise SettingsError("time_based needs interval_seconds or milestones (both are empty)")
        self.interval_seconds = None if interval_seconds is None else float(interval_seconds)
        self.milestones = tuple(sorted(float(m) for m in milestones))
        self.keep_milestones = bool(keep_milestones)
        self.last_saved_elapsed = 0.0
        self.reached: list[float] = []

    @property
    def levels(self) -> tuple[str, ...]:
        return ("epoch", "iteration") if self.interval_seconds is not None else ("epoch",)

    def decide(self, event: CheckpointEvent) -> Decision:
        reasons: list[str] = []
        if self.interval_seconds is not None and event.elapsed - self.last_saved_elapsed >= self.interval_seconds:
            reasons.append("time")
        if event.level == "epoch" and event.max_epochs:
            due = [m for m in self.milestones if m not in self.reached and event.epoch >= math.ceil(m * event.max_epochs - 1e-9)]
            if due:
                self.reached.extend(due)
                reasons.append("milestone")
        if reasons:
            self.last_saved_elapsed = event.elapsed
        return Decision(tuple(reasons))

    def retain(self, kept: Sequence[KeptCheckpoint]) -> set[str]:
        keep = {c.key for c in newest([c for c in kept if "time" in c.reasons], self.max_checkpoints)}
        milestones = [c for c in kept if "milestone" in c.reasons]
        keep |= {c.key for c in (milestones if self.keep_milestones else newest(milestones, self.max_checkpoints))}
        return keep

    def state_dict(self) -> dict[str, Any]:
        return {"last_saved_elapsed": self.last_saved_elapsed, "reached": list(self.reached)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_saved_elapsed = float(state.get("last_saved_elapsed", 0.0))
        self.reached = [float(m) for m in state.get("reached", [])]
