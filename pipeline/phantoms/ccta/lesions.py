"""Coronary artery disease on the arteries: stenoses (CAD-RADS grades), occlusions, plaque and calcium.

A lesion narrows the lumen by its diameter-stenosis grade over a smooth (cos^2) profile. Non-calcified plaque fills
the wall between the narrowed lumen and a slightly remodelled outer wall; calcified plaque adds nodules against the
lumen. Beyond an occlusion the lumen fills late through collaterals (lower contrast). None of it is labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.phantoms.ccta.vessels import Vessel

__all__ = ["Lesion", "CAD_RADS_GRADES", "add_lesions"]

#: diameter-stenosis ranges of CAD-RADS 2 to 4 (25-49, 50-69, 70-99 %); CAD-RADS 5 is a total occlusion
CAD_RADS_GRADES = ((0.25, 0.49), (0.5, 0.69), (0.7, 0.99))


@dataclass(frozen=True)
class Lesion:
    """One lesion: vessel, centre and half-length along it (mm), diameter stenosis (1.0: occluded), composition."""

    vessel: str
    centre_mm: float
    half_length_mm: float
    grade: float
    kind: str


def _profile(arc: np.ndarray, centre: float, half: float) -> np.ndarray:
    x = np.clip(np.abs(arc - centre) / half, 0.0, 1.0)
    return np.cos(0.5 * np.pi * x) ** 2


def add_lesions(
    arteries: list[Vessel], count: int, occlusion: bool, rng: np.random.Generator
) -> tuple[list[Lesion], list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """Narrow ``count`` lesions into the arteries (in place) and return the plaque they bring.

    Lesions sit where the healthy lumen is at least 1 mm in radius (proximal and mid segments). Spotty calcium without
    a stenosis is added too (0-3 nodules).

    Args:
        arteries: the arteries; their ``lumen`` and ``contrast`` are updated.
        count: number of stenoses.
        occlusion: make the first of them a total occlusion (CAD-RADS 5).
        rng: random source.

    Returns:
        the lesions, the non-calcified plaque tubes ``(points, radii)`` and the calcium nodules ``(points, radii)``.
    """
    candidates = [v for v in arteries if v.radii.max() >= 1.0 and v.length > 12.0]
    lesions, plaque, calcium = [], [], []
    for n in range(count + int(rng.integers(0, 4))):
        if not candidates:
            break
        spotty = n >= count
        vessel = candidates[int(rng.integers(len(candidates)))]
        arc = vessel.arc
        ok = np.nonzero((vessel.radii >= 1.0) & (arc > 3.0) & (arc < arc[-1] - 6.0))[0]
        if not len(ok):
            continue
        centre = float(arc[ok[int(rng.integers(len(ok)))]])
        if spotty:
            grade, half, kind = float(rng.uniform(0.0, 0.2)), float(rng.uniform(1.5, 3.0)), "calcified"
        elif occlusion and n == 0:
            grade, half, kind = 1.0, float(rng.uniform(3.0, 10.0)), "non-calcified"
        else:
            lo, hi = CAD_RADS_GRADES[int(rng.integers(len(CAD_RADS_GRADES)))]
            grade, half = float(rng.uniform(lo, hi)), float(rng.uniform(2.0, 7.0))
            kind = str(rng.choice(["calcified", "non-calcified", "mixed"], p=[0.35, 0.4, 0.25]))
        w = _profile(arc, centre, half)
        vessel.lumen = np.minimum(vessel.lumen, vessel.radii * (1.0 - grade * w))
        if grade >= 1.0:
            vessel.lumen[w > 0.5] = 0.0
            vessel.contrast[arc > centre] *= float(rng.uniform(0.55, 0.8))  # filled late, through collaterals
        inside = w > 0.02
        if kind in ("non-calcified", "mixed") and inside.any():
            plaque.append((vessel.points[inside], vessel.radii[inside] * (1.0 + 0.25 * w[inside])))
        if kind in ("calcified", "mixed") and inside.any():
            calcium.append(_nodule(vessel, centre, half, rng))
        lesions.append(Lesion(vessel.name, centre, half, grade, "spotty-calcium" if spotty else kind))
    return lesions, plaque, calcium


def _nodule(vessel: Vessel, centre: float, half: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A calcium nodule against the lumen wall on one side: a short chain of balls along the vessel."""
    arc = vessel.arc
    length = float(rng.uniform(1.0, min(4.0, 2 * half)))
    sel = np.nonzero(np.abs(arc - centre) <= 0.5 * length)[0]
    if not len(sel):
        sel = np.array([int(np.argmin(np.abs(arc - centre)))])
    i0 = sel[len(sel) // 2]
    tangent = vessel.points[min(i0 + 1, len(arc) - 1)] - vessel.points[max(i0 - 1, 0)]
    tangent /= np.linalg.norm(tangent) + 1e-12
    side = rng.normal(size=3)
    side -= side.dot(tangent) * tangent
    side /= np.linalg.norm(side)
    radius = float(rng.uniform(0.5, 1.1))
    # the nodule's wall touches the narrowed lumen: centre at lumen radius + 0.9 of its own radius
    offset = (vessel.lumen[sel] + 0.9 * radius)[:, None] * side
    return vessel.points[sel] + offset, np.full(len(sel), radius)
