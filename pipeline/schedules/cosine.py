"""Cosine schedule: each weight anneals from its start to its end value, after an optional warm-up."""

from __future__ import annotations

import math
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.schedules.weight_schedule import WeightSchedule, check_count

__all__ = ["CosineSchedule", "DEFAULT_EPOCHS"]

#: annealing length when none is given and no trainer tells the run's length
DEFAULT_EPOCHS = 100


class CosineSchedule(WeightSchedule):
    """Anneal every weight from a start value ``start_k`` to an end value ``end_k`` along half a cosine.

    After ``e`` completed epochs (the weights of epoch ``e + 1``), with warm-up ``W`` and annealing length ``N``::

        t = clamp((e - W) / N, 0, 1)
        w_k = end_k + (start_k - end_k) * (1 + cos(pi * t)) / 2

    so epochs ``1 .. W + 1`` train with the start weights (the warm-up, then the cosine's starting point, as
    PyTorch's ``CosineAnnealingLR`` trains its first epoch at the initial rate); the weights then move slowly, fastest
    half-way, slowly again, and epochs from ``W + N + 1`` on train with the end weights (``CosineAnnealingLR``'s
    shape, from start to end instead of from ``lr`` to ``eta_min``). The weights are then bounded and, with ``normalize`` (default), scaled to the
    sum of the loss's weights, so start or end values that sum to something else give *proportions*.

    The loss's configured weights are one end of the path: by default the start (then ``end_weights`` default to
    equal shares); with ``start_weights`` they are the end, so a preset can be *reached*, e.g. clDice faded in once
    the overlap terms have found the vessels -- on ``vessel_cldice`` (Dice .5, BCE .2, clDice .3)::

        {"type": "cosine", "params": {"start_weights": {"dice": 0.7, "bce": 0.3, "cldice": 0.0},
                                      "warmup_epochs": 15, "epochs": 10}}

    Args:
        initial: the loss's configured weights (``loss.weights``).
        start_weights: start value per term (terms not named: their configured weight); default: the configured
            weights.
        end_weights: end value per term (terms not named: their configured weight); default: the configured
            weights when ``start_weights`` is given, else the sum shared equally by all terms.
        epochs: annealing length ``N`` in epochs (after the warm-up); ``None``: the rest of the run when attached to
            a trainer (``max_epochs - 1 - warmup_epochs``, so the last epoch trains with the end weights), else
            ``DEFAULT_EPOCHS`` (100).
        warmup_epochs: ``W``, epochs before the cosine starts (``W + 1`` epochs train with the start weights).
        min_weight, max_weight, normalize: see :class:`~pipeline.schedules.weight_schedule.WeightSchedule`.
    """

    name = "cosine"

    def __init__(
        self,
        initial: Mapping[str, float],
        start_weights: Mapping[str, float] | None = None,
        end_weights: Mapping[str, float] | None = None,
        epochs: int | None = None,
        warmup_epochs: int = 0,
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__(initial, min_weight, max_weight, normalize, start_weights)
        equal = dict.fromkeys(self.terms, self.total / len(self.terms))
        self.end = self.named_weights("end_weights", end_weights) or (dict(self.initial) if start_weights else equal)
        self.epochs = None if epochs is None else check_count("epochs", epochs, 1)
        self.warmup_epochs = check_count("warmup_epochs", warmup_epochs)

    def set_run_length(self, max_epochs: int) -> None:
        """Anneal over the rest of a run of ``max_epochs`` epochs, reaching the end weights in its last epoch,
        unless ``epochs`` was given."""
        if self.epochs is None:
            if max_epochs - 1 <= self.warmup_epochs:
                raise SettingsError(
                    f"cosine schedule: warmup_epochs={self.warmup_epochs} leaves no epoch of a {max_epochs}-epoch run to anneal."
                )
            self.epochs = max_epochs - 1 - self.warmup_epochs

    def weights_after(self, epoch: int) -> dict[str, float]:
        """The weights for epoch ``epoch + 1`` (``epoch`` epochs completed)."""
        length = self.epochs or DEFAULT_EPOCHS
        t = min(max((epoch - self.warmup_epochs) / length, 0.0), 1.0)
        keep = (1.0 + math.cos(math.pi * t)) / 2.0
        raw = {k: self.end[k] + (self.start[k] - self.end[k]) * keep for k in self.terms}
        return self.settle(raw)

    def _epoch_completed(self, losses: Mapping[str, float] | None) -> None:
        self.weights = self.weights_after(self.epoch)

    def resume_at(self, epoch: int) -> bool:
        self.epoch_completed(epoch)
        return True

    def _extra_state(self) -> dict[str, Any]:
        return {"epochs": self.epochs or 0}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        if state.get("epochs"):
            self.epochs = int(state["epochs"])
