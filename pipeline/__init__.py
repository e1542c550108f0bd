"""Vessel-segmentation training pipeline on MONAI and PyTorch Ignite.

Public names are importable from here; each is imported on first use, so ``import pipeline.checkpoint`` (or the
CLI's ``--help``) does not pay for importing MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["CheckpointError", "InputError", "SettingsError"], "pipeline.errors"),
    **dict.fromkeys(
        ["DatasetError", "build_dataset", "check_items", "check_pair", "load_datalist", "make_loader", "plan_cache"],
        "pipeline.data",
    ),
    **dict.fromkeys(["CandidateSlidingWindowInferer"], "pipeline.inference"),
    **dict.fromkeys(["VAL_KEY_METRIC", "create_evaluator", "create_trainer"], "pipeline.engines"),
    "EpochSummaryLogger": "pipeline.handlers",
    "MLflowTracker": "pipeline.tracking",
    **dict.fromkeys(["TrainingManager", "create_training_manager", "quick_training_setup"], "pipeline.training"),
    "create_unet": "pipeline.networks",
    **dict.fromkeys(["PhantomConfig", "TreeConfig", "make_phantom", "write_phantom_dataset"], "pipeline.phantoms"),
    **dict.fromkeys(
        [
            "CaseScore",
            "TrainingConfig",
            "TrainingResult",
            "format_case_table",
            "load_network",
            "predict_and_score",
            "predict_volumes",
            "run_training",
        ],
        "pipeline.workflows",
    ),
    **dict.fromkeys(
        [
            "AutoCheckpointManager",
            "CHECKPOINT_PRESETS",
            "CheckpointHandler",
            "CheckpointManager",
            "CheckpointStore",
            "CheckpointStrategy",
            "create_checkpoint_manager",
            "create_strategy",
            "get_checkpoint_preset",
            "load_training_state",
        ],
        "pipeline.checkpoint",
    ),
    **dict.fromkeys(
        [
            "LOSS_PRESETS",
            "LOSS_TERMS",
            "ClDiceLoss",
            "CombinedLoss",
            "EnhancedBCELoss",
            "EnhancedDiceLoss",
            "EnhancedTverskyLoss",
            "LogitsLoss",
            "LossManager",
            "SkeletonRecallLoss",
            "create_loss_function",
            "create_loss_scheduler",
            "get_preset_loss_config",
            "list_loss_presets",
            "soft_skeleton",
        ],
        "pipeline.losses",
    ),
    **dict.fromkeys(
        [
            "LossScheduleHandler",
            "LossScheduler",
            "SCHEDULES",
            "WeightSchedule",
            "create_schedule",
        ],
        "pipeline.schedules",
    ),
    **dict.fromkeys(
        [
            "METRICS",
            "SparseMask",
            "VesselMetric",
            "binary_metrics",
            "evaluate_pairs",
            "monai_reference_metrics",
            "run_evaluation",
        ],
        "pipeline.evaluation",
    ),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
