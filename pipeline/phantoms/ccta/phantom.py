"""One ``ccta`` phantom: draw a case, paint the chest, render the vessels with partial volume, scan it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pipeline.phantoms.ccta.anatomy import paint_anatomy
from pipeline.phantoms.ccta.case import CCTACase, draw_ccta_case
from pipeline.phantoms.ccta.config import CCTAConfig
from pipeline.phantoms.ccta.raster import SparseField, Window, lookup, merge_nearest, rasterise_tube, resample_polyline
from pipeline.phantoms.ccta.scanner import acquire, motion_blur, psf_sigma_vox, quantise
from pipeline.phantoms.ccta.tissues import Tissue, lookup_tables
from pipeline.io.nifti import phantom_affine

__all__ = ["CCTAPhantom", "make_ccta_phantom"]

#: step of the rendered centrelines (mm): well under the thinnest radius (0.4 mm)
_RENDER_STEP_MM = 0.1
#: fat around every vessel, beyond its wall (mm)
_FAT_SLEEVE_MM = (1.5, 3.0)


@dataclass
class CCTAPhantom:
    """A rendered coronary CT angiogram.

    Attributes:
        image: CT volume in HU (int16).
        label: coronary artery lumen (uint8: 1 where the voxel centre lies in an artery's open lumen; aorta,
            chambers, veins, plaque and calcium are 0).
        segments: named segment of each lumen voxel (uint8, ids of
            :data:`~pipeline.phantoms.ccta.coronaries.SEGMENTS`, 0 elsewhere).
        tissue: class of every voxel (uint8, :class:`~pipeline.phantoms.ccta.tissues.Tissue`), before the scanner.
        affine: voxel-to-scanner matrix (LPS-style: i and j flipped in RAS; a crop keeps its place in the full scan).
        case: what was drawn: grid, window, heart, chest, arteries, veins, lesions, attenuation, scanner.
        meta: a JSON-serialisable summary of the case (spacing, HU, noise, dominance, lesions, ...).
    """

    image: np.ndarray
    label: np.ndarray
    segments: np.ndarray
    tissue: np.ndarray
    affine: np.ndarray
    case: CCTACase
    meta: dict = field(default_factory=dict)

    @property
    def window(self) -> Window:
        return self.case.window


def _tubes(window: Window, vessels: list[tuple[np.ndarray, np.ndarray]], band: float, grow: float = 0.0) -> tuple[SparseField, list[int]]:
    """Merged signed-distance field of several tubes; also the offset of each tube's points in ``nearest``."""
    fields, offsets, offset = [], [], 0
    for points, radii in vessels:
        pts, rad = resample_polyline(points, radii, _RENDER_STEP_MM) if len(points) > 1 else (points, radii)
        offsets.append(offset)
        fields.append(rasterise_tube(window, pts, np.where(rad > 0, rad + grow, 0.0), band, offset))
        offset += len(pts)
    return merge_nearest(fields), offsets


def _blend(image: np.ndarray, tissue: np.ndarray, f: SparseField, hu: np.ndarray | float, cls: Tissue, voxel: float) -> None:
    """Partial volume: mix ``hu`` into the image by the fraction of each voxel inside the tube; classify the inside.
    Aortic voxels are left as they are (the lumen joins the aorta at the ostia, with the same contrast)."""
    flat_img, flat_t = image.reshape(-1), tissue.reshape(-1)
    free = flat_t[f.flat] != Tissue.AORTA
    flat, sd = f.flat[free], f.sd[free]
    hu = np.asarray(hu, np.float32)
    hu = hu[free] if hu.ndim else hu
    frac = np.clip(0.5 - sd / voxel, 0.0, 1.0).astype(np.float32)
    flat_img[flat] = flat_img[flat] * (1.0 - frac) + hu * frac
    flat_t[flat[sd <= 0]] = cls


