"""The seed's one-line set-ups: ``quick_training_setup`` and ``create_training_manager``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.checkpoint import get_checkpoint_preset
from pipeline.losses import get_preset_loss_config
from pipeline.training.manager import TrainingManager

__all__ = ["quick_training_setup", "create_training_manager", "DEFAULT_LOSS_PRESET", "DEFAULT_CHECKPOINT_PRESET"]

DEFAULT_LOSS_PRESET = "default_segmentation"
DEFAULT_CHECKPOINT_PRESET = "best"


def create_training_manager(
    model_dir: str | Path,
    model_name: str = "model",
    loss_preset: str = DEFAULT_LOSS_PRESET,
    checkpoint_preset: str = DEFAULT_CHECKPOINT_PRESET,
    enhanced: bool = False,
    **kwargs: Any,
) -> TrainingManager:
    """A :class:`TrainingManager` with a loss preset and a checkpoint preset set up.

    Args:
        model_dir: output folder; model_name: file prefix and MLflow run name.
        loss_preset: a name of :data:`pipeline.losses.LOSS_PRESETS` (e.g. ``focal_segmentation``).
        checkpoint_preset: a name of :data:`pipeline.checkpoint.CHECKPOINT_PRESETS` (e.g. ``adaptive``).
        enhanced: track the run in MLflow (embedded SQLite store under ``model_dir`` unless configured otherwise).
        kwargs: further :class:`TrainingManager` arguments (``tracking_uri``, ``roi_size``, ``plots``, ...).

    Raises:
        ValueError: unknown preset (the valid ones are listed) or a model_dir that cannot be written.
    """
    loss_config = get_preset_loss_config(loss_preset)  # both names checked before model_dir is created
    checkpoint_config = get_checkpoint_preset(checkpoint_preset)
    manager = TrainingManager(model_dir, model_name, enable_mlflow=enhanced, **kwargs)
    manager.setup_loss_function(loss_config)
    manager.setup_checkpointing(checkpoint_config)
    return manager


def quick_training_setup(model_dir: str | Path, model_name: str = "model", **kwargs: Any) -> TrainingManager:
    """One line, sensible defaults: the ``default_segmentation`` loss (0.7 Dice + 0.3 BCE) and ``best``
    checkpoints on ``val_dice`` (3 kept, plus the newest); MLflow off. ``kwargs`` as for
    :func:`create_training_manager`."""
    return create_training_manager(model_dir, model_name, **kwargs)
