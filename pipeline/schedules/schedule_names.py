"""Schedules by name (the original API's ``'adaptive' | 'cosine' | 'step' | 'performance'``), with their parameters checked."""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.schedules.adaptive import AdaptiveSchedule
from pipeline.schedules.weight_schedule import WeightSchedule
from pipeline.schedules.constant import ConstantSchedule
from pipeline.schedules.cosine import CosineSchedule
from pipeline.schedules.performance import PerformanceSchedule
from pipeline.schedules.step import StepSchedule

__all__ = ["SCHEDULES", "create_schedule", "schedule_parameters"]

#: name -> schedule class
SCHEDULES: dict[str, type[WeightSchedule]] = {
    cls.name: cls for cls in (AdaptiveSchedule, CosineSchedule, StepSchedule, PerformanceSchedule, ConstantSchedule)
}


def schedule_parameters(name: str) -> list[str]:
    """The parameters the schedule ``name`` accepts (besides the initial weights)."""
    return [p for p in inspect.signature(_schedule_class(name)).parameters if p != "initial"]


def _schedule_class(name: str) -> type[WeightSchedule]:
    if not isinstance(name, str) or name not in SCHEDULES:
        raise SettingsError(f"unknown loss-weight schedule {name!r}; valid types: {list(SCHEDULES)}.")
    return SCHEDULES[name]


def create_schedule(name: str, initial: Mapping[str, float], params: Mapping[str, Any] | None = None) -> WeightSchedule:
    """Build the schedule ``name`` starting from the weights ``initial``.

    Args:
        name: ``"adaptive"``, ``"cosine"``, ``"step"`` or ``"performance"``.
        initial: the weights the training starts with (``loss.weights``).
        params: the schedule's parameters (see each class).

    Raises:
        ValueError: unknown name or parameter (the valid ones are listed), or a parameter out of range.
    """
    cls = _schedule_class(name)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise SettingsError(f"params of the {name!r} schedule must be a dict, got {params!r}.")
    valid = schedule_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise SettingsError(f"unknown parameter(s) {unknown} for the {name!r} loss-weight schedule; valid: {valid}.")
    return cls(initial, **params)
