"""The shape every loss term of the package has: logits in, one sigmoid, checked targets.

A term's ``forward(input, target)`` takes network logits, applies the sigmoid and calls ``compute(logits, probs,
target)``. :class:`~pipeline.losses.combined.CombinedLoss` calls ``compute`` directly, so several terms share one
sigmoid and one round of input checks.
"""

from __future__ import annotations

import torch
from monai.data import MetaTensor
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from pipeline.errors import InputError, SettingsError

__all__ = ["LogitsLoss", "as_tensor", "check_binary", "check_same_shape", "reduce_loss"]

REDUCTIONS = tuple(r.value for r in LossReduction)


def as_tensor(x: torch.Tensor) -> torch.Tensor:
    """A :class:`~monai.data.MetaTensor` as a plain tensor (same storage and autograd graph), anything else as is."""
    return x.as_tensor() if isinstance(x, MetaTensor) else x


def check_same_shape(input: torch.Tensor, target: torch.Tensor, what: str = "target") -> None:
    """Raise :class:`~pipeline.errors.InputError` (a ``ValueError``) unless ``input`` and ``target`` have one shape."""
    if input.shape != target.shape:
        raise InputError(
            f"prediction shape {tuple(input.shape)} and {what} shape {tuple(target.shape)} differ; "
            f"expected B, C, *spatial for both with the same sizes."
        )


def check_binary(target: torch.Tensor, what: str = "target") -> None:
    """Raise :class:`~pipeline.errors.InputError` unless every value of ``target`` is 0 or 1."""
    bad = (target != 0) & (target != 1)
    if bool(bad.any()):
        example = target[bad].reshape(-1)[0].item()
        raise InputError(f"{what} must be binary (values 0 and 1), found the value {example}.")


def reduce_loss(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    """MONAI's reductions of a per-sample (or per-sample-and-channel) loss: ``mean``, ``sum`` or ``none``."""
    if reduction == LossReduction.MEAN.value:
        return per_item.mean()
    if reduction == LossReduction.SUM.value:
        return per_item.sum()
    return per_item


class LogitsLoss(_Loss):
    """Base of the package's loss terms: ``forward`` takes logits, applies one sigmoid and calls :meth:`compute`.

    Class attributes:
        requires_binary_target: the term is only correct for {0, 1} targets (checked before :meth:`compute`).
        target_is_skeleton: the term compares the prediction with the tubed skeleton of the label rather than the
            label (see :class:`~pipeline.losses.skeleton_recall.SkeletonRecallLoss`).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``, as MONAI's losses.
    """

    requires_binary_target: bool = True
    target_is_skeleton: bool = False

    def __init__(self, reduction: LossReduction | str = LossReduction.MEAN) -> None:
        reduction = getattr(reduction, "value", reduction)
        if reduction not in REDUCTIONS:
            raise SettingsError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}.")
        super().__init__(reduction=reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits, ``B, C, *spatial``.
            target: same shape as ``input``.

        Returns:
            the loss, reduced as ``reduction`` says.

        Raises:
            ValueError: when the shapes differ, or the term needs a binary target and ``target`` is not.
        """
        input, target = as_tensor(input), as_tensor(target)
        check_same_shape(input, target, "skeleton" if self.target_is_skeleton else "target")
        if self.requires_binary_target:
            check_binary(target, "skeleton" if self.target_is_skeleton else "target")
        return self.compute(input, torch.sigmoid(input), target)

    def options(self) -> dict:
        """The term's settings (shown by ``repr``)."""
        return {"reduction": self.reduction}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())

    def compute(self, logits: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss from already checked tensors; ``probs`` is ``sigmoid(logits)``.

        Args:
            logits: network output.
            probs: its sigmoid.
            target: label (or skeleton) of the same shape.
        """
        raise NotImplementedError
