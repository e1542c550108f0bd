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
        [
            "DatasetError",
            "DatasetFingerprint",
            "Plan",
            "PlanSettings",
            "build_dataset",
            "check_items",
            "check_pair",
            "compute_fingerprint",
            "load_datalist",
            "load_plan",
            "make_loader",
            "make_plan",
            "plan_cache",
            "plan_dataset",
            "plan_overrides",
        ],
        "pipeline.data",
    ),
    "CandidateSlidingWindowInferer": "pipeline.inference",
    "HeartLocator": "pipeline.inference",
    **dict.fromkeys(["VAL_KEY_METRIC", "create_evaluator", "create_trainer"], "pipeline.engines"),
    "EpochSummaryLogger": "pipeline.epoch_summary",
    "TrainingCurves": "pipeline.training_curves",
    "TimeBudget": "pipeline.time_budget",
    **dict.fromkeys(["mean_ci", "paired_wilcoxon", "summarize_recipes"], "pipeline.evaluation.statistics"),
    "RECIPES": "pipeline.recipes",
    "run_comparison": "pipeline.workflows.comparison",
    "MLflowTracker": "pipeline.tracking",
    **dict.fromkeys(
        ["TrainingHandlers", "TrainingManager", "attach_training_handlers", "create_training_manager", "quick_training_setup"],
        "pipeline.training",
    ),
    "create_unet": "pipeline.networks",
    **dict.fromkeys(
        ["PhantomConfig", "TreeConfig", "make_phantom", "write_phantom_dataset", "CCTAConfig", "make_ccta_phantom"],
        "pipeline.phantoms",
    ),
    **dict.fromkeys(["TrainingResult", "evaluate_bundle", "infer_bundle", "train_bundle"], "pipeline.workflows"),
    **dict.fromkeys(
        [
            "AutoCheckpointManager",
            "CHECKPOINT_PRESETS",
            "CheckpointHandler",
            "CheckpointManager",
            "CheckpointSettings",
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
            "SkeletonRecallLoss",
            "create_loss_function",
            "get_preset_loss_config",
            "list_loss_presets",
            "soft_skeleton",
        ],
        "pipeline.losses",
    ),
    **dict.fromkeys(
        [
            "LossManager",
            "LossScheduleHandler",
            "LossScheduler",
            "SCHEDULES",
            "WeightSchedule",
            "create_loss_scheduler",
            "create_schedule",
        ],
        "pipeline.schedules",
    ),
    **dict.fromkeys(
        [
            "METRICS",
            "CasePair",
            "EvaluationSettings",
            "SparseMask",
            "VesselMetric",
            "binary_metrics",
            "evaluate_pairs",
            "monai_reference_metrics",
            "pair_by_name",
            "read_pairs_file",
            "run_evaluation",
            "volume_diagonal_mm",
            "worst_value",
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