def make_ccta_phantom(cfg: CCTAConfig, rng: np.random.Generator) -> CCTAPhantom:
    """Draw one case from ``cfg`` and render it.

    Args:
        cfg: ranges of the case's anatomy, contrast and scanner.
        rng: random source; the same seed gives the same phantom, bit for bit.

    Returns:
        the :class:`CCTAPhantom`.
    """
    case = draw_ccta_case(cfg, rng)
    spacing, window, heart, hu = case.spacing, case.window, case.heart, case.hu
    arteries, veins = case.arteries, case.veins

    tissue = paint_anatomy(window, heart, case.thorax)
    voxel = float(np.cbrt(np.prod(spacing)))
    band = voxel
    # fat around every vessel: the vessels run in the epicardial fat, never touching muscle or a chamber (only the
    # aorta at the ostia, and bone, keep their voxels)
    sleeve = float(rng.uniform(*_FAT_SLEEVE_MM))
    fat, _ = _tubes(window, [(v.points, v.radii) for v in arteries + veins], 0.0, grow=sleeve)
    flat_t = tissue.reshape(-1)
    movable = ~np.isin(flat_t[fat.flat], (Tissue.AORTA, Tissue.BONE, Tissue.MARROW))  # a sparse list: isin is cheap
    flat_t[fat.flat[movable]] = Tissue.EPICARDIAL_FAT

    # tissue attenuation with a slow texture (lung parenchyma gets small vessels from the same field), a slab at a
    # time so the lookups stay in cache; the texture is drawn at half resolution and repeated
    low = tuple(int(np.ceil(n / 2)) for n in window.shape)
    texture = ndimage.gaussian_filter(rng.standard_normal(low, dtype=np.float32), 1.0 / np.asarray(spacing), truncate=3.0)
    texture /= texture.std() + 1e-6
    mean, amp = lookup_tables(hu)
    image = np.empty(window.shape, np.float32)
    for i in range(0, window.shape[0], 16):
        rows = tissue[i : i + 16]
        tex = texture[i // 2 : (i + 16 + 1) // 2].repeat(2, 0).repeat(2, 1).repeat(2, 2)
        tex = tex[: rows.shape[0], : window.shape[1], : window.shape[2]]
        rows[(rows == Tissue.LUNG) & (tex > 2.2)] = Tissue.LUNG_VESSEL
        image[i : i + 16] = lookup(mean, rows)
        image[i : i + 16] += lookup(amp, rows) * tex
    del texture

    plaque_f, _ = _tubes(window, case.plaque, band)
    _blend(image, tissue, plaque_f, hu[Tissue.PLAQUE], Tissue.PLAQUE, voxel)
    vein_f, _ = _tubes(window, [(v.points, v.radii) for v in veins], band)
    _blend(image, tissue, vein_f, hu[Tissue.VEIN], Tissue.VEIN, voxel)
    lumen_f, offsets = _tubes(window, [(v.points, v.lumen) for v in arteries], band)
    contrast = np.concatenate([
        resample_polyline(v.points, v.contrast * (1.0 - case.gradient * v.arc / 150.0), _RENDER_STEP_MM)[1] for v in arteries
    ])
    segment_of = np.concatenate([np.full(len(resample_polyline(v.points, v.radii, _RENDER_STEP_MM)[0]), v.segment) for v in arteries])
    _blend(image, tissue, lumen_f, hu[Tissue.LUMEN] * contrast[lumen_f.nearest], Tissue.LUMEN, voxel)
    calcium_f, _ = _tubes(window, case.calcium, band)
    _blend(image, tissue, calcium_f, hu[Tissue.CALCIUM], Tissue.CALCIUM, voxel)

    inside = lumen_f.sd <= 0
    lumen_flat, lumen_seg = lumen_f.flat[inside], segment_of[lumen_f.nearest[inside]]
    keep = flat_t[lumen_flat] == Tissue.LUMEN  # not aorta (ostia), not calcium
    label = np.zeros(window.shape, np.uint8)
    segments = np.zeros(window.shape, np.uint8)
    label.reshape(-1)[lumen_flat[keep]] = 1
    segments.reshape(-1)[lumen_flat[keep]] = lumen_seg[keep]

    image = acquire(image, psf_sigma_vox(case.fwhm_mm, spacing), case.noise_hu, rng)
    if case.motion is not None:
        motion_axis, motion_mm, motion_at = case.motion
        rca = next(v for v in arteries if v.name == "RCA")
        p = rca.points[int(motion_at * (len(rca.points) - 1))]
        box = window.box(p - 10.0, p + 10.0)
        if box is not None:
            motion_blur(image, box[0], box[1], motion_axis, motion_mm / spacing[motion_axis])
    image = quantise(image)

    start = np.eye(4)
    start[:3, 3] = window.start
    affine = phantom_affine(case.shape, spacing) @ start
    meta = {
        "spacing": list(spacing), "full_shape": list(case.shape), "window_start": list(window.start),
        "window_shape": list(window.shape), "dominance": case.info["dominance"], "ramus": case.info["ramus"],
        "lumen_hu": round(hu[Tissue.LUMEN], 1), "vein_hu": round(hu[Tissue.VEIN], 1),
        "right_heart_hu": round(hu[Tissue.RIGHT_BLOOD], 1), "noise_hu": round(case.noise_hu, 1),
        "psf_fwhm_mm": round(case.fwhm_mm, 3), "motion": case.motion is not None,
        "lesions": [[les.vessel, round(les.grade, 2), les.kind] for les in case.lesions],
    }
    return CCTAPhantom(image, label, segments, tissue, affine, case, meta)
