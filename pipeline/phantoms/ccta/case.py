"""One ``ccta`` case drawn, not yet rendered: grid, heart, vessels, lesions, chest, attenuation, scanner settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.phantoms.ccta.anatomy import Thorax, draw_thorax
from pipeline.phantoms.ccta.config import CCTAConfig
from pipeline.phantoms.ccta.coronaries import grow_coronaries
from pipeline.phantoms.ccta.veins import grow_veins
from pipeline.phantoms.ccta.vessels import Vessel
from pipeline.phantoms.ccta.heart import Heart, draw_heart
from pipeline.phantoms.ccta.lesions import Lesion, add_lesions
from pipeline.phantoms.ccta.raster import Window
from pipeline.phantoms.ccta.tissues import Tissue, draw_attenuation

__all__ = ["CCTACase", "draw_ccta_case"]


@dataclass
class CCTACase:
    """Everything a case draws before rendering (geometry in mm of the full grid).

    Attributes:
        spacing, shape: voxel size and shape of the full grid.
        window: the part of it to render.
        heart, thorax: geometry.
        arteries, veins: the vessels (arteries carry their stenoses in ``lumen``).
        lesions: the stenoses and calcified spots; ``plaque`` and ``calcium`` are their tubes ``(points, radii)``.
        hu: attenuation per tissue class.
        info: dominance, ostia, chart angles.
        fwhm_mm, noise_hu: scanner point-spread and noise.
        motion: ``None`` or ``(axis, blur mm, where along the RCA)``.
        gradient: fraction of the contrast lost over 150 mm of artery.
    """

    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    window: Window
    heart: Heart
    thorax: Thorax
    arteries: list[Vessel]
    veins: list[Vessel]
    lesions: list[Lesion]
    plaque: list[tuple[np.ndarray, np.ndarray]]
    calcium: list[tuple[np.ndarray, np.ndarray]]
    hu: dict[Tissue, float]
    info: dict
    fwhm_mm: float
    noise_hu: float
    motion: tuple[int, float, float] | None
    gradient: float

    def lumen_volume_mm3(self) -> float:
        """Volume of the open coronary lumen, from the centrelines (sum of pi r^2 ds)."""
        total = 0.0
        for v in self.arteries:
            ds = np.diff(v.arc)
            area = np.pi * v.lumen**2
            total += float(np.sum(0.5 * (area[1:] + area[:-1]) * ds))
        return total


def _grid(cfg: CCTAConfig, rng: np.random.Generator) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    if cfg.spacing is not None:
        spacing = tuple(float(s) for s in cfg.spacing)
    else:
        pixel = round(float(rng.uniform(*cfg.pixel_mm)), 3)
        spacing = (pixel, pixel, round(float(rng.uniform(*cfg.slice_mm)), 3))
    if cfg.shape is not None:
        shape = tuple(int(s) for s in cfg.shape)
    else:
        slices = int(np.clip(round(float(rng.uniform(*cfg.z_extent_mm)) / spacing[2]), *cfg.slices))
        shape = (cfg.matrix, cfg.matrix, slices)
    return spacing, shape  # type: ignore[return-value]


def _place_heart(cfg: CCTAConfig, spacing, shape, rng: np.random.Generator) -> Heart:
    """Size the heart, measure its extent at the centre of the grid, then draw it again where it goes: in-plane near
    the centre of the field of view, its lowest point 10-25 mm above the lowest slice (the second draw uses its own
    seed, so its tilt differs slightly from the first; the 6 mm margin covers that)."""
    extent = np.asarray(shape) * np.asarray(spacing)
    long_mm = float(rng.uniform(*cfg.heart_long_mm))
    short = (float(rng.uniform(*cfg.heart_short_mm)), float(rng.uniform(*cfg.heart_short_mm)))
    centre = np.array([0.5 * extent[0], 0.5 * extent[1], 0.5 * extent[2]])
    heart = draw_heart(centre, long_mm, short, rng)
    half = heart.epicardium.half_extent()
    margin = np.maximum(0.5 * extent - half - 6.0, 0.0)
    shift = rng.uniform(-1.0, 1.0, 3) * np.minimum(margin, 12.0)
    shift[2] = min(float(rng.uniform(10.0, 25.0)) + half[2], extent[2] - half[2]) - centre[2]
    return draw_heart(centre + shift, long_mm, short, np.random.default_rng(rng.integers(2**63)))


def _window(cfg: CCTAConfig, spacing, shape, arteries: list[Vessel], heart: Heart, rng: np.random.Generator) -> Window:
    """The full grid, or a crop: around the aortic root (``crop_at="root"``), or around the heart, centred 30 % of
    the way (at most a quarter of the crop) from a proximal or mid artery point (radius >= 0.8 mm) towards the aortic
    root or the left-ventricular cavity, so that it holds vessels and blood pools."""
    if cfg.crop is None:
        return Window(spacing, (0, 0, 0), shape, shape)
    crop = np.minimum(np.asarray(cfg.crop), shape)
    pts = np.concatenate([v.points[v.radii >= 0.8] for v in arteries])
    anchor = pts[int(rng.integers(len(pts)))]
    pool = heart.aortic_root[0] if rng.uniform() < 0.5 else heart.chambers["left_ventricle"].centre
    jitter = rng.uniform(-0.1, 0.1, 3) * crop
    if cfg.crop_at == "root":
        centre = heart.aortic_root[0] / np.asarray(spacing)
    else:
        towards = pool - anchor
        shift = min(0.3 * float(np.linalg.norm(towards)), 0.25 * float(np.min(crop * np.asarray(spacing))))
        centre = (anchor + shift * towards / (np.linalg.norm(towards) + 1e-9)) / np.asarray(spacing) + jitter
    start = np.clip(np.round(centre - crop / 2).astype(int), 0, np.asarray(shape) - crop)
    return Window(spacing, tuple(int(s) for s in start), tuple(int(c) for c in crop), shape)


def draw_ccta_case(cfg: CCTAConfig, rng: np.random.Generator) -> CCTACase:
    """Draw every random choice of one case, in a fixed order (so a seed gives the same case).

    Args:
        cfg: the ranges to draw from.
        rng: random source.

    Returns:
        the :class:`CCTACase`.
    """
    spacing, shape = _grid(cfg, rng)
    heart = _place_heart(cfg, spacing, shape, rng)
    arteries, info = grow_coronaries(heart, rng, min_radius_mm=0.55 * max(spacing))
    veins = grow_veins(heart, info["phi_lad"], info["phi_crux"], rng)
    n_lesions = int(rng.integers(cfg.lesions[0], cfg.lesions[1] + 1))
    lesions, plaque, calcium = add_lesions(arteries, n_lesions, bool(rng.uniform() < cfg.occlusion_probability), rng)
    thorax = draw_thorax(heart, (0.0, shape[2] * spacing[2]), rng)
    hu = draw_attenuation(cfg, rng)
    fwhm, noise = float(rng.uniform(*cfg.psf_fwhm_mm)), float(rng.uniform(*cfg.noise_hu))
    moving = bool(rng.uniform() < cfg.motion_probability)
    motion = (int(rng.integers(2)), float(rng.uniform(0.4, 1.2)), float(rng.uniform(0.3, 0.7)))
    gradient = float(rng.uniform(0.0, 0.15))  # contrast lost from ostium to the distal end
    window = _window(cfg, spacing, shape, arteries, heart, rng)
    return CCTACase(spacing, shape, window, heart, thorax, arteries, veins, lesions, plaque, calcium, hu, info, fwhm,
                    noise, motion if moving else None, gradient)
