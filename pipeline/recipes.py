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


def _faded_in(preset: str, term: str) -> dict[str, Any]:
    """The overrides of a topology preset whose ``term`` is off for 15 epochs and faded in by a cosine over the next 10
    (explicit epochs: a preset's own schedule is sized from ``epochs``, which a time budget cuts short)."""
    return {
        "loss_preset": preset,
        "loss_schedule_params": {"start_weights": {term: 0.0}, "warmup_epochs": 15, "epochs": 10},
    }


#: recipe -> overrides of the bundle's train.json keys
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "pre_plan": PRE_PLAN,
    "cldice": _faded_in("vessel_cldice", "cldice"),
    # the default before the learning benchmark: Skeleton Recall, faded in like clDice
    "skeleton_recall": _faded_in("vessel_skeleton_recall", "skeleton_recall"),
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
