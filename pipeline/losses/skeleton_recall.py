"""Skeleton Recall (Kirchhoff et al., ECCV 2024): soft recall of the prediction on the label's tubed skeleton."""

from __future__ import annotations

import torch
from monai.utils import LossReduction

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss, reduce_loss

__all__ = ["SkeletonRecallLoss"]


class SkeletonRecallLoss(LogitsLoss):
    """``1 - (|P.K| + smooth) / (|K| + smooth)`` per sample and channel, ``P = sigmoid(logits)`` and ``K`` the
    tubed skeleton of the label (skeleton dilated by a voxel or two and kept inside the label), as the authors' nnU-Net
    ``SoftSkeletonRecallLoss`` (which returns ``-recall``: same gradient).

    ``K`` is computed once per sample in the data pipeline (:class:`transforms.skeleton.TubedSkeletond`), so the loss
    costs one product and two sums: no differentiable skeleton. Its target is ``K``, not the label; inside
    :class:`~pipeline.losses.combined.CombinedLoss` ``K`` travels as extra channels of the label (see there).

    Args:
        smooth: added to numerator and denominator (> 0); a sample without skeleton then has recall 1 (loss 0).
        batch: sum over the batch before dividing (one recall per channel).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    target_is_skeleton = True

    def __init__(
        self, smooth: float = 1.0, batch: bool = False, reduction: LossReduction | str = LossReduction.MEAN
    ) -> None:
        super().__init__(reduction)
        if not smooth > 0:
            raise SettingsError(f"smooth must be > 0, got {smooth}.")
        self.smooth = float(smooth)
        self.batch = batch

    def options(self) -> dict:
        return {"smooth": self.smooth, "batch": self.batch, **super().options()}

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        axes = tuple(range(2, probs.ndim))
        if self.batch:
            axes = (0,) + axes
        recall = ((probs * target).sum(axes) + self.smooth) / (target.sum(axes) + self.smooth)
        return reduce_loss(1.0 - recall, self.reduction)
