"""The chest around the heart, painted as tissue classes into a window: body, fat, muscle, lungs, mediastinum, spine,
ribs, sternum, liver dome, descending and ascending aorta, pulmonary arteries, the heart's shells and chambers.

Axial shapes (body, lungs, spine) are computed in 2-D once and broadcast along the slices; 3-D shapes (heart,
chambers, liver) use a separable quadratic form inside their bounding box; tubes (aorta, ribs) use
:func:`~pipeline.phantoms.ccta.raster.rasterise_tube`. Nothing is evaluated outside the boxes it can touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.phantoms.ccta.heart import Ellipsoid, Heart
from pipeline.phantoms.ccta.raster import Window, lookup, paint_tube
from pipeline.phantoms.ccta.tissues import Tissue

__all__ = ["Thorax", "draw_thorax", "paint_anatomy", "ellipsoid_box"]


@dataclass(frozen=True)
class Thorax:
    """Axial geometry of the chest (mm, full-grid frame; i: left, j: posterior, k: superior).

    Attributes:
        midline: x of the sagittal midline.
        centre_y: y of the body ellipse centre.
        body: semi-axes (x, y) of the skin outline.
        fat_mm, muscle_mm: subcutaneous fat and chest-wall muscle thickness.
        spine: (x, y, radius) of the vertebral bodies; discs every ``disc_period`` mm.
        disc_period: z distance between intervertebral discs.
        descending_aorta: (x, y, radius).
        ribs: polylines of the ribs and their radius.
        liver: the liver dome (under the right hemidiaphragm).
    """

    midline: float
    centre_y: float
    body: tuple[float, float]
    fat_mm: float
    muscle_mm: float
    spine: tuple[float, float, float]
    disc_period: float
    descending_aorta: tuple[float, float, float]
    ribs: tuple[list[np.ndarray], float]
    liver: Ellipsoid


def draw_thorax(heart: Heart, z_range: tuple[float, float], rng: np.random.Generator) -> Thorax:
    """A chest fitted around ``heart``: the heart left of the midline, behind the anterior chest wall.

    Args:
        heart: the heart.
        z_range: (bottom, top) of the full grid in mm, so ribs and discs cover it.
        rng: random source.
    """
    c = heart.centre
    midline = c[0] - float(rng.uniform(22.0, 38.0))
    fat, muscle = float(rng.uniform(8.0, 25.0)), float(rng.uniform(6.0, 12.0))
    half_x, half_y = float(rng.uniform(150.0, 180.0)), float(rng.uniform(105.0, 125.0))
    anterior_wall = c[1] - float(rng.uniform(58.0, 72.0))  # inner face of the chest wall
    centre_y = anterior_wall - fat - muscle - 6.0 + half_y
    posterior = centre_y + half_y
    spine_r = float(rng.uniform(17.0, 21.0))
    spine = (midline, posterior - float(rng.uniform(58.0, 70.0)), spine_r)
    aorta_r = float(rng.uniform(11.0, 14.0))
    descending = (midline + float(rng.uniform(14.0, 24.0)), spine[1] - spine_r - aorta_r + 4.0, aorta_r)
    # ribs: around the inner chest wall, descending towards the front
    ax, ay = half_x - fat - muscle + 2.0, half_y - fat - muscle + 2.0
    rib_r = float(rng.uniform(4.5, 6.0))
    period = float(rng.uniform(24.0, 30.0))
    alpha = np.linspace(0.35, 2.4, 160)
    ribs = []
    for z_post in np.arange(z_range[0] - 20.0 + rng.uniform(0, period), z_range[1] + 60.0, period):
        drop = float(rng.uniform(35.0, 55.0))
        z = z_post - drop * (alpha / np.pi) ** 1.5
        for side in (-1.0, 1.0):
            ribs.append(np.stack([midline + side * ax * np.sin(alpha), centre_y + ay * np.cos(alpha), z], axis=1))
    liver_semi = np.array([float(rng.uniform(100.0, 120.0)), float(rng.uniform(80.0, 95.0)), float(rng.uniform(60.0, 75.0))])
    heart_bottom = c[2] - heart.epicardium.half_extent()[2]
    liver_centre = np.array([midline - float(rng.uniform(30.0, 50.0)), centre_y + 5.0, heart_bottom + 8.0 - liver_semi[2]])
    liver = Ellipsoid(liver_centre, np.eye(3), liver_semi)
    return Thorax(midline, centre_y, (half_x, half_y), fat, muscle, spine, float(rng.uniform(26.0, 31.0)), descending,
                  (ribs, rib_r), liver)


def ellipsoid_box(window: Window, ell: Ellipsoid, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(lo, hi, q)``: the window box around ``ell`` (semi-axes times ``scale``) and ``q = (x-c)^T M (x-c)`` in it
    (``q <= 1`` inside ``ell``), from a 2-D part and one broadcast term along the slices."""
    half = ell.half_extent() * scale
    box = window.box(ell.centre - half, ell.centre + half)
    if box is None:
        return None
    lo, hi = box
    m = ell.quadratic()
    dx, dy, dz = (window.axis_mm(a, lo[a], hi[a]) - np.float32(ell.centre[a]) for a in range(3))
    q2 = (m[0, 0] * dx[:, None] ** 2 + 2 * m[0, 1] * dx[:, None] * dy[None, :] + m[1, 1] * dy[None, :] ** 2).astype(np.float32)
    lin = (2 * m[0, 2] * dx[:, None] + 2 * m[1, 2] * dy[None, :]).astype(np.float32)
    q = lin[:, :, None] * dz[None, None, :]
    q += q2[:, :, None]
    q += (m[2, 2] * dz**2).astype(np.float32)[None, None, :]
    return lo, hi, q


