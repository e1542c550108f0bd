"""The end of a bundle training and its rank-0-only log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import ignite.distributed as idist

from pipeline.bundle.weights import export_weights
from pipeline.checkpoint import CheckpointHandler
from pipeline.errors import CheckpointError
from pipeline.history import export_history, strict_json, with_checkpoints

__all__ = ["finish_training", "rank0_logger"]

logger = logging.getLogger(__name__)


def rank0_logger(name: str = "pipeline.train") -> logging.Logger:
    """``logging.getLogger(name)`` on rank 0; under ``torch.distributed`` a disabled logger on the other ranks, so a
    ``torchrun`` training prints one epoch line, not one per process."""
    if idist.get_rank() == 0:
        return logging.getLogger(name)
    quiet = logging.getLogger(f"{name}.rank{idist.get_rank()}")
    quiet.disabled = True
    return quiet


def finish_training(handler: CheckpointHandler, epoch_logger: Any, model_dir: str, title: str = "training") -> dict[str, Any]:
    """After training: the best checkpoint's network weights as ``model_dir/model.pt`` (what ``ckpt_export`` and
    ``inference.json`` read, written atomically), the per-epoch history with each epoch's checkpoint decisions as
    ``model_dir/history.json`` and ``history.csv``, and the curves as ``model_dir/training_curves.png``.

    Returns:
        ``{"model", "best_checkpoint", "last_checkpoint", "history"}``.
    """
    from pipeline.plots import plot_training_curves

    best = handler.best_checkpoint or handler.last_checkpoint
    if best is None:
        raise CheckpointError(f"training wrote no checkpoint into {handler.store.directory}.")
    model = export_weights(best, Path(model_dir) / "model.pt")
    records = with_checkpoints(getattr(epoch_logger, "history", []), handler.checkpointer.history)
    export_history(records, model_dir)
    history = json.loads(strict_json(records))
    if history:
        plot_training_curves(records, Path(model_dir) / "training_curves.png", title=title)
    logger.info("best checkpoint %s, network weights exported to %s", best, model)
    return {"model": model, "best_checkpoint": best, "last_checkpoint": handler.last_checkpoint, "history": history}
