"""What makes a phantom set hard or easy: the best Dice a single global intensity threshold can reach."""

from __future__ import annotations

import numpy as np

__all__ = ["best_threshold_dice"]


def best_threshold_dice(image: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    """The highest Dice of ``image >= t`` against ``label`` over every threshold ``t``, and that ``t``.

    The search is exact and takes one sort: for each distinct intensity, the voxels at or above it are counted
    (all and labelled ones) with cumulative sums over a histogram of integer HU.

    Args:
        image: intensities (rounded to integers for the histogram).
        label: binary reference (non-zero = foreground).

    Returns:
        ``(dice, threshold)``; ``(0.0, inf)`` when the label is empty.
    """
    fg = label.reshape(-1) != 0
    n_fg = int(fg.sum())
    if n_fg == 0:
        return 0.0, float("inf")
    values = np.rint(image.reshape(-1)).astype(np.int64)
    lo = int(values.min())
    all_counts = np.bincount(values - lo)
    fg_counts = np.bincount(values[fg] - lo, minlength=len(all_counts))
    predicted = np.cumsum(all_counts[::-1])[::-1]  # voxels >= each value
    hits = np.cumsum(fg_counts[::-1])[::-1]
    dice = 2.0 * hits / (predicted + n_fg)
    best = int(np.argmax(dice))
    return float(dice[best]), float(best + lo)
