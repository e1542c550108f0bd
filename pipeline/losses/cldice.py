"""clDice (Shit et al., CVPR 2021) on logits, equal to :class:`monai.losses.SoftclDiceLoss` and much faster."""

from __future__ import annotations

import torch
from monai.losses import SoftclDiceLoss
from monai.utils import LossReduction

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss, reduce_loss
from pipeline.losses.morphology import soft_skeleton

__all__ = ["ClDiceLoss"]


class ClDiceLoss(LogitsLoss):
    """Soft clDice: ``1 - 2 Tprec Tsens / (Tprec + Tsens + smooth)`` per sample, with the topology precision
    ``Tprec = (|S(P).T| + s_nr) / (|S(P)| + s_dr)`` and sensitivity ``Tsens = (|S(T).P| + s_nr) / (|S(T)| + s_dr)``,
    ``P = sigmoid(logits)``, ``S`` the soft skeleton after ``iter_`` erosions, sums over channels and space.

    Values and gradients are those of :class:`monai.losses.SoftclDiceLoss` with ``sigmoid=True`` (see
    :meth:`reference`), but the skeletons come from :func:`~pipeline.losses.morphology.soft_skeleton`: shifted-slice
    minima and maxima, one pass per erosion, a gradient routed straight to the source voxels, and the label's
    skeleton computed without autograd on ``uint8``: 11-12x faster than MONAI on CPU (1 or 2 threads) and 5x less
    memory (``docs/losses.md``; no GPU measurement).

    Args:
        iter_: skeletonisation iterations (>= 0); at least the largest vessel radius in voxels.
        smooth_nr: added to the numerators of ``Tprec`` and ``Tsens``.
        smooth_dr: added to their denominators.
        smooth: added to the denominator of the harmonic mean (> 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per sample).
    """

    def __init__(
        self,
        iter_: int = 3,
        smooth_nr: float = 1.0,
        smooth_dr: float = 1.0,
        smooth: float = 1e-4,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction)
        if isinstance(iter_, bool) or not isinstance(iter_, int) or iter_ < 0:
            raise SettingsError(f"iter_ must be a non-negative integer, got {iter_!r}.")
        if not smooth > 0:
            raise SettingsError(f"smooth must be > 0, got {smooth}.")
        self.iter_ = iter_
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.smooth = float(smooth)

    def reference(self) -> SoftclDiceLoss:
        """The MONAI loss this term equals, applied to logits."""
        return SoftclDiceLoss(
            iter_=self.iter_,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            smooth=self.smooth,
            sigmoid=True,
            reduction=self.reduction,
        )

    def options(self) -> dict:
        smooth = {"smooth_nr": self.smooth_nr, "smooth_dr": self.smooth_dr, "smooth": self.smooth}
        return {"iter_": self.iter_, **smooth, **super().options()}

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``target`` must be binary (checked by ``forward`` and by :class:`~pipeline.losses.CombinedLoss`)."""
        axes = tuple(range(1, probs.ndim))
        skel_pred = soft_skeleton(probs, self.iter_)
        skel_true = soft_skeleton(target.detach(), self.iter_, binary=True)
        tprec = ((skel_pred * target).sum(axes) + self.smooth_nr) / (skel_pred.sum(axes) + self.smooth_dr)
        tsens = ((skel_true * probs).sum(axes) + self.smooth_nr) / (skel_true.sum(axes) + self.smooth_dr)
        cl_dice = 1.0 - 2.0 * (tprec * tsens) / (tprec + tsens + self.smooth)
        return reduce_loss(cl_dice, self.reduction)
