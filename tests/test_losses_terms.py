"""Dice, BCE/focal and Tversky terms against their MONAI references: values and gradients."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceLoss, FocalLoss, TverskyLoss

from pipeline.losses import EnhancedBCELoss, EnhancedDiceLoss, EnhancedTverskyLoss
from pipeline.losses.testing import (
    assert_same_value_and_grad,
    distinct_logits,
    value_and_grad,
    vessel_labels,
    vessel_logits,
)

SHAPE = (2, 1, 12, 13, 14)


def _random_pair(shape=SHAPE, seed=0):
    target = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.7).float()
    return distinct_logits(shape, seed), target


def _vessel_pair():
    labels = vessel_labels((16, 16, 16))
    return vessel_logits(labels), labels


INPUTS = {"random": _random_pair, "vessel": _vessel_pair}


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"jaccard": True},
        {"squared_pred": True},
        {"batch": True},
        {"smooth": 1e-6, "jaccard": True, "squared_pred": True},
        {"reduction": "none"},
        {"reduction": "sum", "smooth": 1.0},
    ],
)
def test_dice_matches_monai(inputs, options):
    logits, target = INPUTS[inputs]()
    options = dict(options)
    ours = EnhancedDiceLoss(**options)
    smooth = options.pop("smooth", 1e-5)
    reference = DiceLoss(sigmoid=True, smooth_nr=smooth, smooth_dr=smooth, **options)
    assert_same_value_and_grad(ours, reference, logits, target)
    assert_same_value_and_grad(ours, ours.reference(), logits, target)


def test_dice_without_background_channel():
    logits, target = _random_pair((2, 3, 8, 9, 10))
    ours = EnhancedDiceLoss(include_background=False)
    assert_same_value_and_grad(ours, DiceLoss(sigmoid=True, include_background=False), logits, target)


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize(
    "options",
    [{}, {"gamma": 2.0, "alpha": 0.25}, {"gamma": 2.0}, {"gamma": 1.5, "alpha": 0.8}, {"reduction": "sum"}],
)
def test_focal_matches_monai(inputs, options):
    logits, target = INPUTS[inputs]()
    options = dict(options)
    ours = EnhancedBCELoss(**options)
    reference = FocalLoss(gamma=options.pop("gamma", 0.0), **options)
    assert_same_value_and_grad(ours, reference, logits, target)


def test_bce_is_plain_binary_cross_entropy_also_on_soft_targets():
    logits, _ = _random_pair()
    soft = torch.rand(SHAPE, generator=torch.Generator().manual_seed(3))
    assert_same_value_and_grad(EnhancedBCELoss(), torch.nn.BCEWithLogitsLoss(), logits, soft)
    assert_same_value_and_grad(EnhancedBCELoss(gamma=2.0, alpha=0.25), FocalLoss(gamma=2.0, alpha=0.25), logits, soft)
    value, _ = value_and_grad(EnhancedBCELoss(reduction="none"), logits, soft)
    assert value.shape == SHAPE


def test_focal_gamma_down_weights_easy_voxels():
    logits = torch.tensor([[[6.0, -6.0, 0.5]]])
    target = torch.tensor([[[1.0, 0.0, 0.0]]])
    bce = EnhancedBCELoss(reduction="none")(logits, target)
    focal = EnhancedBCELoss(gamma=2.0, reduction="none")(logits, target)
    ratio = focal / bce
    assert ratio[0, 0, 0] < 1e-4 and ratio[0, 0, 1] < 1e-4 and ratio[0, 0, 2] > 0.3


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize(
    "options", [{}, {"alpha": 0.5, "beta": 0.5, "batch": True}, {"alpha": 0.1, "beta": 0.9, "smooth": 1.0}]
)
def test_tversky_matches_monai(inputs, options):
    logits, target = INPUTS[inputs]()
    options = dict(options)
    ours = EnhancedTverskyLoss(**options)
    smooth = options.pop("smooth", 1e-5)
    reference = TverskyLoss(sigmoid=True, **{"alpha": 0.3, "beta": 0.7, **options}, smooth_nr=smooth, smooth_dr=smooth)
    assert_same_value_and_grad(ours, reference, logits, target)


def test_terms_accept_metatensors_and_half_precision_logits():
    from monai.data import MetaTensor

    logits, target = _random_pair()
    expected = EnhancedDiceLoss()(logits, target)
    assert torch.allclose(EnhancedDiceLoss()(MetaTensor(logits), MetaTensor(target)), expected)
    assert type(EnhancedDiceLoss()(MetaTensor(logits), MetaTensor(target))) is torch.Tensor
    assert abs(float(EnhancedBCELoss()(logits.half(), target)) - float(EnhancedBCELoss()(logits, target))) < 1e-2


@pytest.mark.parametrize("loss", [EnhancedDiceLoss(), EnhancedBCELoss(), EnhancedTverskyLoss()], ids=type)
def test_shape_mismatch_is_a_value_error(loss):
    logits, target = _random_pair()
    message = r"prediction shape \(2, 1, 12, 13, 14\) and target shape \(2, 1, 12, 13, 13\)"
    with pytest.raises(ValueError, match=message):
        loss(logits, target[..., :13])


@pytest.mark.parametrize("loss", [EnhancedDiceLoss(), EnhancedTverskyLoss()], ids=type)
def test_overlap_terms_need_binary_targets(loss):
    logits, target = _random_pair()
    with pytest.raises(ValueError, match="target must be binary .* found the value 0.5"):
        loss(logits, target * 0.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: EnhancedDiceLoss(smooth=-1), "smooth must be >= 0, got -1"),
        (lambda: EnhancedDiceLoss(reduction="avg"), r"reduction must be one of \['none', 'mean', 'sum'\], got 'avg'"),
        (lambda: EnhancedBCELoss(gamma=-0.5), "gamma must be >= 0, got -0.5"),
        (lambda: EnhancedBCELoss(alpha=1.5), r"alpha must be None or in \[0, 1\], got 1.5"),
        (lambda: EnhancedTverskyLoss(beta=float("nan")), "beta must be >= 0, got nan"),
    ],
)
def test_bad_options(make, message):
    with pytest.raises(ValueError, match=message):
        make()
