"""The original API's ``LossManager``: its loss factory and its loss scheduler, with the ``scheduler`` entry of a loss
config checked when the loss is built.

It lives with the schedules (not in ``losses/``) because it builds a schedule for a loss: the losses know nothing of
the schedules above them.
"""

from __future__ import annotations

from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses import CombinedLoss, create_loss_function as create_loss, get_preset_loss_config
from pipeline.schedules.schedule_names import create_schedule
from pipeline.schedules.scheduler import LossScheduler

__all__ = ["LossManager", "create_loss_scheduler", "schedule_type_and_params"]


def schedule_type_and_params(config: Mapping[str, Any] | str) -> tuple[str, Mapping[str, Any] | None]:
    """The schedule name and parameters of a loss config's ``scheduler`` entry (``{"type": ..., "params": {...}}``, or
    just the name).

    Raises:
        SettingsError: not a dict or a name, no ``type``, or keys other than ``type`` and ``params``.
    """
    if isinstance(config, str):
        return config, None
    if not isinstance(config, Mapping):
        raise SettingsError(f"a loss scheduler config must be a dict like {{'type': 'adaptive', 'params': {{}}}}, got {config!r}.")
    unknown = sorted(set(config) - {"type", "params"})
    if unknown or "type" not in config:
        raise SettingsError(f"a loss scheduler config takes 'type' (required) and 'params'; got keys {sorted(config)}.")
    return config["type"], config.get("params")


def create_loss_scheduler(loss_function: CombinedLoss, config: Mapping[str, Any] | str) -> LossScheduler:
    """The original API's loss scheduler: ``{"type": "adaptive" | "cosine" | "step" | "performance", "params": {...}}``
    (or just the type name) applied to ``loss_function``; its ``step(epoch, val_metrics)`` sets the next epoch's
    weights.

    Raises:
        ValueError: unknown type or parameter (the valid ones are listed), or a loss that is not a CombinedLoss.
    """
    schedule, params = schedule_type_and_params(config)
    return LossScheduler(loss_function, schedule, params)


def create_loss_function(config: Mapping[str, Any] | str) -> CombinedLoss:
    """:func:`pipeline.losses.create_loss_function`, and a ``scheduler`` entry of ``config`` checked against the built
    loss, so a bad schedule fails before training (the schedule itself is built by :func:`create_loss_scheduler`).

    Raises:
        ValueError: a bad loss config, or a bad ``scheduler`` entry (the valid choices are listed).
    """
    loss = create_loss(config)
    scheduler = config.get("scheduler") if isinstance(config, Mapping) else None
    if scheduler is not None:
        schedule, params = schedule_type_and_params(scheduler)
        create_schedule(schedule, loss.weights, params)
    return loss


class LossManager:
    """The original API's entry point: ``LossManager.create_loss_function(config)``,
    ``LossManager.create_loss_scheduler(loss, config)`` and ``LossManager.get_preset_loss_config(name)``."""

    create_loss_function = staticmethod(create_loss_function)
    create_loss_scheduler = staticmethod(create_loss_scheduler)
    get_preset_loss_config = staticmethod(get_preset_loss_config)
