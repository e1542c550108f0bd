"""The same metrics computed the straightforward way, with MONAI's metric functions on the dense volume.

This is what :func:`pipeline.evaluation.binary_metrics` is tested and benchmarked against: ``DiceMetric``,
``compute_hausdorff_distance``, ``compute_average_surface_distance`` and ``compute_surface_dice`` of MONAI,
``skimage.morphology.skeletonize`` for clDice and ``scipy.ndimage.label`` for the component counts. It is slow on
CCTA-sized volumes (seconds per metric) and returns MONAI's own values for empty masks (NaN/inf, with warnings).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from monai.metrics import DiceMetric, compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage
from skimage.morphology import skeletonize

__all__ = ["monai_reference_metrics"]


def monai_reference_metrics(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], tolerance_mm: float = 1.0
) -> dict[str, float]:
    """Dice, HD95, ASSD, NSD (MONAI), clDice (skimage skeletons) and component counts of two binary 3-D masks.

    Args:
        pred: prediction mask (non-zero is foreground).
        ref: reference mask.
        spacing: voxel size in mm.
        tolerance_mm: NSD tolerance in mm.

    Returns:
        ``Dice``, ``HD95_mm``, ``ASSD_mm``, ``NSD``, ``clDice``, ``beta0_pred``, ``beta0_ref``, ``beta0_error``.
    """
    p, r = np.asarray(pred) != 0, np.asarray(ref) != 0
    yp, y = torch.from_numpy(p)[None, None].float(), torch.from_numpy(r)[None, None].float()
    sp = [float(s) for s in spacing]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty-mask and deprecation warnings of MONAI's surface metrics
        out = {
            "Dice": DiceMetric(include_background=True, ignore_empty=False)(yp, y),
            "HD95_mm": compute_hausdorff_distance(yp, y, include_background=True, percentile=95, spacing=sp),
            "ASSD_mm": compute_average_surface_distance(yp, y, include_background=True, symmetric=True, spacing=sp),
            "NSD": compute_surface_dice(yp, y, [float(tolerance_mm)], include_background=True, spacing=sp),
        }
    values = {k: float(v.item()) for k, v in out.items()}
    sp_, sr = skeletonize(p), skeletonize(r)
    tprec = np.count_nonzero(sp_ & r) / max(np.count_nonzero(sp_), 1)
    tsens = np.count_nonzero(sr & p) / max(np.count_nonzero(sr), 1)
    values["clDice"] = 0.0 if tprec + tsens == 0 else 2.0 * tprec * tsens / (tprec + tsens)
    full = np.ones((3, 3, 3), dtype=bool)
    values["beta0_pred"] = float(ndimage.label(p, full)[1])
    values["beta0_ref"] = float(ndimage.label(r, full)[1])
    values["beta0_error"] = abs(values["beta0_pred"] - values["beta0_ref"])
    return values
