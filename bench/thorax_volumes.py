"""Full-size chest-CT-like volumes for the inference benchmark, fast to make: a body with subcutaneous fat, two lungs,
a heart (myocardium around a contrast-filled blood pool, in epicardial fat), the ascending and descending aorta, a
spine with a cortical rim, and coronary-like trees of :mod:`pipeline.phantoms` (the ``tubes`` growth) on the heart.

A stand-in for the anatomical ``ccta`` generator: it has what decides where sliding windows are needed (air, lungs,
fat and muscle around a bright heart, bone), not the anatomy that makes segmentation hard.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.phantoms import TreeConfig, grow_forest, phantom_affine, signed_distance_to_tubes

__all__ = ["make_thorax_case"]


def _ellipsoid(grid: tuple[np.ndarray, ...], centre: tuple[float, ...], semi: tuple[float, ...]) -> np.ndarray:
    return sum(((g - c) / s) ** 2 for g, c, s in zip(grid, centre, semi))


def make_thorax_case(
    shape: tuple[int, int, int] = (512, 512, 224),
    spacing: tuple[float, float, float] = (0.4, 0.4, 0.6),
    seed: int = 0,
    noise_hu: float = 25.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One case: ``(image int16 HU, label uint8, affine)``; the same seed gives the same case.

    Args:
        shape: array shape (i: right-left, j: anterior-posterior, k: slices).
        spacing: voxel size in mm.
        seed: random seed (anatomy jitter, trees, noise).
        noise_hu: standard deviation of the correlated image noise.
    """
    rng = np.random.default_rng(seed)
    sp = np.asarray(spacing, dtype=np.float32)
    extent = (np.asarray(shape) - 1) * sp
    grid = tuple((np.arange(n, dtype=np.float32) * s - e / 2).reshape([-1 if a == i else 1 for a in range(3)])
                 for i, (n, s, e) in enumerate(zip(shape, sp, extent)))
    jitter = rng.uniform(-6, 6, size=3)
    image = np.full(shape, -1000.0, dtype=np.float32)
    body = _ellipsoid(grid[:2], (0.0, 5.0), (96.0, 84.0))
    image[np.broadcast_to(body <= 1.0, shape)] = -90.0  # subcutaneous fat ...
    image[np.broadcast_to(body <= 0.86, shape)] = 40.0  # ... around muscle and soft tissue
    for side in (-1.0, 1.0):
        lung = _ellipsoid(grid, (side * 45.0, 8.0, 10.0), (36.0, 52.0, 95.0)) <= 1.0
        image[lung] = -850.0
    image[np.broadcast_to(_ellipsoid(grid[:2], (0.0, 68.0), (16.0, 16.0)) <= 1.0, shape)] = 900.0  # spine: cortex ...
    image[np.broadcast_to(_ellipsoid(grid[:2], (0.0, 68.0), (13.5, 13.5)) <= 1.0, shape)] = 260.0  # ... trabecular bone
    heart_centre = (12.0 + jitter[0], -12.0 + jitter[1], -10.0 + jitter[2])
    heart_semi = (46.0, 38.0, 44.0)
    heart = _ellipsoid(grid, heart_centre, heart_semi)
    image[heart <= 1.25] = -80.0  # epicardial fat
    image[heart <= 1.0] = 100.0  # myocardium ...
    image[heart <= 0.55] = 360.0  # ... around the contrast-filled blood pool
    for centre, radius, top in (((-4.0, 18.0), 13.0, 0.0), ((-22.0, 52.0), 11.0, 60.0)):  # ascending, descending aorta
        aorta = (_ellipsoid(grid[:2], centre, (radius, radius)) <= 1.0) & (grid[2] >= -60.0) & (grid[2] <= top + 60.0)
        image[aorta] = 360.0

    # coronary-like trees in a box over the heart's anterior-left surface
    box_origin = np.asarray(heart_centre) - np.asarray(heart_semi) * np.asarray([0.9, 1.3, 0.9])
    box_extent = np.asarray(heart_semi) * np.asarray([1.8, 1.2, 1.8])
    tree_cfg = TreeConfig(root_radius_vox=(4.0, 5.0), segment_length_radii=(8.0, 14.0), max_branches=31)
    trees = grow_forest(3, box_extent, (float(sp.min()), float(sp.max())), tree_cfg, rng)
    label = np.zeros(shape, dtype=np.uint8)
    occupancy = np.zeros(shape, dtype=np.float32)
    voxel = float(np.cbrt(np.prod(sp)))
    band = 2.0 * float(sp.max())
    for tree in trees:
        points = tree.points + box_origin + extent / 2  # array frame
        sd = signed_distance_to_tubes(points, tree.radii, shape, sp.astype(float), band)
        label[sd <= 0.0] = 1
        np.maximum(occupancy, np.clip(0.5 - sd / voxel, 0.0, 1.0), out=occupancy)
        del sd
    lumen = np.float32(rng.uniform(300.0, 450.0))
    image += occupancy * (lumen - image)
    del occupancy
    image = ndimage.gaussian_filter(image, 0.3 / sp, output=np.float32)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 0.5, output=np.float32)
    image += np.float32(noise_hu / noise.std()) * noise
    del noise
    image = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return image, label, phantom_affine(shape, spacing)
