"""The check every loss weight passes, whoever sets it: a CombinedLoss or a loss-weight schedule."""

from __future__ import annotations

import math
from typing import Any, Mapping

from pipeline.errors import SettingsError

__all__ = ["check_weight", "check_weights"]


def check_weight(label: str, value: Any) -> float:
    """``value`` as a float that is finite and >= 0 (numbers, numpy scalars, one-element tensors).

    Raises:
        ValueError: ``"<label> must be a number"`` or ``"<label> must be finite and >= 0"``.
    """
    if isinstance(value, (bool, str)):
        raise SettingsError(f"{label} must be a number, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{label} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or number < 0:
        raise SettingsError(f"{label} must be finite and >= 0, got {number}.")
    return number


def check_weights(weights: Mapping[str, Any], what: str = "weight") -> dict[str, float]:
    """``weights`` as a dict of floats, each passing :func:`check_weight`, at least one > 0.

    Raises:
        ValueError: a weight that is not a finite number >= 0, or all weights 0.
    """
    checked = {name: check_weight(f"{what} of {name!r}", value) for name, value in dict(weights).items()}
    if not any(v > 0 for v in checked.values()):
        raise SettingsError(f"at least one {what} must be > 0, got {checked}.")
    return checked