def _among(classes: np.ndarray, allowed: tuple[int, ...]) -> np.ndarray:
    table = np.zeros(256, bool)
    table[list(allowed)] = True
    return lookup(table, classes)


def _paint_ellipsoid(tissue: np.ndarray, window: Window, ell: Ellipsoid, value: int, only: tuple[int, ...] | None = None) -> None:
    found = ellipsoid_box(window, ell)
    if found is None:
        return
    lo, hi, q = found
    view = tissue[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    mask = q <= 1.0
    if only is not None:
        mask &= _among(view, only)
    view[mask] = value


def _ellipse2d(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    return ((x[:, None] - cx) / ax) ** 2 + ((y[None, :] - cy) / ay) ** 2 <= 1.0


def paint_anatomy(window: Window, heart: Heart, thorax: Thorax) -> np.ndarray:
    """Tissue classes (uint8, :class:`~pipeline.phantoms.ccta.tissues.Tissue`) of the window, without the coronary
    vessels."""
    tissue = np.full(window.shape, Tissue.AIR, np.uint8)
    x, y, z = (window.axis_mm(a).astype(np.float64) for a in range(3))
    th = thorax
    hx, hy = th.body
    cavity_x, cavity_y = hx - th.fat_mm - th.muscle_mm, hy - th.fat_mm - th.muscle_mm
    axial = np.full((len(x), len(y)), Tissue.AIR, np.uint8)
    axial[_ellipse2d(x, y, th.midline, th.centre_y, hx, hy)] = Tissue.FAT
    axial[_ellipse2d(x, y, th.midline, th.centre_y, hx - th.fat_mm, hy - th.fat_mm)] = Tissue.SOFT
    cavity = _ellipse2d(x, y, th.midline, th.centre_y, cavity_x, cavity_y)
    axial[cavity] = Tissue.LUNG
    front = th.centre_y - cavity_y
    band = (np.abs(x[:, None] - th.midline) < 22.0) & (y[None, :] > front) & (y[None, :] < th.spine[1])
    axial[band & cavity] = Tissue.FAT
    sternum = _ellipse2d(x, y, th.midline, front - 4.0, 16.0, 6.0)
    axial[sternum] = Tissue.BONE
    axial[_ellipse2d(x, y, th.midline, front - 4.0, 14.0, 4.5)] = Tissue.MARROW
    tissue[:] = axial[:, :, None]
    _paint_ellipsoid(tissue, window, th.liver, Tissue.LIVER, only=(Tissue.LUNG, Tissue.FAT))

    # heart: paracardial fat, pericardium, epicardial fat, myocardium, then the chambers
    found = ellipsoid_box(window, heart.epicardium, scale=1.25)
    if found is not None:
        lo, hi, q = found
        view = tissue[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        mean_r = float(np.mean(heart.epicardium.semi))
        outside = _among(view, (Tissue.LUNG, Tissue.FAT, Tissue.LIVER))
        for grow, value in ((9.0, Tissue.FAT), (3.5, Tissue.SOFT), (2.7, Tissue.EPICARDIAL_FAT)):
            view[(q <= (1.0 + grow / mean_r) ** 2) & outside] = value
        view[q <= 1.0] = Tissue.MYOCARDIUM
    ch = heart.chambers
    myo = (Tissue.MYOCARDIUM,)
    _paint_ellipsoid(tissue, window, ch["right_ventricle"], Tissue.RIGHT_BLOOD, only=myo)
    _paint_ellipsoid(tissue, window, ch["left_ventricle"].grown(9.0), Tissue.MYOCARDIUM, only=(Tissue.RIGHT_BLOOD,))
    _paint_ellipsoid(tissue, window, ch["left_ventricle"], Tissue.LEFT_BLOOD, only=myo)
    _paint_ellipsoid(tissue, window, ch["left_atrium"], Tissue.LEFT_BLOOD, only=myo)
    _paint_ellipsoid(tissue, window, ch["right_atrium"], Tissue.RIGHT_BLOOD, only=myo)

    # great vessels: pulmonary arteries, then the aortic root (sinus) and the ascending aorta up to the top
    lines, pa_r = heart.pulmonary
    for line in lines:
        paint_tube(tissue, window, line, pa_r, Tissue.RIGHT_BLOOD)
    root, root_r = heart.aortic_root
    top = window.full_shape[2] * window.spacing[2] + 20.0
    length = max((top - root[2]) / max(heart.aorta_axis[2], 0.3), 1.0)
    paint_tube(tissue, window, np.stack([root, root + length * heart.aorta_axis]), heart.aorta_radius, Tissue.AORTA)
    paint_tube(tissue, window, root[None].repeat(2, 0), root_r, Tissue.AORTA)
    # spine: cancellous vertebral bodies in a cortical shell, discs between them, canal and posterior arch behind
    sx, sy, sr = th.spine
    body = _ellipse2d(x, y, sx, sy, sr, sr * 0.85)
    core = _ellipse2d(x, y, sx, sy, sr - 2.0, sr * 0.85 - 2.0)
    arch = _ellipse2d(x, y, sx, sy + sr * 0.85 + 12.0, 14.0, 11.0)
    canal = _ellipse2d(x, y, sx, sy + sr * 0.85 + 9.0, 8.0, 7.0)
    disc = (np.mod(z, th.disc_period) < 6.0)[None, None, :]
    t_body = np.where(body & ~core, Tissue.BONE, Tissue.MARROW).astype(np.uint8)
    tissue[body] = np.where(disc[0], Tissue.SOFT, t_body[body][:, None])
    tissue[arch & ~canal] = Tissue.BONE
    tissue[canal] = Tissue.SOFT
    dx, dy, dr = th.descending_aorta
    tissue[_ellipse2d(x, y, dx, dy, dr, dr)] = Tissue.AORTA
    ribs, rib_r = th.ribs
    for rib in ribs:
        paint_tube(tissue, window, rib, rib_r, Tissue.BONE, core=(1.5, Tissue.MARROW))
    return tissue
