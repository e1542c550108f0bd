"""Geometry of the heart: an epicardial ellipsoid in its own frame, its surface chart, chambers and great vessels.

The heart frame has ``u`` along the long axis (base to apex), ``v`` towards anterior and ``w = u x v``. A surface
point is addressed by ``(u, phi)``: ``v = B s cos(phi)``, ``w = C s sin(phi)`` with ``s = sqrt(1 - (u/A)^2)``. The
atrioventricular (AV) groove is the ring ``u = u_av``; the anterior interventricular groove is near ``phi = 0.3``
(where the LAD runs), the crux and the posterior interventricular groove near ``phi = 3.9`` (or ``-2.4``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Heart", "Ellipsoid", "draw_heart", "rotation_towards"]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def rotation_towards(direction: np.ndarray, anterior: np.ndarray) -> np.ndarray:
    """Rows ``(e1, e2, e3)``: ``e1 = direction``, ``e2`` the part of ``anterior`` orthogonal to it, ``e3 = e1 x e2``."""
    e1 = _unit(direction)
    e2 = _unit(anterior - anterior.dot(e1) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)])


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid: centre (mm, full-grid frame), rows of its axes, and semi-axes (mm)."""

    centre: np.ndarray
    axes: np.ndarray
    semi: np.ndarray

    def quadratic(self) -> np.ndarray:
        """``M`` such that ``(x - c)^T M (x - c) <= 1`` inside."""
        return self.axes.T @ np.diag(1.0 / self.semi**2) @ self.axes

    def half_extent(self) -> np.ndarray:
        """Half the size of the axis-aligned bounding box along each grid axis."""
        return np.sqrt(((self.axes * self.semi[:, None]) ** 2).sum(axis=0))

    def grown(self, mm: float) -> "Ellipsoid":
        return Ellipsoid(self.centre, self.axes, self.semi + mm)


@dataclass(frozen=True)
class Heart:
    """One heart.

    Attributes:
        epicardium: the outer surface of the myocardium.
        u_av: position of the AV groove along the long axis (mm, negative: towards the base).
        chambers: name -> ellipsoid, in the heart frame's axes (``left_ventricle``, ``right_ventricle``,
            ``left_atrium``, ``right_atrium``).
        aortic_root: (centre, radius) of the sinus of Valsalva, a ball partly outside the epicardium.
        aorta_axis: unit direction of the ascending aorta (superior, slightly anterior and right).
        aorta_radius: radius of the ascending aorta.
        pulmonary: polylines (N, 3) of the pulmonary trunk and its two branches, and their radius.
    """

    epicardium: Ellipsoid
    u_av: float
    chambers: dict[str, Ellipsoid]
    aortic_root: tuple[np.ndarray, float]
    aorta_axis: np.ndarray
    aorta_radius: float
    pulmonary: tuple[list[np.ndarray], float]

    @property
    def centre(self) -> np.ndarray:
        return self.epicardium.centre

    @property
    def axes(self) -> np.ndarray:
        return self.epicardium.axes

    def to_local(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p) - self.centre) @ self.axes.T

    def to_world(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q) @ self.axes + self.centre

    def surface(self, u, phi, lift=0.0) -> tuple[np.ndarray, np.ndarray]:
        """Surface point at ``(u, phi)`` moved ``lift`` mm outwards along the normal, and the outward normal.

        ``u``, ``phi`` and ``lift`` may be arrays of the same length (then the results have a row per point).
        """
        a, b, c = self.epicardium.semi
        u, phi, lift = np.asarray(u, float), np.asarray(phi, float), np.asarray(lift, float)
        s = np.sqrt(np.maximum(1.0 - (u / a) ** 2, 1e-6))
        q = np.stack([u, b * s * np.cos(phi), c * s * np.sin(phi)], axis=-1)
        g = q / self.epicardium.semi**2
        n = (g / np.linalg.norm(g, axis=-1, keepdims=True)) @ self.axes
        return self.to_world(q) + lift[..., None] * n, n

    def chart_scale(self, u: float, phi: float) -> tuple[float, float]:
        """Millimetres per unit of ``u`` and per radian of ``phi`` on the surface at ``(u, phi)``."""
        a, b, c = self.epicardium.semi
        s2 = max(1.0 - (u / a) ** 2, 1e-6)
        s = np.sqrt(s2)
        ds = -u / (a * a * s)
        du = np.sqrt(1.0 + (b * ds * np.cos(phi)) ** 2 + (c * ds * np.sin(phi)) ** 2)
        dphi = s * np.sqrt((b * np.sin(phi)) ** 2 + (c * np.cos(phi)) ** 2)
        return float(du), float(max(dphi, 1e-3))


