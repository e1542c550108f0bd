"""Checkpointing in three layers, one sub-folder each: ``strategies/`` (pure decisions), ``storage/`` (the only code
that touches checkpoint files) and ``state/`` (what a checkpoint holds); above them the engine-free
:class:`Checkpointer`, the Ignite :class:`CheckpointHandler` and the original API's :class:`CheckpointManager`, which
share one :class:`CheckpointSettings`.

See ``docs/checkpoints.md`` for the rule of each strategy and the guarantees of the store.
"""

from pipeline.checkpoint.checkpointer import Checkpointer
from pipeline.checkpoint.checkpoint_handler import CheckpointHandler, register_checkpoint_events
from pipeline.checkpoint.checkpoint_manager import AUTO_STRATEGIES, AutoCheckpointManager, CheckpointManager
from pipeline.checkpoint.storage.manifest import CheckpointEntry
from pipeline.checkpoint.storage.reading import load_training_state, resolve_checkpoint
from pipeline.checkpoint.settings import STRATEGY_DEFAULT, CheckpointSettings
from pipeline.checkpoint.checkpoint_presets import CHECKPOINT_PRESETS, create_checkpoint_manager, get_checkpoint_preset
from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore, load_checkpoint_file
from pipeline.checkpoint.strategies import (
    STRATEGIES,
    AdaptiveStrategy,
    AllStrategy,
    BestStrategy,
    CheckpointEvent,
    CheckpointStrategy,
    EpochStrategy,
    IntervalStrategy,
    PerformanceStrategy,
    TimeStrategy,
    create_strategy,
)

__all__ = [
    "AUTO_STRATEGIES",
    "CHECKPOINT_PRESETS",
    "STRATEGIES",
    "STRATEGY_DEFAULT",
    "AdaptiveStrategy",
    "AllStrategy",
    "AutoCheckpointManager",
    "BestStrategy",
    "CheckpointEntry",
    "CheckpointEvent",
    "CheckpointHandler",
    "CheckpointManager",
    "CheckpointSettings",
    "CheckpointStore",
    "CheckpointStrategy",
    "Checkpointer",
    "EpochStrategy",
    "IntervalStrategy",
    "PerformanceStrategy",
    "TimeStrategy",
    "create_checkpoint_manager",
    "create_strategy",
    "get_checkpoint_preset",
    "load_checkpoint_file",
    "load_training_state",
    "register_checkpoint_events",
    "resolve_checkpoint",
]
