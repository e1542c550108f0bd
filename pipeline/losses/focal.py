"""Binary cross-entropy / focal loss on logits, equal to :class:`monai.losses.FocalLoss` (sigmoid form)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import FocalLoss
from monai.utils import LossReduction

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss

__all__ = ["EnhancedBCELoss"]


class EnhancedBCELoss(LogitsLoss):
    """The original API's "Enhanced BCE Loss": ``a_t (1 - p_t)^gamma BCE(logits, target)`` voxel-wise, where
    ``p_t = sigmoid(logits)`` on vessel and ``1 - sigmoid(logits)`` on background, ``a_t = alpha`` on vessel and
    ``1 - alpha`` on background (no balancing when ``alpha`` is ``None``). ``gamma = 0`` and ``alpha = None`` give
    plain binary cross-entropy.

    The value is that of :class:`monai.losses.FocalLoss` (``use_softmax=False``) with the same arguments (see
    :meth:`reference`); it is computed with PyTorch's fused ``binary_cross_entropy_with_logits`` and one modulating
    factor ``sigmoid(x (1 - 2 t))^gamma``, which is equal (MONAI writes it ``exp(gamma * logsigmoid(...))``) and takes
    fewer passes over the volume. Soft targets in [0, 1] are allowed.

    Args:
        gamma: focusing exponent (>= 0); 0 is BCE, 2 the usual focal loss.
        alpha: weight of the vessel class in [0, 1], or ``None``.
        include_background: keep channel 0 when the prediction has several channels.
        reduction: ``"mean"``, ``"sum"`` (MONAI's: spatial mean, then sum over batch and channels) or ``"none"``.
    """

    requires_binary_target = False

    def __init__(
        self,
        gamma: float = 0.0,
        alpha: float | None = None,
        include_background: bool = True,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction)
        if not gamma >= 0:
            raise SettingsError(f"gamma must be >= 0, got {gamma}.")
        if alpha is not None and not 0 <= alpha <= 1:
            raise SettingsError(f"alpha must be None or in [0, 1], got {alpha}.")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)
        self.include_background = include_background

    def reference(self) -> FocalLoss:
        """The MONAI loss this term equals, applied to logits."""
        return FocalLoss(
            include_background=self.include_background, gamma=self.gamma, alpha=self.alpha, reduction=self.reduction
        )

    def options(self) -> dict:
        focal = {"gamma": self.gamma, "alpha": self.alpha}
        return {**focal, "include_background": self.include_background, **super().options()}

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.include_background and logits.shape[1] > 1:
            logits, target = logits[:, 1:], target[:, 1:]
        logits, target = logits.float(), target.float()
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.gamma != 0:
            # exp(gamma * logsigmoid) rather than sigmoid ** gamma: for 0 < gamma < 1 a sigmoid that underflows to 0
            # would give 0 ** gamma a NaN gradient (MONAI's form, which gives 0)
            loss = loss * torch.exp(self.gamma * F.logsigmoid(logits * (1 - 2 * target)))
        if self.alpha is not None:
            loss = loss * (target * (2 * self.alpha - 1) + (1 - self.alpha))
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.mean(dim=tuple(range(2, loss.ndim))).sum()
        return loss
