"""Ready-made loss configurations: the original API's five presets (same weights) and three for thin vessels."""

from __future__ import annotations

import copy
from typing import Any

from pipeline.errors import SettingsError

__all__ = ["LOSS_PRESETS", "get_preset_loss_config", "list_loss_presets"]

_FOCAL = {"gamma": 2.0, "alpha": 0.25}

#: preset name -> original-API config for :func:`pipeline.losses.loss_factory.create_loss_function`
LOSS_PRESETS: dict[str, dict[str, Any]] = {
    "default_segmentation": {"type": "combined", "dice_weight": 0.7, "bce_weight": 0.3},
    "focal_segmentation": {"type": "combined", "dice_weight": 0.6, "bce_weight": 0.4, "bce_config": _FOCAL},
    "balanced_segmentation": {"type": "combined", "dice_weight": 0.5, "bce_weight": 0.5},
    "dice_focused": {
        "type": "combined",
        "dice_weight": 0.8,
        "bce_weight": 0.2,
        "dice_config": {"smooth": 1e-6, "squared_pred": True},
    },
    "jaccard_based": {"type": "combined", "dice_weight": 0.7, "bce_weight": 0.3, "dice_config": {"jaccard": True}},
    # clDice (Shit et al. 2021) added to Dice + BCE: alpha = 0.3 of the overlap terms, 3 erosions (radius <= 3 voxels)
    "vessel_cldice": {
        "type": "combined",
        "dice_weight": 0.5,
        "bce_weight": 0.2,
        "cldice_weight": 0.3,
        "cldice_config": {"iter_": 3},
    },
    # Skeleton Recall (Kirchhoff et al. 2024): Dice, BCE and recall on the tubed skeleton weighted 1 : 1 : 1 as in the
    # paper; needs the skeleton channels of transforms.skeleton.TubedSkeletond
    "vessel_skeleton_recall": {
        "type": "combined",
        "dice_weight": 0.5,
        "bce_weight": 0.5,
        "skeleton_recall_weight": 0.5,
    },
    # both topology terms; focal BCE for the strong vessel/background imbalance of coronary CT
    "vessel_topology": {
        "type": "combined",
        "dice_weight": 0.4,
        "bce_weight": 0.2,
        "cldice_weight": 0.2,
        "skeleton_recall_weight": 0.2,
        "bce_config": _FOCAL,
    },
}


def list_loss_presets() -> list[str]:
    """Names of the presets."""
    return list(LOSS_PRESETS)


def get_preset_loss_config(name: str) -> dict[str, Any]:
    """A copy of the preset ``name``'s config (safe to modify).

    Raises:
        ValueError: unknown preset, with the valid names.
    """
    if name not in LOSS_PRESETS:
        raise SettingsError(f"unknown loss preset {name!r}; valid presets: {list(LOSS_PRESETS)}.")
    return copy.deepcopy(LOSS_PRESETS[name])
