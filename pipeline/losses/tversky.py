"""Tversky loss on logits: :class:`monai.losses.TverskyLoss` behind the package's term interface."""

from __future__ import annotations

import torch
from monai.losses import TverskyLoss
from monai.utils import LossReduction

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss

__all__ = ["EnhancedTverskyLoss"]


class EnhancedTverskyLoss(LogitsLoss):
    """Tversky loss ``1 - (|P.T| + s) / (|P.T| + alpha |P.(1-T)| + beta |(1-P).T| + s)``, ``P = sigmoid(logits)``;
    ``beta > alpha`` penalises missed vessel more than false alarms. Equal to :class:`monai.losses.TverskyLoss`
    with ``sigmoid=True`` (see :meth:`reference`).

    Args:
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        smooth: added to numerator and denominator (>= 0).
        batch: sum over the batch before dividing.
        include_background: keep channel 0 when the prediction has several channels.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1e-5,
        batch: bool = False,
        include_background: bool = True,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction)
        for name, value in (("alpha", alpha), ("beta", beta), ("smooth", smooth)):
            if not value >= 0:
                raise SettingsError(f"{name} must be >= 0, got {value}.")
        self.monai_kwargs = dict(
            include_background=include_background,
            alpha=float(alpha),
            beta=float(beta),
            reduction=self.reduction,
            smooth_nr=float(smooth),
            smooth_dr=float(smooth),
            batch=batch,
        )
        self.tversky = TverskyLoss(**self.monai_kwargs)

    def reference(self) -> TverskyLoss:
        """The MONAI loss this term equals, applied to logits."""
        return TverskyLoss(sigmoid=True, **self.monai_kwargs)

    def options(self) -> dict:
        return dict(self.monai_kwargs)

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.tversky(probs, target)
