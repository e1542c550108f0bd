"""The fast soft skeleton and clDice against MONAI 1.6.1's ``soft_skel`` and ``SoftclDiceLoss``."""

from __future__ import annotations

import pytest
import torch
from monai.losses import SoftclDiceLoss
from monai.losses.cldice import soft_dilate as monai_dilate
from monai.losses.cldice import soft_erode as monai_erode
from monai.losses.cldice import soft_skel

from pipeline.losses import ClDiceLoss, soft_dilate, soft_erode, soft_skeleton
from pipeline.losses.testing import (
    assert_same_value_and_grad,
    distinct_logits,
    value_and_grad,
    vessel_labels,
    vessel_logits,
)

SHAPES = [(2, 1, 11, 12, 13), (1, 2, 9, 7, 8), (2, 1, 15, 17), (1, 1, 1, 6, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_erode_and_dilate_equal_monai_pools(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(soft_erode(x), monai_erode(x))
    assert torch.equal(soft_dilate(x), monai_dilate(x))
    keys = (x * 1000).long()
    assert torch.equal(soft_erode(keys), monai_erode(keys.double()).long())
    assert torch.equal(soft_dilate(keys), monai_dilate(keys.double()).long())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("iter_", [0, 1, 3, 5])
def test_soft_skeleton_values_and_gradients_equal_monai(shape, iter_):
    prob = torch.sigmoid(distinct_logits(shape, seed=iter_))
    weights = torch.randn(shape, generator=torch.Generator().manual_seed(2))

    def weighted(skeleton_fn):
        x = prob.clone().requires_grad_(True)
        skeleton = skeleton_fn(x, iter_)
        (grad,) = torch.autograd.grad((skeleton * weights).sum(), x)
        return skeleton.detach(), grad

    ours, ours_grad = weighted(soft_skeleton)
    ref, ref_grad = weighted(soft_skel)
    assert torch.equal(ours, ref)
    assert torch.allclose(ours_grad, ref_grad, atol=1e-5, rtol=0)
    assert ours_grad.abs().max() > 0


@pytest.mark.parametrize("kind", ["binary", "soft"])
def test_skeleton_without_gradient_equals_monai(kind):
    labels = vessel_labels((16, 16, 16))
    noise = torch.rand(labels.shape, generator=torch.Generator().manual_seed(0))
    image = labels if kind == "binary" else labels * noise
    assert torch.equal(soft_skeleton(image, 3), soft_skel(image, 3))
    assert soft_skeleton(image, 3).dtype == image.dtype


def _inputs(kind):
    if kind == "vessel":
        labels = vessel_labels((16, 16, 16))
        return vessel_logits(labels), labels
    shape = (2, 1, 12, 13, 14)
    labels = (torch.rand(shape, generator=torch.Generator().manual_seed(5)) > 0.6).float()
    return distinct_logits(shape, seed=5), labels


@pytest.mark.parametrize("kind", ["random", "vessel"])
@pytest.mark.parametrize(
    "options",
    [{}, {"iter_": 0}, {"iter_": 5, "smooth_nr": 0.5, "smooth_dr": 2.0}, {"reduction": "none"}, {"reduction": "sum"}],
)
def test_cldice_equals_monai(kind, options):
    logits, labels = _inputs(kind)
    ours = ClDiceLoss(**options)
    reference = SoftclDiceLoss(sigmoid=True, **options)
    value, grad = value_and_grad(ours, logits, labels)
    ref_value, ref_grad = value_and_grad(reference, logits, labels)
    assert torch.allclose(value, ref_value, atol=1e-5, rtol=0)
    assert torch.allclose(grad, ref_grad, atol=1e-5, rtol=0)
    assert torch.allclose(grad, ref_grad, atol=1e-6, rtol=1e-3)
    assert grad.abs().max() > 0
    assert value_and_grad(ours.reference(), logits, labels)[0].allclose(ref_value)


def test_cldice_multichannel_and_2d_equal_monai():
    logits = distinct_logits((2, 3, 20, 21), seed=9)
    labels = (torch.rand(logits.shape, generator=torch.Generator().manual_seed(9)) > 0.5).float()
    assert_same_value_and_grad(ClDiceLoss(), SoftclDiceLoss(sigmoid=True), logits, labels, atol=1e-5)


def test_cldice_is_low_for_a_good_prediction_and_rewards_connectivity():
    labels = vessel_labels((16, 16, 16), batch=1)
    perfect = ClDiceLoss()((labels * 2 - 1) * 10, labels)
    broken = labels.clone()
    broken[..., 7:9] = 0
    cut = ClDiceLoss()((broken * 2 - 1) * 10, labels)
    assert float(perfect) < 0.02 < float(cut)


def test_cldice_bad_input():
    with pytest.raises(ValueError, match="iter_ must be a non-negative integer, got -1"):
        ClDiceLoss(iter_=-1)
    with pytest.raises(ValueError, match="iter_ must be a non-negative integer, got 2.5"):
        ClDiceLoss(iter_=2.5)
    with pytest.raises(ValueError, match="smooth must be > 0, got 0"):
        ClDiceLoss(smooth=0)
    with pytest.raises(ValueError, match="iter_ must be a non-negative integer, got -2"):
        soft_skeleton(torch.rand(1, 1, 4, 4, 4), -2)
    logits, labels = _inputs("random")
    with pytest.raises(ValueError, match="target must be binary"):
        ClDiceLoss()(logits, labels * 0.3)
