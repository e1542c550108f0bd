"""LossManager / create_loss_function: the seed's config format, presets, bundle ``_target_``, bad configs."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

from pipeline.losses import (
    LOSS_PRESETS,
    ClDiceLoss,
    CombinedLoss,
    EnhancedBCELoss,
    EnhancedDiceLoss,
    create_loss_function,
    get_preset_loss_config,
    list_loss_presets,
)
from pipeline.schedules import LossManager

SEED_CONFIG = {
    "type": "combined",
    "dice_weight": 0.7,
    "bce_weight": 0.3,
    "dice_config": {"smooth": 1e-6, "jaccard": True, "squared_pred": True},
    "bce_config": {"gamma": 2.0, "alpha": 0.25},
}

SEED_PRESET_WEIGHTS = {
    "default_segmentation": {"dice": 0.7, "bce": 0.3},
    "focal_segmentation": {"dice": 0.6, "bce": 0.4},
    "balanced_segmentation": {"dice": 0.5, "bce": 0.5},
    "dice_focused": {"dice": 0.8, "bce": 0.2},
    "jaccard_based": {"dice": 0.7, "bce": 0.3},
}


def test_seed_config_builds_the_described_loss():
    loss = LossManager.create_loss_function(SEED_CONFIG)
    assert isinstance(loss, CombinedLoss) and dict(loss.weights) == {"dice": 0.7, "bce": 0.3}
    dice, bce = loss.terms["dice"], loss.terms["bce"]
    assert isinstance(dice, EnhancedDiceLoss) and isinstance(bce, EnhancedBCELoss)
    assert dice.dice.jaccard and dice.dice.squared_pred and dice.dice.smooth_nr == dice.dice.smooth_dr == 1e-6
    assert (bce.gamma, bce.alpha) == (2.0, 0.25)
    assert SEED_CONFIG["dice_config"] == {"smooth": 1e-6, "jaccard": True, "squared_pred": True}


@pytest.mark.parametrize("name, weights", SEED_PRESET_WEIGHTS.items())
def test_seed_presets_have_the_seed_weights(name, weights):
    loss = LossManager.create_loss_function(LossManager.get_preset_loss_config(name))
    assert dict(loss.weights) == weights
    assert dict(create_loss_function(name).weights) == weights


def test_preset_details():
    assert create_loss_function("jaccard_based").terms["dice"].dice.jaccard
    assert not create_loss_function("default_segmentation").terms["dice"].dice.jaccard
    focal = create_loss_function("focal_segmentation").terms["bce"]
    assert (focal.gamma, focal.alpha) == (2.0, 0.25)
    assert create_loss_function("default_segmentation").terms["bce"].gamma == 0.0
    assert create_loss_function("dice_focused").terms["dice"].dice.squared_pred
    assert isinstance(create_loss_function("vessel_cldice").terms["cldice"], ClDiceLoss)
    assert create_loss_function("vessel_skeleton_recall").has_skeleton_term
    assert set(create_loss_function("vessel_topology").weights) == {"dice", "bce", "cldice", "skeleton_recall"}
    assert list_loss_presets() == list(LOSS_PRESETS) and len(LOSS_PRESETS) == 8


def test_preset_configs_are_copies():
    config = get_preset_loss_config("focal_segmentation")
    config["bce_config"]["gamma"] = 5.0
    config["dice_weight"] = 0.1
    assert get_preset_loss_config("focal_segmentation")["bce_config"]["gamma"] == 2.0
    assert dict(create_loss_function("focal_segmentation").weights) == {"dice": 0.6, "bce": 0.4}


def test_single_term_types_and_scheduler_key():
    loss = create_loss_function({"type": "cldice", "iter_": 2})
    assert list(loss.weights) == ["cldice"] and loss.terms["cldice"].iter_ == 2
    assert create_loss_function({"type": "focal"}).terms["focal"].gamma == 2.0
    with_scheduler = create_loss_function(
        {"type": "combined", "dice_weight": 0.8, "bce_weight": 0.2, "scheduler": {"type": "adaptive"}}
    )
    assert dict(with_scheduler.weights) == {"dice": 0.8, "bce": 0.2}
    assert dict(create_loss_function({"dice_weight": 1.0}).weights) == {"dice": 1.0}


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {"type": "hausdorff"},
            r"unknown loss type 'hausdorff'; valid types: \['combined', 'dice', 'bce', 'focal', 'tversky', 'cldice', "
            r"'skeleton_recall'\]",
        ),
        ("fancy_preset", r"unknown loss preset 'fancy_preset'; valid presets: \['default_segmentation', 'focal_"),
        (
            {"type": "combined", "dice_weight": 0.7, "bce_wieght": 0.3},
            r"unknown key\(s\) \['bce_wieght'\] in a 'combined' loss config; "
            r"valid keys: \['type', 'scheduler', 'dice_weight / dice_config'",
        ),
        ({"dice_weight": -0.7, "bce_weight": 0.3}, "weight of 'dice' must be finite and >= 0, got -0.7"),
        ({"type": "combined", "dice_weight": 0.0, "bce_weight": 0.0}, "at least one loss weight must be > 0"),
        ({"type": "combined"}, "a 'combined' loss config needs at least one <term>_weight"),
        ({"dice_weight": 1.0, "bce_config": {"gamma": 2.0}}, "bce_config is given without bce_weight"),
        (
            {"type": "combined", "dice_weight": 1.0, "dice_config": {"jacard": True}},
            r"unknown option\(s\) \['jacard'\] for the 'dice' loss term; valid options: \['smooth', 'jaccard'",
        ),
        ({"dice_weight": 1.0, "dice_config": [1]}, r"dice_config must be a dict of options, got \[1\]"),
        ({"type": "dice", "weight": 1.0}, r"unknown option\(s\) \['weight'\] for the 'dice' loss term"),
        ({"type": "focal", "gamma": -1}, "gamma must be >= 0, got -1"),
        (42, "a loss config must be a dict or a preset name"),
    ],
)
def test_bad_configs_name_the_problem_and_the_choices(config, message):
    with pytest.raises(ValueError, match=message):
        create_loss_function(config)


def test_losses_build_from_a_monai_bundle_config():
    parser = ConfigParser(
        {
            "preset": {"_target_": "pipeline.losses.create_loss_function", "config": "vessel_cldice"},
            "seed": {"_target_": "pipeline.schedules.LossManager.create_loss_function", "config": SEED_CONFIG},
            "explicit": {
                "_target_": "pipeline.losses.CombinedLoss",
                "terms": {
                    "dice": {"_target_": "pipeline.losses.EnhancedDiceLoss", "jaccard": True},
                    "cldice": {"iter_": 2},
                },
                "weights": {"dice": 0.6, "cldice": 0.4},
            },
            "term": {"_target_": "pipeline.losses.ClDiceLoss", "iter_": 4},
        }
    )
    parser.parse()
    preset, seed, explicit, term = (parser.get_parsed_content(k) for k in ("preset", "seed", "explicit", "term"))
    assert dict(preset.weights) == {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    assert dict(seed.weights) == {"dice": 0.7, "bce": 0.3} and seed.terms["dice"].dice.jaccard
    assert dict(explicit.weights) == {"dice": 0.6, "cldice": 0.4} and explicit.terms["cldice"].iter_ == 2
    assert isinstance(term, ClDiceLoss) and term.iter_ == 4
    x, y = torch.zeros(1, 1, 8, 8, 8), torch.ones(1, 1, 8, 8, 8)
    assert all(torch.isfinite(loss(x, y)) for loss in (preset, seed, explicit, term))
