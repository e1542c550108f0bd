"""What every checkpoint strategy shares: the event it decides on, what it knows of a kept checkpoint, the decision.

Strategies are pure decision objects: no I/O, no torch, and a ``state_dict`` of plain numbers and lists, so they are
tested on scripted metric sequences and their state loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from pipeline.errors import SettingsError

__all__ = [
    "MODES",
    "LEVELS",
    "CheckpointEvent",
    "KeptCheckpoint",
    "Decision",
    "CheckpointStrategy",
    "MetricStrategy",
    "improves",
    "newest",
    "top_by_score",
]

MODES = ("max", "min")
LEVELS = ("epoch", "iteration")


@dataclass(frozen=True)
class CheckpointEvent:
    """The moment a strategy is asked about.

    Args:
        epoch: completed epochs (1-based, as ``engine.state.epoch``).
        iteration: completed iterations since the start of training.
        metrics: validation metrics produced *at this event* (``None`` when no validation ran since the last event).
        elapsed: training seconds so far; the clock is part of the saved state, so it continues over a resume.
        max_epochs: planned epochs, when known (time-based milestones need it).
        level: ``"epoch"`` (end of an epoch) or ``"iteration"`` (end of an iteration).
    """

    epoch: int
    iteration: int
    metrics: Mapping[str, float] | None = None
    elapsed: float = 0.0
    max_epochs: int | None = None
    level: str = "epoch"


@dataclass(frozen=True)
class KeptCheckpoint:
    """What retention needs to know of a checkpoint on disk: its key, position, score, why it was saved, and its
    place in the order of saves (``seq``; after a resume from an older checkpoint, a new file is newer than the files
    of the abandoned later epochs, although its epoch is smaller)."""

    key: str
    epoch: int
    iteration: int
    score: float | None = None
    reasons: frozenset[str] = field(default_factory=frozenset)
    seq: int = 0


@dataclass(frozen=True)
class Decision:
    """The reasons to save now; no reason means no save."""

    reasons: tuple[str, ...] = ()

    @property
    def save(self) -> bool:
        return bool(self.reasons)


def improves(score: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``score`` beats ``best`` by more than ``min_delta`` in direction ``mode``; NaN never improves."""
    if not math.isfinite(score):
        return False
    if best is None:
        return True
    return score > best + min_delta if mode == "max" else score < best - min_delta


def newest(kept: Iterable[KeptCheckpoint], k: int | None) -> list[KeptCheckpoint]:
    """The ``k`` most recently saved checkpoints (all when ``k`` is None), newest first."""
    ordered = sorted(kept, key=lambda c: (c.seq, c.iteration, c.epoch), reverse=True)
    return ordered if k is None else ordered[:k]


def top_by_score(kept: Iterable[KeptCheckpoint], k: int | None, mode: str) -> list[KeptCheckpoint]:
    """The ``k`` best-scored checkpoints, best first; among equal scores the older (first to reach it) ranks higher;
    no score ranks last."""
    sign = 1.0 if mode == "max" else -1.0

    def rank(c: KeptCheckpoint) -> tuple:
        finite = c.score is not None and math.isfinite(c.score)
        return (finite, sign * c.score if finite else 0.0, -c.seq, -c.iteration)

    ordered = sorted(kept, key=rank, reverse=True)
    return ordered if k is None else ordered[:k]


def _check_count(name: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be a whole number >= 1{' or None' if allow_none else ''}, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SettingsError(f"{name} must be a number >= 0, got {value!r}")


class CheckpointStrategy:
    """Base of the checkpoint strategies.

    A strategy answers two questions: :meth:`decide` (save at this event, and why) and :meth:`retain` (which of the
    checkpoints saved for this strategy's reasons are still worth keeping). Protection of the newest and of the best
    checkpoint, the ``last`` checkpoint and the disk budget are the checkpointer's job, not the strategy's.

    Args:
        max_checkpoints: how many checkpoints this strategy keeps (None: all).
        monitor: the metric that scores checkpoints (optional for the regular strategies; it then only decides which
            checkpoint is "best" and therefore protected).
        mode: ``"max"`` or ``"min"``: whether a larger or a smaller ``monitor`` is better.
    """

    name: ClassVar[str] = ""
    #: whether :meth:`decide` needs ``monitor``.
    needs_monitor: ClassVar[bool] = False
    #: the reasons this strategy writes into the manifest.
    reasons: tuple[str, ...] = ()

    def __init__(self, max_checkpoints: int | None = 5, monitor: str | None = None, mode: str = "max") -> None:
        _check_count("max_checkpoints", max_checkpoints)
        if mode not in MODES:
            raise SettingsError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if monitor is not None and not (isinstance(monitor, str) and monitor):
            raise SettingsError(f"monitor must be a metric name, got {monitor!r}")
        self.max_checkpoints = max_checkpoints
        self.monitor = monitor
        self.mode = mode

    @property
    def levels(self) -> tuple[str, ...]:
        """Event levels this strategy wants to be asked at."""
        return ("epoch",)

    def decide(self, event: CheckpointEvent) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def retain(self, kept: Sequence[KeptCheckpoint]) -> set[str]:
        """Keys of ``kept`` (checkpoints saved for one of :attr:`reasons`) this strategy still wants."""
        return {c.key for c in newest(kept, self.max_checkpoints)}

    def score(self, event: CheckpointEvent) -> float | None:
        """The monitored metric at ``event`` (NaN when it is missing a value); None when no metrics came with the
        event, nothing is monitored, or the strategy does not need the metric and it is absent.

        Raises:
            SettingsError: a strategy that needs ``monitor`` got metrics without it (the names present are listed).
        """
        if event.metrics is None or self.monitor is None:
            return None
        if self.monitor not in event.metrics:
            if not self.needs_monitor:
                return None  # the monitor only marks the best checkpoint for protection here
            raise SettingsError(
                f"monitored metric {self.monitor!r} is not among the metrics produced: {sorted(event.metrics)}"
            )
        value = event.metrics[self.monitor]
        return math.nan if value is None else float(value)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_checkpoints={self.max_checkpoints}, monitor={self.monitor!r}, mode={self.mode!r})"


class MetricStrategy(CheckpointStrategy):
    """Base of the strategies driven by a monitored metric; tracks the best score seen (``best``, ``best_epoch``).

    Args:
        min_delta: the least change of ``monitor`` that counts as an improvement.
    """

    needs_monitor = True

    def __init__(
        self, max_checkpoints: int | None = 5, monitor: str | None = None, mode: str = "max", min_delta: float = 0.0
    ) -> None:
        super().__init__(max_checkpoints, monitor, mode)
        _check_non_negative("min_delta", min_delta)
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def observe(self, event: CheckpointEvent) -> tuple[float | None, bool]:
        """Score ``event`` and update the best; returns ``(score, improved)`` (``(None, False)`` without metrics)."""
        if self.monitor is None:
            raise SettingsError(f"the {self.name!r} strategy needs a monitored metric: pass monitor=...")
        score = self.score(event)
        if score is None:
            return None, False
        improved = improves(score, self.best, self.mode, self.min_delta)
        if improved:
            self.best, self.best_epoch = score, event.epoch
        return score, improved

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.best_epoch = None if state.get("best_epoch") is None else int(state["best_epoch"])
