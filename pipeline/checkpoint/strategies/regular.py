"""Regular checkpoints: every epoch, or every N epochs or iterations."""

from __future__ import annotations

from pipeline.checkpoint.strategies.base import LEVELS, CheckpointEvent, CheckpointStrategy, Decision, _check_count
from pipeline.errors import SettingsError

__all__ = ["IntervalStrategy", "EpochStrategy"]


class IntervalStrategy(CheckpointStrategy):
    """Save every ``every`` epochs (``unit="epoch"``) or iterations (``unit="iteration"``); keep the newest
    ``max_checkpoints``.

    Rule: save at the end of epoch ``e`` when ``e % every == 0`` (or at the end of iteration ``i`` when
    ``i % every == 0``). Retention: the ``max_checkpoints`` newest of these checkpoints.

    Args:
        every: the interval, a whole number >= 1.
        unit: ``"epoch"`` or ``"iteration"``.
        max_checkpoints, monitor, mode: see :class:`CheckpointStrategy`.
        reason: the reason recorded in the manifest (default ``"interval"``).
    """

    name = "interval"

    def __init__(
        self,
        every: int = 1,
        unit: str = "epoch",
        max_checkpoints: int | None = 5,
        monitor: str | None = None,
        mode: str = "max",
        reason: str = "interval",
    ) -> None:
        super().__init__(max_checkpoints, monitor, mode)
        _check_count("every", every, allow_none=False)
        if unit not in LEVELS:
            raise SettingsError(f"unit must be one of {list(LEVELS)}, got {unit!r}")
        self.every = every
        self.unit = unit
        self.reasons = (reason,)

    @property
    def levels(self) -> tuple[str, ...]:
        return (self.unit,)

    def decide(self, event: CheckpointEvent) -> Decision:
        if event.level != self.unit:
            return Decision()
        count = event.epoch if self.unit == "epoch" else event.iteration
        return Decision(self.reasons) if count % self.every == 0 else Decision()


class EpochStrategy(IntervalStrategy):
    """Save at the end of every epoch; keep the newest ``max_checkpoints`` (reason ``"epoch"``)."""

    name = "epoch"

    def __init__(self, max_checkpoints: int | None = 5, monitor: str | None = None, mode: str = "max") -> None:
        super().__init__(1, "epoch", max_checkpoints, monitor, mode, reason="epoch")
