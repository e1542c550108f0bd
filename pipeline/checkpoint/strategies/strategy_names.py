"""Strategies by name, with their parameters checked against what each accepts."""

from __future__ import annotations

import inspect
from typing import Any

from pipeline.checkpoint.strategies.adaptive import AdaptiveStrategy
from pipeline.checkpoint.strategies.base import CheckpointStrategy
from pipeline.checkpoint.strategies.best import AllStrategy, BestStrategy
from pipeline.checkpoint.strategies.performance import PerformanceStrategy
from pipeline.checkpoint.strategies.regular import EpochStrategy, IntervalStrategy
from pipeline.checkpoint.strategies.time_based import TimeStrategy
from pipeline.errors import SettingsError

__all__ = ["STRATEGIES", "create_strategy", "strategy_parameters"]

STRATEGIES: dict[str, type[CheckpointStrategy]] = {
    cls.name: cls
    for cls in (BestStrategy, EpochStrategy, IntervalStrategy, AllStrategy, AdaptiveStrategy, PerformanceStrategy, TimeStrategy)
}


def strategy_parameters(name: str) -> list[str]:
    """The keyword parameters the strategy ``name`` accepts."""
    return [p for p in inspect.signature(_strategy_class(name)).parameters if p != "reason"]


def _strategy_class(name: str) -> type[CheckpointStrategy]:
    if name not in STRATEGIES:
        raise SettingsError(f"unknown checkpoint strategy {name!r}; valid strategies: {sorted(STRATEGIES)}")
    return STRATEGIES[name]


def create_strategy(name: str | CheckpointStrategy, **params: Any) -> CheckpointStrategy:
    """Build the strategy ``name`` with ``params`` (an already built strategy is returned as it is).

    ``max_checkpoints`` given to ``"all"`` sets both of its retentions unless ``max_best``/``max_regular`` are given.

    Raises:
        SettingsError: unknown name (the valid ones are listed) or a parameter the strategy does not take.
    """
    if isinstance(name, CheckpointStrategy):
        if params:
            raise SettingsError(f"parameters {sorted(params)} given with an already built strategy {name!r}")
        return name
    cls = _strategy_class(name)
    if cls is AllStrategy and "max_checkpoints" in params:
        k = params.pop("max_checkpoints")
        params.setdefault("max_best", k)
        params.setdefault("max_regular", k)
    valid = strategy_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise SettingsError(f"unknown parameter(s) {unknown} for checkpoint strategy {name!r}; valid: {valid}")
    return cls(**params)
