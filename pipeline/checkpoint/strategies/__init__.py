"""Checkpoint strategies: pure decision objects (when to save, what to keep), no I/O."""

from pipeline.checkpoint.strategies.adaptive import AdaptiveStrategy
from pipeline.checkpoint.strategies.base import (
    MODES,
    CheckpointEvent,
    CheckpointStrategy,
    Decision,
    KeptCheckpoint,
    MetricStrategy,
    improves,
    newest,
    top_by_score,
)
from pipeline.checkpoint.strategies.best import AllStrategy, BestStrategy
from pipeline.checkpoint.strategies.performance import PerformanceStrategy
from pipeline.checkpoint.strategies.regular import EpochStrategy, IntervalStrategy
from pipeline.checkpoint.strategies.strategy_names import STRATEGIES, create_strategy, strategy_parameters
from pipeline.checkpoint.strategies.time_based import TimeStrategy

__all__ = [
    "MODES",
    "STRATEGIES",
    "AdaptiveStrategy",
    "AllStrategy",
    "BestStrategy",
    "CheckpointEvent",
    "CheckpointStrategy",
    "Decision",
    "EpochStrategy",
    "IntervalStrategy",
    "KeptCheckpoint",
    "MetricStrategy",
    "PerformanceStrategy",
    "TimeStrategy",
    "create_strategy",
    "improves",
    "newest",
    "strategy_parameters",
    "top_by_score",
]
