"""The worst value of each metric: what a case that cannot be measured counts as in a mean.

One definition serves the evaluation tool's means and the Ignite validation metric. A surface distance is infinite
when exactly one mask is empty (nothing to measure to); left out of a mean, such a case would make the mean *better*
the worse the prediction is. Metrics Reloaded (Maier-Hein et al., Nature Methods 2024) recommends scoring it as the
worst possible value instead; for a distance that is the diagonal of the volume's field of view in mm
(:func:`~pipeline.evaluation.geometry.volume_diagonal_mm`), which no distance between two of its voxels reaches. The
overlap and skeleton scores are 0 at worst. Counts (``TP``, ``n_pred``, component numbers, ...) have no worst value.
"""

from __future__ import annotations

import math
from typing import Sequence

from pipeline.evaluation.geometry import volume_diagonal_mm

__all__ = ["DISTANCE_METRICS", "SCORE_METRICS", "bounded_value", "volume_diagonal_mm", "worst_value"]

#: scores in [0, 1], higher is better: 0 at worst
SCORE_METRICS = ("Dice", "IoU", "Precision", "Recall", "clDice", "NSD")
#: surface distances in mm, lower is better: the volume's diagonal at worst
DISTANCE_METRICS = ("HD95_mm", "HD_mm", "ASSD_mm")


def worst_value(metric: str, diagonal_mm: float) -> float | None:
    """The worst value of ``metric`` in a volume whose field-of-view diagonal is ``diagonal_mm``; ``None`` for a
    metric without one (counts)."""
    if metric in SCORE_METRICS:
        return 0.0
    if metric in DISTANCE_METRICS:
        return float(diagonal_mm)
    return None


def bounded_value(metric: str, value: float, shape: Sequence[int], spacing: Sequence[float]) -> tuple[float, bool]:
    """``value``, or the worst value when it is infinite (a distance with one empty mask).

    Returns:
        the value to average, and whether it is the worst value standing in for an infinite one.
    """
    if math.isinf(value):
        worst = worst_value(metric, volume_diagonal_mm(shape, spacing))
        if worst is not None:
            return worst, True
    return value, False
