"""The coronary arteries of one heart: left main, LAD, LCX, RCA and their side branches, by dominance.

Each artery follows its anatomical course (the interventricular and atrioventricular grooves) on the epicardial
surface (:mod:`pipeline.phantoms.ccta.vessels`); radii taper to under 1 mm and drop by Murray's law
(``r^3 = r1^3 + r2^3``) at every side branch. Figures are those of ``docs/data.md`` (Dodge et al. 1992,
Medrano-Gracia et al. 2016).
"""

from __future__ import annotations

import numpy as np

from pipeline.phantoms.ccta.heart import Heart
from pipeline.phantoms.ccta.vessels import (
    TAPER_POWER,
    Vessel,
    lift,
    march,
    murray_parent_radius,
    straight,
    surface_arc,
    taper,
)

__all__ = ["SEGMENTS", "grow_coronaries"]

#: segment ids of the optional second label file
SEGMENTS = {
    1: "LM", 2: "LAD", 3: "LCX", 4: "RCA", 5: "diagonal", 6: "obtuse_marginal", 7: "PDA", 8: "posterolateral",
    9: "acute_marginal", 10: "conus", 11: "ramus_intermedius",
}
_SEGMENT_ID = {name: k for k, name in SEGMENTS.items()}


class _Planner:
    """Builds the named arteries of one case, parents before children."""

    def __init__(self, heart: Heart, r_end: tuple[float, float], rng: np.random.Generator) -> None:
        self.heart, self.rng, self.r_end = heart, rng, r_end
        self.vessels: list[Vessel] = []
        self.charts: dict[str, np.ndarray] = {}

    def end_radius(self) -> float:
        return float(self.rng.uniform(*self.r_end))

    def add(self, name: str, segment: str, parent: str | None, chart: np.ndarray, r0: float, r_end: float,
            children: list[tuple[float, float]], prefix: np.ndarray | None = None) -> Vessel:
        """Lift ``chart`` into a vessel; ``prefix`` (3-D points) goes first (the ostial segment of an artery)."""
        pts, radii = lift(self.heart, chart, lambda arc: taper(arc, r0, r_end, children))
        if prefix is not None and len(prefix):
            pre_r = np.full(len(prefix), r0)
            pts, radii = np.concatenate([prefix, pts]), np.concatenate([pre_r, radii])
        vessel = Vessel(name, _SEGMENT_ID[segment], "artery", parent, pts, radii)
        self.vessels.append(vessel)
        self.charts[name] = chart
        return vessel

    def side_branches(self, parent: str, count: int, where: tuple[float, float], heading: tuple[float, float],
                      length: tuple[float, float], ratio: tuple[float, float]) -> list[tuple]:
        """Draw ``count`` side branches of ``parent``: (point index, chart start, heading, length, radius ratio)."""
        chart = self.charts[parent]
        n = len(chart)
        picks = []
        for frac in np.sort(self.rng.uniform(*where, size=count)):
            i = int(frac * (n - 1))
            d = chart[min(i + 1, n - 1)] - chart[max(i - 1, 0)]
            su, sp = self.heart.chart_scale(*chart[i])
            th_parent = float(np.arctan2(d[1] * sp, d[0] * su))
            picks.append((i, tuple(chart[i]), th_parent + self.rng.uniform(*heading),
                          float(self.rng.uniform(*length)), float(self.rng.uniform(*ratio))))
        return picks


