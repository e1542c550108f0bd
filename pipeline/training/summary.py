"""The seed's training summary, built from the history and the checkpoint summary."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["best_in_history", "training_summary"]


def best_in_history(history: Sequence[Mapping[str, Any]], metric: str | None, mode: str = "max") -> tuple[float | None, int | None]:
    """The best finite value of ``metric`` over the epochs of ``history`` and its epoch (the first on ties)."""
    if not metric:
        return None, None
    points = [(float(h[metric]), int(h["epoch"])) for h in history if isinstance(h.get(metric), (int, float))]
    points = [(v, e) for v, e in points if math.isfinite(v)]
    if not points:
        return None, None
    sign = 1.0 if mode == "max" else -1.0
    value, epoch = max(points, key=lambda p: (sign * p[0], -p[1]))
    return value, epoch


def training_summary(
    model_name: str,
    model_dir: str,
    history: Sequence[Mapping[str, Any]],
    checkpoint_summary: Mapping[str, Any] | None,
    model_info: Mapping[str, Any],
    loss_info: Mapping[str, Any],
    tracking: Mapping[str, Any],
    elapsed_s: float,
    total_steps: int,
) -> dict[str, Any]:
    """The seed's ``get_training_summary()`` dict.

    Returns:
        ``training_progress`` (``total_epochs``, ``total_steps``, ``elapsed_s``, ``last_epoch``),
        ``model_info`` (``best_metric``, ``best_epoch``, ``monitor_metric`` and the model's class and size),
        ``loss_info``, ``checkpoint_info`` (``total_checkpoints``, ... as ``get_checkpoint_summary()``) and
        ``tracking`` (MLflow URI and run id, when on). The best metric is the best checkpoint's score, or with no
        scored checkpoint the best value of the monitored metric in the history.
    """
    checkpoint_info = dict(checkpoint_summary or {"total_checkpoints": 0})
    monitor = checkpoint_info.get("monitor_metric")
    best, best_epoch = checkpoint_info.get("best_metric"), checkpoint_info.get("best_epoch")
    if best is None:
        best, best_epoch = best_in_history(history, monitor, checkpoint_info.get("mode") or "max")
    return {
        "model_name": model_name,
        "model_dir": model_dir,
        "training_progress": {
            "total_epochs": len(history),
            "total_steps": int(total_steps),
            "elapsed_s": elapsed_s,
            "last_epoch": dict(history[-1]) if history else None,
        },
        "model_info": {**model_info, "best_metric": best, "best_epoch": best_epoch, "monitor_metric": monitor},
        "loss_info": dict(loss_info),
        "checkpoint_info": checkpoint_info,
        "tracking": dict(tracking),
    }
