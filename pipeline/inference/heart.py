"""A coarse heart locator for full-field coronary CT angiograms: where the coronary arteries can be at all.

The coronary arteries run on the surface of the heart. On a downsampled volume (cells of about ``cell_mm``), the
contrast-filled blood pool (chambers, aortic root and ascending aorta, pulmonary trunk) is the largest connected
structure of cells whose mean is at least ``pool_hu``; bone (cells holding a block at ``bone_hu`` or more) is cut out
first, so the spine, ribs, sternum and the separate descending aorta stay apart and drop out with every other smaller
component. The pool is grown by up to ``shell_mm`` through soft tissue (cells from ``tissue_hu`` up, not fat, not lung)
— the myocardium around the cavities — and then by ``margin_mm`` in every direction, which covers the epicardial fat
where the arteries lie. A volume that cannot hold a heart (a field of view under ``min_fov_mm`` along an axis, a crop
around the vessels) or shows no pool of ``min_pool_ml`` gives ``None``: no restriction.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from pipeline.errors import SettingsError

__all__ = ["HeartLocator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartLocator:
    """Settings of the coarse heart region; :meth:`locate` finds it on a grid of block means.

    Args:
        pool_hu: lowest mean HU of a blood-pool cell (enhanced chambers and great vessels are 150-500 HU).
        bone_hu: a cell holding a block mean at least this bright is bone (cortex) and never pool.
        tissue_hu: lowest mean HU of the soft tissue the pool grows through (fat and lung stay below).
        shell_mm: how far the pool grows through soft tissue (the myocardium, up to about 15 mm thick).
        margin_mm: how far the grown pool then grows in every direction (the epicardial fat with the arteries).
        cell_mm: edge of the cells of the coarse grid.
        min_fov_mm: smallest extent along every axis of a volume that may hold a whole heart.
        min_pool_ml: smallest blood pool that counts as a heart.
    """

    pool_hu: float = 150.0
    bone_hu: float = 640.0
    tissue_hu: float = -30.0
    shell_mm: float = 20.0
    margin_mm: float = 20.0
    cell_mm: float = 2.4
    min_fov_mm: float = 100.0
    min_pool_ml: float = 50.0

    def __post_init__(self) -> None:
        for name in ("shell_mm", "margin_mm", "min_fov_mm", "min_pool_ml"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.cell_mm <= 0:
            raise SettingsError(f"cell_mm must be > 0, got {self.cell_mm}.")
        if not self.tissue_hu < self.pool_hu < self.bone_hu:
            raise SettingsError(
                f"need tissue_hu < pool_hu < bone_hu, got {self.tissue_hu}, {self.pool_hu}, {self.bone_hu}."
            )

    def locate(
        self, means: torch.Tensor, block_mm: Sequence[float], to_input: Callable[[float], float | None]
    ) -> torch.Tensor | None:
        """The heart region on the grid of ``means``, or ``None`` where this volume shows no heart.

        Args:
            means: ``(d, h, w)`` block means of the network input (one per block of the candidate region).
            block_mm: a block's edge along each axis in mm.
            to_input: maps an HU value to the input's scale (``None``: beyond the top of its window).

        Returns:
            a boolean tensor shaped like ``means`` or ``None``.
        """
        fov = [n * b for n, b in zip(means.shape, block_mm)]
        if min(fov) < self.min_fov_mm:
            logger.debug("field of view %s mm: too small for a whole heart, no heart region", [round(f) for f in fov])
            return None
        factor = tuple(max(1, round(self.cell_mm / b)) for b in block_mm)
        cell = np.asarray([f * b for f, b in zip(factor, block_mm)])
        x = means[None, None].float()
        cells = F.avg_pool3d(x, factor, factor, ceil_mode=True)[0, 0].numpy()
        pool_level, bone_level = to_input(self.pool_hu), to_input(self.bone_hu)
        if pool_level is None:  # the window ends below the blood pool: nothing to find
            return None
        pool = cells >= pool_level
        if bone_level is not None:  # (a window ending below bone clips it to its top: no cut)
            pool &= F.max_pool3d(x, factor, factor, ceil_mode=True)[0, 0].numpy() < bone_level
        labels, count = ndimage.label(pool, structure=np.ones((3, 3, 3), dtype=bool))
        if not count:
            return None
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if sizes[largest] * float(np.prod(cell)) / 1000.0 < self.min_pool_ml:
            logger.debug("largest blood pool %.0f mL: no heart region", sizes[largest] * float(np.prod(cell)) / 1000.0)
            return None
        heart = labels == largest
        tissue = (cells >= to_input(self.tissue_hu)) & ~heart
        cross = ndimage.generate_binary_structure(3, 1)
        for _ in range(math.ceil(self.shell_mm / float(cell.min()))):
            grown = ndimage.binary_dilation(heart, cross) & tissue
            if not grown.any():
                break
            heart |= grown
            tissue &= ~grown
        near = ndimage.distance_transform_edt(~heart, sampling=cell) <= self.margin_mm
        region = torch.from_numpy(near)
        for axis, f in enumerate(factor):
            region = region.repeat_interleave(f, dim=axis)
        return region[tuple(slice(0, n) for n in means.shape)].contiguous()