def _chamber(heart_frame: np.ndarray, centre: np.ndarray, semi: tuple[float, float, float], local: tuple, frac: tuple) -> Ellipsoid:
    a, b, c = semi
    q = np.array([local[0] * a, local[1] * b, local[2] * c])
    return Ellipsoid(q @ heart_frame + centre, heart_frame, np.array([frac[0] * a, frac[1] * b, frac[2] * c]))


def draw_heart(centre: np.ndarray, long_mm: float, short_mm: tuple[float, float], rng: np.random.Generator) -> Heart:
    """A heart at ``centre`` (mm) with the given semi-axes, oriented as in the chest (apex left, anterior, inferior).

    Args:
        centre: centre of the epicardial ellipsoid, mm in the full-grid frame (i: left, j: posterior, k: superior).
        long_mm: semi-axis along the base-apex axis.
        short_mm: the two other semi-axes.
        rng: source of the random orientation and proportions.

    Returns:
        the :class:`Heart`.
    """
    tilt = rng.normal(0.0, 0.12, size=3)
    direction = np.array([0.62, -0.52, -0.58]) + tilt  # apex towards patient left, anterior, inferior
    frame = rotation_towards(direction, np.array([0.0, -1.0, 0.0]))
    semi = np.array([long_mm, short_mm[0], short_mm[1]])
    epicardium = Ellipsoid(np.asarray(centre, float), frame, semi)
    a, b, c = semi
    u_av = -float(rng.uniform(0.22, 0.32)) * a
    chambers = {
        "left_ventricle": _chamber(frame, centre, (a, b, c), (0.15, -0.15, 0.25), (0.55, 0.42, 0.42)),
        "right_ventricle": _chamber(frame, centre, (a, b, c), (0.02, 0.42, -0.28), (0.52, 0.38, 0.42)),
        "left_atrium": _chamber(frame, centre, (a, b, c), (-0.62, -0.35, 0.18), (0.26, 0.38, 0.42)),
        "right_atrium": _chamber(frame, centre, (a, b, c), (-0.55, 0.18, -0.48), (0.28, 0.34, 0.3)),
    }
    # the surface chart of the epicardium alone places the great vessels below
    heart = Heart(epicardium, u_av, chambers, (np.zeros(3), 0.0), np.zeros(3), 0.0, ([], 0.0))
    # aortic root: a ball on the anterior-superior base, a third of it outside the epicardium, so the ostia sit on
    # the heart's surface where the left main and right coronary arteries leave it
    root_radius = float(rng.uniform(13.0, 17.0))
    u_root = u_av - 0.12 * a
    surface, normal = heart.surface(u_root, float(rng.uniform(0.0, 0.25)))
    root_centre = surface - 0.6 * root_radius * normal
    aorta_axis = _unit(np.array([-0.18, -0.2, 1.0]) + rng.normal(0.0, 0.06, 3))
    # pulmonary trunk: from the right-ventricular outflow, anterior-left of the root, up and backwards
    pa_start, pa_normal = heart.surface(u_av + 0.05 * a, float(rng.uniform(0.85, 1.05)))
    pa_start = pa_start - 4.0 * pa_normal
    pa_dir = _unit(np.array([0.3, 0.55, 0.8]) + rng.normal(0.0, 0.06, 3))
    pa_len = float(rng.uniform(45.0, 60.0))
    trunk = pa_start + np.linspace(0.0, pa_len, 12)[:, None] * pa_dir
    left_pa = trunk[-1] + np.linspace(0.0, 40.0, 9)[:, None] * _unit(np.array([0.8, 0.6, -0.1]))
    right_pa = trunk[-1] + np.linspace(0.0, 60.0, 13)[:, None] * _unit(np.array([-0.9, 0.35, -0.1]))
    pulmonary = [trunk, left_pa, right_pa]
    return Heart(
        epicardium, u_av, chambers, (root_centre, root_radius), aorta_axis, 0.9 * root_radius,
        (pulmonary, float(rng.uniform(11.0, 14.0))),
    )
