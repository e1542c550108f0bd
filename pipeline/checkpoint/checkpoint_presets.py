"""Named checkpoint configurations (the original API's config dicts) and the factory that reads them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

from pipeline.checkpoint.checkpoint_manager import AutoCheckpointManager, CheckpointManager
from pipeline.errors import SettingsError

__all__ = ["CHECKPOINT_PRESETS", "get_checkpoint_preset", "create_checkpoint_manager"]

CHECKPOINT_PRESETS: dict[str, dict[str, Any]] = {
    "best": {"save_strategy": "best", "monitor_metric": "val_dice", "mode": "max", "max_checkpoints": 3},
    "epoch": {"save_strategy": "epoch", "max_checkpoints": 5},
    "interval": {"save_strategy": "interval", "every": 5, "max_checkpoints": 5},
    "all": {"save_strategy": "all", "monitor_metric": "val_dice", "mode": "max", "max_checkpoints": 3},
    "adaptive": {"manager_type": "auto", "auto_strategy": "adaptive", "max_checkpoints": 5},
    "performance_based": {"manager_type": "auto", "auto_strategy": "performance_based", "max_checkpoints": 3},
    "time_based": {"manager_type": "auto", "auto_strategy": "time_based", "max_checkpoints": 3},
}

_MANAGER_TYPES = ("standard", "auto")


def get_checkpoint_preset(name: str) -> dict[str, Any]:
    """A copy of the checkpoint configuration called ``name``.

    Raises:
        SettingsError: unknown name (the valid ones are listed).
    """
    if name not in CHECKPOINT_PRESETS:
        raise SettingsError(f"unknown checkpoint preset {name!r}; valid presets: {sorted(CHECKPOINT_PRESETS)}")
    return copy.deepcopy(CHECKPOINT_PRESETS[name])


def create_checkpoint_manager(
    checkpoint_dir: str | Path, model_name: str = "model", config: Mapping[str, Any] | str | None = None
) -> CheckpointManager:
    """Build a manager from an original-API config dict (or a preset name).

    ``{"manager_type": "auto", "auto_strategy": "adaptive", ...}`` gives an :class:`AutoCheckpointManager`; otherwise
    (``manager_type`` ``"standard"`` or absent) a :class:`CheckpointManager` with ``save_strategy`` (default
    ``"best"``). The other keys are the managers' arguments (``max_checkpoints``, ``monitor_metric``, ``mode``,
    ``save_optimizer``, ``save_scheduler``, ``disk_budget``, strategy parameters).
    """
    settings = get_checkpoint_preset(config) if isinstance(config, str) else dict(config or {})
    manager_type = settings.pop("manager_type", "auto" if "auto_strategy" in settings else "standard")
    if manager_type not in _MANAGER_TYPES:
        raise SettingsError(f"unknown manager_type {manager_type!r}; valid: {list(_MANAGER_TYPES)}")
    if manager_type == "auto":
        return AutoCheckpointManager(checkpoint_dir, model_name, **settings)
    return CheckpointManager(checkpoint_dir, model_name, **settings)
