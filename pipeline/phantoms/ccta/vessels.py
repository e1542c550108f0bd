"""Vessels on the epicardial surface: the :class:`Vessel` record and the paths they follow.

A path is marched on the surface chart ``(u, phi)`` of the heart's ellipsoid (see
:mod:`pipeline.phantoms.ccta.heart`) with a heading that steers to its anatomical targets plus an Ornstein-Uhlenbeck
wiggle (tortuosity), then lifted off the surface by its radius so that it runs in the epicardial fat. Radii taper to
their end value and drop by Murray's law at side branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.phantoms.ccta.heart import Heart

__all__ = ["Vessel", "STEP_MM", "WALL_GAP_MM", "TAPER_POWER", "murray_parent_radius", "march", "taper", "lift",
           "surface_arc", "straight"]

#: distance between the epicardium and a vessel's wall (mm): the vessel lies in the fat on the surface
WALL_GAP_MM = 0.3
#: step along a centreline (mm)
STEP_MM = 0.2


@dataclass
class Vessel:
    """One named vessel: centreline points (mm, full-grid frame), nominal and actual lumen radius per point.

    Attributes:
        name: e.g. ``"LAD"``, ``"D2"``, ``"GCV"``.
        segment: segment id (:data:`~pipeline.phantoms.ccta.coronaries.SEGMENTS`); 0 for veins.
        kind: ``"artery"`` or ``"vein"``.
        parent: name of the vessel it branches from (``None`` at an ostium or for a vein).
        points: (N, 3) centreline.
        radii: (N,) radius of the healthy lumen.
        lumen: (N,) radius of the lumen after stenoses (0 where occluded).
        contrast: (N,) fraction of the aortic attenuation in the lumen (attenuation gradient, collateral filling).
    """

    name: str
    segment: int
    kind: str
    parent: str | None
    points: np.ndarray
    radii: np.ndarray
    lumen: np.ndarray = field(default=None)  # type: ignore[assignment]
    contrast: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.lumen is None:
            self.lumen = self.radii.copy()
        if self.contrast is None:
            self.contrast = np.ones(len(self.radii))

    @property
    def arc(self) -> np.ndarray:
        """Arc length (mm) at each point."""
        return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(self.points, axis=0), axis=1))])

    @property
    def length(self) -> float:
        return float(self.arc[-1])


def murray_parent_radius(*children: float) -> float:
    """Radius of a parent that splits into ``children`` by Murray's law (``r^3 = sum r_i^3``)."""
    return float(sum(c**3 for c in children) ** (1.0 / 3.0))


def _wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def march(
    heart: Heart,
    start: tuple[float, float],
    heading: float | None,
    length: float,
    targets: list[tuple[float, float]],
    rng: np.random.Generator,
    wiggle: float = 0.05,
    pull: float = 0.12,
) -> np.ndarray:
    """Chart coordinates ``(u, phi)`` every :data:`STEP_MM` along a path that steers to ``targets`` in turn.

    The heading (radians; 0 points to the apex, +pi/2 to increasing ``phi``) turns by an Ornstein-Uhlenbeck rate
    (tortuosity) plus a pull towards the current target, stronger when it is near (so the path cannot circle
    around it); a target closer than 4 mm hands over to the next. The path
    ends after ``length`` mm, at the last target, or near the apex. ``heading=None`` starts towards the first target.
    """
    a = heart.epicardium.semi[0]
    if heading is None:
        su, sp = heart.chart_scale(*start)
        heading = float(np.arctan2((targets[0][1] - start[1]) * sp, (targets[0][0] - start[0]) * su))
    u, phi, th, turn = start[0], start[1], heading, 0.0
    out = [(u, phi)]
    ti = 0
    for _ in range(int(length / STEP_MM)):
        su, sp = heart.chart_scale(u, phi)
        if ti < len(targets):
            tu, tp = targets[ti]
            du, dp = (tu - u) * su, (tp - phi) * sp
            dist = np.hypot(du, dp)
            if dist < 4.0:
                ti += 1
                if ti == len(targets):
                    break
                continue
            th += pull * max(1.0, 15.0 / dist) * STEP_MM * _wrap(np.arctan2(dp, du) - th)
        turn = 0.8 * turn + wiggle * np.sqrt(STEP_MM) * rng.normal()
        th += turn
        u += STEP_MM * np.cos(th) / su
        phi += STEP_MM * np.sin(th) / sp
        if u > 0.95 * a:
            break
        out.append((u, phi))
    return np.asarray(out)


#: shape of the taper: the radius falls as ``1 - t^TAPER_POWER`` of the way to its end value (t = fraction of the
#: length), so the mid segments stay wide as measured (Dodge et al. 1992: LAD 3.7 mm proximal, 1.9 mm distal)
TAPER_POWER = 1.5


def taper(arc: np.ndarray, r0: float, r_end: float, drops: list[tuple[float, float]]) -> np.ndarray:
    """Radius along ``arc``: from ``r0`` to ``r_end`` (see :data:`TAPER_POWER`), minus Murray drops
    ``(s, r_child)`` at side branches (after a drop the rest of the vessel tapers from the reduced radius)."""
    length = max(float(arc[-1]), 1e-6)

    def profile(s, s_c, r_c):
        t = np.clip((s - s_c) / max(length - s_c, 1e-6), 0.0, 1.0)
        return r_end + (r_c - r_end) * (1.0 - t**TAPER_POWER)

    r = np.empty_like(arc)
    s_c, r_c = 0.0, r0
    for s_b, r_child in sorted(drops) + [(np.inf, 0.0)]:
        seg = (arc >= s_c) & (arc < s_b)
        r[seg] = profile(arc[seg], s_c, r_c)
        if not np.isfinite(s_b):
            break
        r_at = float(profile(s_b, s_c, r_c))
        r_c = max(float(np.cbrt(max(r_at**3 - r_child**3, 0.0))), r_end)
        s_c = s_b
    return r


def lift(heart: Heart, chart: np.ndarray, radius_of_arc) -> tuple[np.ndarray, np.ndarray]:
    """3-D centreline (mm): the chart path on the surface, lifted by radius + wall gap; and the radii."""
    arc = surface_arc(heart, chart)
    radii = radius_of_arc(arc)
    pts, _ = heart.surface(chart[:, 0], chart[:, 1], lift=radii + WALL_GAP_MM)
    return pts, radii


def straight(a: np.ndarray, b: np.ndarray, bow: np.ndarray) -> np.ndarray:
    """Points every :data:`STEP_MM` from ``a`` to ``b`` (excluded), bowed sideways by ``bow`` at the middle."""
    n = max(int(np.linalg.norm(b - a) / STEP_MM), 2)
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    return a + t * (b - a) + np.sin(np.pi * t) * bow


def surface_arc(heart: Heart, chart: np.ndarray) -> np.ndarray:
    pts, _ = heart.surface(chart[:, 0], chart[:, 1])
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
