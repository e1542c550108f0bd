"""Cosine schedule: each weight anneals from its start to its end value, after an optional warm-up."""

from __future__ import annotations

import math
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.schedules.base import WeightSchedule, check_count
from pipeline.schedules.weights import check_names, per_term

__all__ = ["CosineSchedule", "DEFAULT_EPOCHS"]

#: annealing length when none is given and no trainer tells the run's length
DEFAULT_EPOCHS = 100


class CosineSchedule(WeightSchedule):
    """Anneal every weight from its initial value ``s_k`` to an end value ``e_k`` along half a cosine.

    After ``e`` completed epochs (the weights of epoch ``e + 1``), with warm-up ``W`` and annealing length ``N``::

        t = clamp((e - W) / N, 0, 1)
        w_k = e_k + (s_k - e_k) * (1 + cos(pi * t)) / 2

    so the weights hold their start values through the warm-up, move slowly, fastest half-way, slowly again, and
    stay at the end values after ``W + N`` epochs (PyTorch's ``CosineAnnealingLR`` shape, from start to end instead
    of from ``lr`` to ``eta_min``). The weights are then bounded and, with ``normalize`` (default), scaled to the
    initial sum, so end values that sum to something else give the *proportions* at the end.

    A typical use is fading a topology term in once the overlap terms have found the vessels:
    ``{"type": "cosine", "params": {"end_weights": {"dice": 0.5, "cldice": 0.5}, "warmup_epochs": 10}}`` on a
    loss that starts at ``dice=1, cldice=0``.

    Args:
        initial: the weights at the start (``loss.weights``).
        end_weights: end value per term (terms not named keep their start value); default: the initial sum shared
            equally by all terms.
        epochs: annealing length ``N`` in epochs (after the warm-up); ``None``: the rest of the run when attached to
            a trainer (``max_epochs - 1 - warmup_epochs``, so the last epoch trains with the end weights), else
            ``DEFAULT_EPOCHS`` (100).
        warmup_epochs: ``W``, epochs trained with the start weights before annealing begins.
        min_weight, max_weight, normalize: see :class:`~pipeline.schedules.base.WeightSchedule`.
    """

    name = "cosine"

    def __init__(
        self,
        initial: Mapping[str, float],
        end_weights: Mapping[str, float] | None = None,
        epochs: int | None = None,
        warmup_epochs: int = 0,
        min_weight: float | Mapping[str, float] | None = None,
        max_weight: float | Mapping[str, float] | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__(initial, min_weight, max_weight, normalize)
        if end_weights is None:
            self.end = dict.fromkeys(self.terms, self.total / len(self.terms))
        else:
            if not isinstance(end_weights, Mapping):
                raise SettingsError(f"end_weights must be a dict of term -> weight, got {end_weights!r}.")
            check_names(end_weights, self.terms, "end_weights")
            given = per_term(end_weights, self.terms, 0.0, "end_weights")
            self.end = {t: given[t] if t in end_weights else self.initial[t] for t in self.terms}
            if not any(v > 0 for v in self.end.values()):
                raise SettingsError(f"at least one end weight must be > 0, got {self.end}.")
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
        raw = {k: self.end[k] + (self.initial[k] - self.end[k]) * keep for k in self.terms}
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
