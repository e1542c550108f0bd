"""Cardiac veins (unlabelled confounders) beside the coronary arteries."""

from __future__ import annotations

import numpy as np

from pipeline.phantoms.ccta.heart import Heart
from pipeline.phantoms.ccta.vessels import Vessel, lift, march

__all__ = ["grow_veins"]


def grow_veins(heart: Heart, phi_lad: float, phi_crux: float, rng: np.random.Generator) -> list[Vessel]:
    """Cardiac veins (unlabelled): the great cardiac vein beside the LAD and LCX into the coronary sinus at the crux,
    the middle cardiac vein beside the PDA, and sometimes a small cardiac vein beside the RCA.

    Args:
        heart: the heart.
        phi_lad: chart angle of the anterior interventricular groove (where the LAD runs).
        phi_crux: chart angle of the crux and the posterior interventricular groove.
        rng: random source.

    Returns:
        the veins, radius growing towards the coronary sinus.
    """
    a = heart.epicardium.semi[0]
    u_av = heart.u_av
    veins = []

    def vein(name: str, start: tuple[float, float], targets: list, r0: float, r1: float) -> None:
        chart = march(heart, start, None, 400.0, targets, rng, wiggle=0.04, pull=0.2)
        pts, radii = lift(heart, chart, lambda arc: r0 + (r1 - r0) * arc / max(arc[-1], 1e-6))
        veins.append(Vessel(name, 0, "vein", None, pts, radii))

    _, sp = heart.chart_scale(0.5 * a, phi_lad)
    side = float(rng.uniform(6.0, 9.0)) / sp
    groove = u_av - float(rng.uniform(5.0, 7.0)) / heart.chart_scale(u_av, phi_lad)[0]
    vein("GCV", (0.8 * a, phi_lad + side), [(0.0, phi_lad + side), (groove, phi_lad + 0.9), (groove, phi_crux)],
         float(rng.uniform(0.9, 1.3)), float(rng.uniform(3.5, 5.0)))
    vein("MCV", (0.7 * a, phi_crux - side), [(0.1 * a, phi_crux - side), (groove, phi_crux - 0.1)],
         float(rng.uniform(0.8, 1.1)), float(rng.uniform(2.0, 3.0)))
    if rng.uniform() < 0.5:
        vein("SCV", (groove, -0.6), [(groove, phi_crux - 2 * np.pi + 0.2)], float(rng.uniform(0.6, 0.8)), float(rng.uniform(1.0, 1.5)))
    return veins