def grow_coronaries(heart: Heart, rng: np.random.Generator, min_radius_mm: float = 0.4) -> tuple[list[Vessel], dict]:
    """The left (LM -> LAD, LCX, diagonals, obtuse marginals, sometimes a ramus) and right (RCA -> conus, acute
    marginals, PDA/posterolateral by dominance) coronary trees of one heart.

    Args:
        heart: the heart they run on.
        rng: random source (dominance, diameters, courses).
        min_radius_mm: smallest distal radius (kept >= 0.55 of the thickest voxel edge so thin ends stay connected).

    Returns:
        the arteries (parents first) and a description (dominance, ostia).
    """
    a = heart.epicardium.semi[0]
    u_av = heart.u_av
    r_end = (max(0.4, min_radius_mm), max(0.475, min_radius_mm))
    plan = _Planner(heart, r_end, rng)
    dominance = str(rng.choice(["right", "left", "co"], p=[0.8, 0.1, 0.1]))
    d_lad = float(np.clip(rng.normal(3.7, 0.4), 3.0, 4.5))
    d_lcx = float(np.clip(rng.normal(4.2, 0.6), 3.4, 5.0) if dominance == "left" else np.clip(rng.normal(3.4, 0.5), 2.6, 4.2))
    d_rca = float(np.clip(rng.normal(2.8, 0.5), 2.0, 3.6) if dominance == "left" else np.clip(rng.normal(3.9, 0.6), 3.0, 4.8))
    ramus = rng.uniform() < 0.2
    d_ri = float(rng.uniform(2.0, 2.8)) if ramus else 0.0
    root_c, root_r = heart.aortic_root

    # --- left main: from the left ostium on the aortic root to its bifurcation on the surface -----------------------
    phi_lad = float(rng.uniform(0.2, 0.45))
    phi_lm = phi_lad + float(rng.uniform(0.25, 0.45))
    u_b = u_av + float(rng.uniform(0.0, 0.06)) * a
    r_lm = 0.5 * murray_parent_radius(d_lad, d_lcx, d_ri) if ramus else 0.5 * murray_parent_radius(d_lad, d_lcx)
    bif, _ = heart.surface(u_b, phi_lm, lift=r_lm + 0.3)
    left_ostium = root_c + root_r * (bif - root_c) / np.linalg.norm(bif - root_c)
    bow = rng.normal(0.0, 1.0, 3)
    lm = straight(left_ostium, bif, bow)
    plan.vessels.append(Vessel("LM", _SEGMENT_ID["LM"], "artery", None, np.concatenate([lm, bif[None]]), np.full(len(lm) + 1, r_lm)))

    # --- LAD down the anterior interventricular groove, with diagonals --------------------------------------------
    lad_chart = march(heart, (u_b, phi_lm), -0.3, 200.0, [(0.1 * a, phi_lad), (0.95 * a, phi_lad + rng.uniform(-0.2, 0.2))], rng)
    plan.charts["LAD"] = lad_chart
    n_diag = int(rng.integers(1, 4))
    diagonals = plan.side_branches("LAD", n_diag, (0.12, 0.6), (0.6, 1.0), (30.0, 70.0), (0.5, 0.75))
    floor = r_end[1] + 0.15
    kept = _branch_radii(diagonals, surface_arc(heart, lad_chart), d_lad / 2, r_end[1], 1.4, floor)
    plan.add("LAD", "LAD", "LM", lad_chart, d_lad / 2, plan.end_radius(), [d for _, d in kept])
    for k, ((i, start, th, length, _), (_, r_child)) in enumerate(kept, start=1):
        chart = march(heart, start, th, length, [], rng, pull=0.0)
        plan.add(f"D{k}", "diagonal", "LAD", chart, r_child, plan.end_radius(), [])

    # --- LCX in the left AV groove, with obtuse marginals (and the PDA when left-dominant) ---------------------------
    phi_crux = float(rng.uniform(3.75, 4.0))
    phi_lcx_end = {"right": rng.uniform(2.2, 2.8), "co": rng.uniform(3.3, 3.6), "left": phi_crux}[dominance]
    lcx_chart = march(heart, (u_b, phi_lm), 1.9, 220.0, [(u_av, phi_lm + 0.5), (u_av, float(phi_lcx_end))], rng, wiggle=0.04)
    plan.charts["LCX"] = lcx_chart
    n_om = int(rng.integers(1, 4))
    oms = plan.side_branches("LCX", n_om, (0.2, 0.85), (-1.6, -1.2), (30.0, 65.0), (0.5, 0.75))
    terminal = []
    if dominance == "left":
        terminal = [("PDA", "PDA", float(rng.uniform(0.8, 1.2))), ("PL", "posterolateral", float(rng.uniform(0.7, 1.1)))]
    elif dominance == "co":
        terminal = [("PL", "posterolateral", float(rng.uniform(0.6, 0.9)))]
    lcx_end = murray_parent_radius(*[t[2] for t in terminal]) if len(terminal) > 1 else (terminal[0][2] if terminal else plan.end_radius())
    kept = _branch_radii(oms, surface_arc(heart, lcx_chart), d_lcx / 2, lcx_end, 1.3, floor)
    plan.add("LCX", "LCX", "LM", lcx_chart, d_lcx / 2, lcx_end, [d for _, d in kept])
    for k, ((i, start, th, length, _), (_, r_child)) in enumerate(kept, start=1):
        chart = march(heart, start, th, length, [], rng, pull=0.0)
        plan.add(f"OM{k}", "obtuse_marginal", "LCX", chart, r_child, plan.end_radius(), [])
    _crux_branches(plan, "LCX", lcx_chart[-1], terminal, phi_crux, +1.0)
    if ramus:
        chart = march(heart, (u_b, phi_lm), 0.75, float(rng.uniform(40.0, 70.0)), [], rng, pull=0.0)
        plan.add("RI", "ramus_intermedius", "LM", chart, d_ri / 2, plan.end_radius(), [])

    # --- RCA: from the right ostium into the right AV groove, to the crux -----------------------------------------
    phi_r0 = float(rng.uniform(-0.45, -0.2))
    u_r0 = u_av - float(rng.uniform(0.0, 0.04)) * a
    rca_start, _ = heart.surface(u_r0, phi_r0, lift=d_rca / 2 + 0.3)
    right_ostium = root_c + root_r * (rca_start - root_c) / np.linalg.norm(rca_start - root_c)
    ostial = straight(right_ostium, rca_start, rng.normal(0.0, 1.0, 3))
    phi_rca_end = {"right": phi_crux - 2 * np.pi, "co": phi_crux - 2 * np.pi, "left": rng.uniform(-1.9, -1.4)}[dominance]
    rca_chart = march(heart, (u_r0, phi_r0), -1.6, 260.0, [(u_av, phi_r0 - 0.6), (u_av, float(phi_rca_end))], rng, wiggle=0.04)
    plan.charts["RCA"] = rca_chart
    rca_arc = surface_arc(heart, rca_chart)
    terminal = []
    if dominance == "right":
        terminal = [("PDA", "PDA", float(rng.uniform(0.8, 1.2))), ("PL", "posterolateral", float(rng.uniform(0.7, 1.1)))]
    elif dominance == "co":
        terminal = [("PDA", "PDA", float(rng.uniform(0.7, 1.0)))]
    rca_end = murray_parent_radius(*[t[2] for t in terminal]) if len(terminal) > 1 else (terminal[0][2] if terminal else plan.end_radius())
    n_am = int(rng.integers(1, 3))
    ams = plan.side_branches("RCA", n_am, (0.3, 0.7), (1.2, 1.6), (30.0, 55.0), (0.4, 0.6))
    kept = _branch_radii(ams, rca_arc, d_rca / 2, rca_end, 1.0, floor)
    drops = [d for _, d in kept]
    conus = rng.uniform() < 0.7
    if conus:
        drops.append((rca_arc[min(10, len(rca_arc) - 1)], float(rng.uniform(0.45, 0.7))))
    plan.add("RCA", "RCA", None, rca_chart, d_rca / 2, rca_end, drops, prefix=ostial)
    for k, ((i, start, th, length, _), (_, r_child)) in enumerate(kept, start=1):
        chart = march(heart, start, th, length, [], rng, pull=0.0)
        plan.add(f"AM{k}", "acute_marginal", "RCA", chart, r_child, plan.end_radius(), [])
    if conus:
        chart = march(heart, tuple(rca_chart[min(10, len(rca_chart) - 1)]), 0.9, float(rng.uniform(15.0, 30.0)), [], rng, pull=0.0)
        plan.add("CB", "conus", "RCA", chart, drops[-1][1], plan.end_radius(), [])
    _crux_branches(plan, "RCA", rca_chart[-1], terminal, phi_crux - 2 * np.pi, -1.0)
    info = {"dominance": dominance, "left_ostium": left_ostium, "right_ostium": right_ostium, "ramus": bool(ramus),
            "phi_lad": phi_lad, "phi_crux": phi_crux}
    return plan.vessels, info


