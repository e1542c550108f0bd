"""Tissue classes of a ``ccta`` phantom and the attenuation (HU) each case draws for them."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from pipeline.phantoms.ccta.config import CCTAConfig

__all__ = ["Tissue", "draw_attenuation", "lookup_tables"]


class Tissue(IntEnum):
    """Class of each voxel in :attr:`CCTAPhantom.tissue` (uint8)."""

    AIR = 0
    LUNG = 1
    FAT = 2
    SOFT = 3
    BONE = 4
    MARROW = 5
    MYOCARDIUM = 6
    LEFT_BLOOD = 7
    RIGHT_BLOOD = 8
    AORTA = 9
    EPICARDIAL_FAT = 10
    LIVER = 11
    LUNG_VESSEL = 12
    VEIN = 13
    PLAQUE = 14
    CALCIUM = 15
    LUMEN = 16


#: amplitude (HU) of the slow texture added to each class
_TEXTURE_HU = {
    Tissue.LUNG: 25.0, Tissue.FAT: 8.0, Tissue.SOFT: 6.0, Tissue.BONE: 60.0, Tissue.MARROW: 30.0,
    Tissue.MYOCARDIUM: 5.0, Tissue.LEFT_BLOOD: 8.0, Tissue.RIGHT_BLOOD: 25.0, Tissue.AORTA: 6.0,
    Tissue.EPICARDIAL_FAT: 8.0, Tissue.LIVER: 6.0, Tissue.LUNG_VESSEL: 20.0,
}


def draw_attenuation(cfg: CCTAConfig, rng: np.random.Generator) -> dict[Tissue, float]:
    """HU of every class for one case, inside the ranges of ``cfg`` (contrast timing couples blood pools and veins)."""
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    lumen = u(cfg.lumen_hu)
    bone = u(cfg.bone_hu)
    right = u(cfg.right_heart_hu)
    return {
        Tissue.AIR: -1000.0,
        Tissue.LUNG: u(cfg.lung_hu),
        Tissue.FAT: u(cfg.fat_hu),
        Tissue.SOFT: u(cfg.soft_tissue_hu),
        Tissue.BONE: bone,
        Tissue.MARROW: bone * float(rng.uniform(0.35, 0.45)),
        Tissue.MYOCARDIUM: u(cfg.myocardium_hu),
        Tissue.LEFT_BLOOD: lumen * float(rng.uniform(0.95, 1.05)),
        Tissue.RIGHT_BLOOD: right,
        Tissue.AORTA: lumen,
        Tissue.EPICARDIAL_FAT: u(cfg.epicardial_fat_hu),
        Tissue.LIVER: float(rng.uniform(60.0, 100.0)),
        Tissue.LUNG_VESSEL: 0.5 * right + 0.5 * float(rng.uniform(-100.0, 50.0)),
        Tissue.VEIN: lumen * u(cfg.vein_ratio),
        Tissue.PLAQUE: u(cfg.plaque_hu),
        Tissue.CALCIUM: u(cfg.calcium_hu),
        Tissue.LUMEN: lumen,
    }


def lookup_tables(hu: dict[Tissue, float]) -> tuple[np.ndarray, np.ndarray]:
    """(HU, texture amplitude) per class value, for ``np.take``."""
    n = max(Tissue) + 1
    mean, amp = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for t, v in hu.items():
        mean[t] = v
        amp[t] = _TEXTURE_HU.get(t, 0.0)
    return mean, amp
