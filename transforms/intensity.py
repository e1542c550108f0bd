"""CT intensity normalisation: clip to a window, then scale it linearly, either to [0, 1] or by a standard deviation.

Both are one :class:`monai.transforms.ScaleIntensityRanged` with ``clip=True``, and both map the window's ``low`` to 0:

- ``(low, high)``: the window ``[low, high]`` (HU) goes to ``[0, 1]``;
- ``(low, high, std)``: values are clipped to ``[low, high]``, then ``(x - low) / std``. With ``low``/``high`` the
  0.5/99.5 percentiles of the foreground intensities and ``std`` their standard deviation (what a dataset's plan
  holds, see :mod:`pipeline.data.plan`), this is nnU-Net's CT normalisation (clip, then z-score) shifted by the
  constant ``(mean - low) / std``. The shift keeps 0 as the value of everything below the window, the value that
  padding (``SpatialPadd``, sliding-window inference) and the foreground crop assume; after the network's first
  convolution and instance normalisation a constant shift of the input makes no difference.
"""

from __future__ import annotations

from typing import Sequence

from monai.transforms import ScaleIntensityRanged

__all__ = ["check_hu_window", "intensity_window", "window_range"]


def check_hu_window(hu_window: Sequence[float]) -> tuple[float, ...]:
    """``hu_window`` as floats, checked.

    Raises:
        ValueError: not ``(low, high)`` or ``(low, high, std)`` with ``low < high`` and ``std > 0``.
    """
    values = tuple(float(v) for v in hu_window)
    if len(values) not in (2, 3) or values[0] >= values[1] or (len(values) == 3 and not values[2] > 0):
        raise ValueError(
            f"hu_window must be (low, high) with low < high, or (low, high, std) with std > 0, got {tuple(hu_window)}."
        )
    return values


def window_range(hu_window: Sequence[float]) -> tuple[float, float]:
    """The values ``low`` and ``high`` of the window are mapped to."""
    values = check_hu_window(hu_window)
    if len(values) == 2:
        return 0.0, 1.0
    low, high, std = values
    return 0.0, (high - low) / std


def intensity_window(keys: str | Sequence[str], hu_window: Sequence[float]) -> ScaleIntensityRanged:
    """The transform that clips ``keys`` to the window and scales it (see the module docstring)."""
    low, high = check_hu_window(hu_window)[:2]
    b_min, b_max = window_range(hu_window)
    return ScaleIntensityRanged(keys=keys, a_min=low, a_max=high, b_min=b_min, b_max=b_max, clip=True)
