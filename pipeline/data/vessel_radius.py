"""Vessel radii of a binary label in millimetres: the distance transform read on the centreline.

At a centreline (skeleton) voxel, the Euclidean distance to the nearest background voxel, in mm with the voxel
spacing, is the local vessel radius (plus up to half a voxel, since distances run between voxel centres). The skeleton
is scikit-image's 3-D thinning (Lee et al.), the one the evaluation tool's clDice uses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

__all__ = ["vessel_radii"]


def vessel_radii(label: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Local radius (mm) at every centreline voxel of ``label``.

    The label is cropped to its bounding box plus one background voxel first, so large volumes with small vessels cost
    little.

    Args:
        label: 3-D array, vessel where non-zero.
        spacing: voxel size in mm along the array axes.

    Returns:
        1-D float array, one radius per skeleton voxel (empty for an empty label).
    """
    mask = np.asarray(label) > 0
    if mask.ndim != 3:
        raise ValueError(f"label must be a 3-D array, got shape {mask.shape}.")
    if len(spacing) != 3 or any(not s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive sizes in mm, got {tuple(spacing)}.")
    coords = np.argwhere(mask)
    if len(coords) == 0:
        return np.zeros(0, dtype=np.float64)
    lo = coords.min(axis=0)
    hi = coords.max(axis=0) + 1
    box = np.pad(mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 1)
    distance = ndimage.distance_transform_edt(box, sampling=tuple(float(s) for s in spacing))
    return distance[skeletonize(box)].astype(np.float64)