def _linear(r0: float, r1: float, s: float, length: float) -> float:
    """The parent's radius at ``s`` before any drop (the taper of :func:`_taper`)."""
    return r1 + (r0 - r1) * (1.0 - (s / max(length, 1e-6)) ** TAPER_POWER)


def _branch_radii(picks: list[tuple], arc: np.ndarray, r0: float, r_end: float, cap: float, floor: float) -> list[tuple]:
    """Keep the side branches whose start radius (ratio x the parent's radius there, at most ``cap``) exceeds
    ``floor`` (so every branch tapers); returns ``(pick, (arc position, radius))`` pairs."""
    kept = []
    for pick in picks:
        i, ratio = pick[0], pick[4]
        r_child = min(ratio * _linear(r0, r_end, arc[i], arc[-1]), cap)
        if r_child > floor:
            kept.append((pick, (float(arc[i]), r_child)))
    return kept


def _crux_branches(plan: _Planner, parent: str, start: np.ndarray, terminal: list, phi_crux: float, side: float) -> None:
    """The PDA (down the posterior interventricular groove) and posterolateral branch at the end of ``parent``."""
    a = plan.heart.epicardium.semi[0]
    for name, segment, r0 in terminal:
        if segment == "PDA":
            targets = [(float(plan.rng.uniform(0.55, 0.85)) * a, phi_crux + plan.rng.uniform(-0.1, 0.1))]
            chart = march(plan.heart, tuple(start), 0.0, 120.0, targets, plan.rng)
        else:
            u0 = float(start[0])
            targets = [(u0 + 0.1 * a, float(start[1]) + side * 0.5), (0.5 * a, float(start[1]) + side * 0.7)]
            chart = march(plan.heart, tuple(start), side * 1.2, float(plan.rng.uniform(25.0, 45.0)), targets, plan.rng)
        plan.add(name, segment, parent, chart, r0, plan.end_radius(), [])


