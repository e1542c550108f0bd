"""Names of the loss terms that configs, presets and :class:`~pipeline.losses.combined.CombinedLoss` accept."""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.logits_loss import LogitsLoss
from pipeline.losses.cldice import ClDiceLoss
from pipeline.losses.dice import EnhancedDiceLoss
from pipeline.losses.focal import EnhancedBCELoss
from pipeline.losses.skeleton_recall import SkeletonRecallLoss
from pipeline.losses.tversky import EnhancedTverskyLoss

__all__ = ["LOSS_TERMS", "build_term", "check_term_name"]

#: term name -> (class, defaults that differ from the class's own); ``focal`` is the BCE term with ``gamma=2``.
LOSS_TERMS: dict[str, tuple[type[LogitsLoss], dict[str, Any]]] = {
    "dice": (EnhancedDiceLoss, {}),
    "bce": (EnhancedBCELoss, {}),
    "focal": (EnhancedBCELoss, {"gamma": 2.0}),
    "tversky": (EnhancedTverskyLoss, {}),
    "cldice": (ClDiceLoss, {}),
    "skeleton_recall": (SkeletonRecallLoss, {}),
}


def check_term_name(name: str) -> str:
    """Return ``name`` if it is a known term, else raise :class:`~pipeline.errors.SettingsError` listing them."""
    if name not in LOSS_TERMS:
        raise SettingsError(f"unknown loss term {name!r}; valid terms: {sorted(LOSS_TERMS)}.")
    return name


def build_term(name: str, config: Mapping[str, Any] | None = None) -> LogitsLoss:
    """Construct the term ``name`` from keyword arguments.

    Args:
        name: one of :data:`LOSS_TERMS`.
        config: constructor arguments of that term's class (see its docstring).

    Raises:
        ValueError: unknown term name, unknown argument, or an argument out of range.
    """
    cls, defaults = LOSS_TERMS[check_term_name(name)]
    config = dict(config or {})
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise SettingsError(f"unknown option(s) {unknown} for the {name!r} loss term; valid options: {valid}.")
    return cls(**{**defaults, **config})
