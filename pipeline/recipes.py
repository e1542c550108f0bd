"""The named training recipes that ``vessel-pipeline compare`` and the learning benchmark run through the bundle: each
is a set of overrides of the bundle's ``train.json`` keys. Light to import (the command line's ``--help`` lists them)."""

from __future__ import annotations

from typing import Any, Sequence

from pipeline.errors import SettingsError

__all__ = ["PRE_PLAN", "RECIPES", "check_recipes"]

#: the settings the bundle had before dataset plans and the learning benchmark (tuned on the project's own phantoms)
PRE_PLAN: dict[str, Any] = {
    "loss_preset": "vessel_skeleton_recall",
    "pixdim": [0.4, 0.4, 0.6],
    "hu_window": [-150.0, 650.0],
    "patch_size": [64, 64, 32],
    "batch_size": 2,
    "num_samples": 4,
    "learning_rate": 0.01,
    "epochs": 40,
}

#: recipe -> overrides of the bundle's train.json keys
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "pre_plan": PRE_PLAN,
    "cldice": {
        "loss_preset": "vessel_cldice",
        "loss_schedule_params": {"start_weights": {"cldice": 0.0}, "warmup_epochs": 15, "epochs": 10},
    },
    # the default before the learning benchmark: Skeleton Recall, faded in like clDice
    "skeleton_recall": {
        "loss_preset": "vessel_skeleton_recall",
        "loss_schedule_params": {"start_weights": {"skeleton_recall": 0.0}, "warmup_epochs": 15, "epochs": 10},
    },
}


def check_recipes(recipes: Sequence[str], valid: Sequence[str] = tuple(RECIPES)) -> list[str]:
    """The recipe names, checked: known, no repeats, at least two.

    Raises:
        SettingsError: naming the bad names and listing the valid ones.
    """
    unknown = [r for r in recipes if r not in valid]
    if unknown:
        raise SettingsError(f"unknown recipes {unknown}; valid recipes: {list(valid)}.")
    if len(set(recipes)) != len(recipes) or len(recipes) < 2:
        raise SettingsError(f"give at least two different recipes to compare, got {list(recipes)}.")
    return list(recipes)
