"""The loss's own weights, unchanged: what a loss without a schedule publishes through the same schedule handler."""

from __future__ import annotations

from typing import Mapping

from pipeline.schedules.weight_schedule import WeightSchedule

__all__ = ["ConstantSchedule"]


class ConstantSchedule(WeightSchedule):
    """Keep the configured weights every epoch.

    With it, :class:`~pipeline.schedules.LossScheduleHandler` publishes a loss's constant weights and each epoch's
    mean term losses (``state.loss_weights``, ``state.loss_components``) as it does for a changing schedule, so
    loggers, the tracker and the history report every term the same way.

    Args:
        initial: the loss's configured weights (``loss.weights``).
    """

    name = "constant"

    def __init__(self, initial: Mapping[str, float]) -> None:
        super().__init__(initial, normalize=False)

    def _active_terms(self) -> list[str]:
        return []

    def resume_at(self, epoch: int) -> bool:
        return True
