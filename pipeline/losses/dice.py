"""Dice (or Jaccard) loss on logits: :class:`monai.losses.DiceLoss` with the original API's options."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from monai.utils import LossReduction

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss

__all__ = ["EnhancedDiceLoss"]


class EnhancedDiceLoss(LogitsLoss):
    """The original API's "Enhanced Dice Loss": ``1 - (2 |P.T| + s) / (|P| + |T| + s)`` per sample and channel (or the
    Jaccard form, MONAI's, ``1 - (2|P.T| + s) / (2(|P| + |T| - |P.T|) + s)``), with ``P = sigmoid(logits)``.

    The value is :class:`monai.losses.DiceLoss` with ``sigmoid=True``, ``smooth_nr = smooth_dr = smooth`` and the
    other options passed on (see :meth:`reference`).

    Args:
        smooth: added to numerator and denominator (MONAI's ``smooth_nr`` and ``smooth_dr``); must be >= 0.
        jaccard: compute the Jaccard (IoU) loss instead of Dice.
        squared_pred: use squared probabilities and labels in the denominator (V-Net form).
        batch: sum over the batch before dividing (one Dice per channel for the whole batch).
        include_background: keep channel 0 when the prediction has several channels.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        smooth: float = 1e-5,
        jaccard: bool = False,
        squared_pred: bool = False,
        batch: bool = False,
        include_background: bool = True,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction)
        if not smooth >= 0:
            raise SettingsError(f"smooth must be >= 0, got {smooth}.")
        self.monai_kwargs = dict(
            include_background=include_background,
            squared_pred=squared_pred,
            jaccard=jaccard,
            reduction=self.reduction,
            smooth_nr=float(smooth),
            smooth_dr=float(smooth),
            batch=batch,
        )
        self.dice = DiceLoss(**self.monai_kwargs)

    def reference(self) -> DiceLoss:
        """The MONAI loss this term equals, applied to logits."""
        return DiceLoss(sigmoid=True, **self.monai_kwargs)

    def options(self) -> dict:
        return dict(self.monai_kwargs)

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(probs, target)
