"""Rendering of vessel trees into a CT-like volume and its label."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pipeline.errors import SettingsError
from pipeline.io.nifti import phantom_affine
from pipeline.phantoms.tree import TreeConfig, VesselTree, grow_forest

__all__ = ["PhantomConfig", "Phantom", "make_phantom", "phantom_affine", "signed_distance_to_tubes"]


@dataclass(frozen=True)
class PhantomConfig:
    """Parameters of one synthetic coronary CT phantom.

    Args:
        shape: array shape (i, j, k).
        spacing: voxel size in mm along (i, j, k); anisotropic like a CCTA reconstruction.
        n_trees: number of separate vessel trees.
        tissue_hu: mean attenuation of the soft-tissue background (myocardium-like).
        fat_hu: attenuation of the epicardial-fat-like regions the vessels run through.
        texture_hu: amplitude of the low-frequency background texture.
        texture_mm: correlation length of that texture.
        lumen_hu: range of the contrast-enhanced lumen attenuation (one value per tree, slowly varying).
        blur_mm: standard deviation of the scanner point-spread function.
        noise_hu: standard deviation of the (slightly correlated) image noise.
        tree: centerline growth parameters.
    """

    shape: tuple[int, int, int] = (96, 96, 64)
    spacing: tuple[float, float, float] = (0.4, 0.4, 0.6)
    n_trees: int = 2
    tissue_hu: float = 40.0
    fat_hu: float = -90.0
    texture_hu: float = 15.0
    texture_mm: float = 5.0
    lumen_hu: tuple[float, float] = (300.0, 450.0)
    blur_mm: float = 0.3
    noise_hu: float = 20.0
    tree: TreeConfig = field(default_factory=TreeConfig)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(s) < 8 for s in self.shape):
            raise SettingsError(f"shape must be three sizes of at least 8 voxels, got {tuple(self.shape)}.")
        if len(self.spacing) != 3 or any(not s > 0 for s in self.spacing):
            raise SettingsError(f"spacing must be three positive sizes in mm, got {tuple(self.spacing)}.")
        if self.n_trees < 1:
            raise SettingsError(f"n_trees must be >= 1, got {self.n_trees}.")
        if not self.lumen_hu[0] <= self.lumen_hu[1]:
            raise SettingsError(f"lumen_hu must be (low, high) with low <= high, got {self.lumen_hu}.")


@dataclass
class Phantom:
    """A rendered phantom.

    Attributes:
        image: CT-like volume in HU (int16).
        label: binary vessel mask (uint8), 1 where the voxel centre lies inside a vessel.
        tree_map: which tree each vessel voxel belongs to (1..n_trees, 0 background).
        trees: the centerline trees (mm, array frame).
        affine: voxel-to-scanner (RAS+ mm) matrix, as stored in the NIfTI header.
    """

    image: np.ndarray
    label: np.ndarray
    tree_map: np.ndarray
    trees: list[VesselTree]
    affine: np.ndarray


def signed_distance_to_tubes(
    points: np.ndarray, radii: np.ndarray, shape: tuple[int, int, int], spacing: np.ndarray, band_mm: float
) -> np.ndarray:
    """Signed distance (mm) from each voxel centre to the union of balls swept along the centerline.

    Negative inside a vessel. Only a band of ``band_mm`` around the vessels is computed; elsewhere the value is
    ``+band_mm``.
    """
    sd = np.full(shape, band_mm, dtype=np.float32)
    shape_arr = np.asarray(shape)
    for p, r in zip(points, radii):
        reach = r + band_mm
        lo = np.maximum(np.floor((p - reach) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((p + reach) / spacing).astype(int) + 1, shape_arr)
        if np.any(hi <= lo):
            continue
        axes = [np.arange(lo[a], hi[a]) * spacing[a] - p[a] for a in range(3)]
        dist = np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2) - r
        box = sd[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        np.minimum(box, dist.astype(np.float32), out=box)
    return sd


def _smooth_field(shape: tuple[int, ...], sigma_vox: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance random field with the given correlation length (voxels)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)


def make_phantom(cfg: PhantomConfig, rng: np.random.Generator) -> Phantom:
    """Grow vessel trees and render a CT-like image with partial-volume blur and noise, and its label.

    Args:
        cfg: phantom parameters.
        rng: random generator; the same seed gives the same phantom, bit for bit.

    Returns:
        the rendered :class:`Phantom`.
    """
    spacing = np.asarray(cfg.spacing, dtype=float)
    extent = (np.asarray(cfg.shape) - 1) * spacing
    trees = grow_forest(cfg.n_trees, extent, (float(spacing.min()), float(spacing.max())), cfg.tree, rng)

    band = 2.0 * float(spacing.max())
    label = np.zeros(cfg.shape, dtype=np.uint8)
    tree_map = np.zeros(cfg.shape, dtype=np.uint8)
    occupancy = np.zeros(cfg.shape, dtype=np.float32)
    lumen = np.zeros(cfg.shape, dtype=np.float32)
    # partial volume: fraction of the voxel inside the wall, from the signed distance over the voxel size
    voxel_size = float(np.cbrt(np.prod(spacing)))
    for tree in trees:
        sd = signed_distance_to_tubes(tree.points, tree.radii, cfg.shape, spacing, band)
        inside = sd <= 0.0
        label[inside] = 1
        tree_map[inside] = tree.index + 1
        frac = np.clip(0.5 - sd / voxel_size, 0.0, 1.0)
        hu = rng.uniform(*cfg.lumen_hu)
        better = frac > occupancy
        lumen[better] = hu
        occupancy[better] = frac[better]
    lumen += 15.0 * _smooth_field(cfg.shape, 8.0 / spacing, rng).astype(np.float32) * (occupancy > 0)

    texture_sigma = cfg.texture_mm / spacing
    background = cfg.tissue_hu + cfg.texture_hu * _smooth_field(cfg.shape, texture_sigma, rng)
    fat = np.clip(_smooth_field(cfg.shape, 2.0 * texture_sigma, rng) - 0.3, 0.0, 1.0)
    background = (1.0 - fat) * background + fat * (cfg.fat_hu + 0.5 * cfg.texture_hu * _smooth_field(cfg.shape, texture_sigma, rng))

    image = (1.0 - occupancy) * background + occupancy * lumen
    image = ndimage.gaussian_filter(image, cfg.blur_mm / spacing)
    noise = ndimage.gaussian_filter(rng.standard_normal(cfg.shape), 0.5)
    image += cfg.noise_hu * noise / noise.std()
    image = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return Phantom(image=image, label=label, tree_map=tree_map, trees=trees, affine=phantom_affine(cfg.shape, cfg.spacing))
