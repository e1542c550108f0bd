"""Tubed skeleton transform and the Skeleton Recall loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, RandFlipd, RandSpatialCropd
from scipy import ndimage
from skimage.morphology import skeletonize

from pipeline.losses import SkeletonRecallLoss
from pipeline.losses.testing import distinct_logits, value_and_grad, vessel_labels
from transforms.skeleton import TubedSkeleton, TubedSkeletond


@pytest.fixture(scope="module")
def label() -> MetaTensor:
    return MetaTensor(vessel_labels((24, 24, 24), batch=1)[0], affine=torch.eye(4))


@pytest.mark.parametrize("dilation", [0, 1, 2])
def test_tubed_skeleton_is_a_dilated_skeleton_inside_the_label(label, dilation):
    skeleton = TubedSkeleton(dilation)(label)
    assert isinstance(skeleton, MetaTensor) and skeleton.dtype == label.dtype and skeleton.shape == label.shape
    assert set(skeleton.unique().tolist()) <= {0.0, 1.0}
    lab, skel = label[0].numpy().astype(bool), skeleton[0].numpy().astype(bool)
    bare = skeletonize(lab)
    cross = ndimage.generate_binary_structure(3, 1)
    expected = ndimage.binary_dilation(bare, cross, dilation) & lab if dilation else bare
    assert np.array_equal(skel, expected)
    assert not (skel & ~lab).any()
    assert 0 < skel.sum() < lab.sum()
    assert ndimage.label(skel, np.ones((3, 3, 3)))[1] == ndimage.label(lab, np.ones((3, 3, 3)))[1]


def test_tubed_skeleton_grows_with_dilation_and_handles_empty_channels(label):
    sizes = [int(TubedSkeleton(d)(label).sum()) for d in (0, 1, 2)]
    assert sizes[0] < sizes[1] < sizes[2]
    two = torch.cat([label, torch.zeros_like(label)]).numpy()
    out = TubedSkeleton(1)(two)
    assert isinstance(out, np.ndarray) and out[1].sum() == 0 and out[0].sum() == sizes[1]
    flat = TubedSkeleton(1)(label[..., 10])
    assert flat.shape == (1, 24, 24) and flat.sum() > 0


def test_dictionary_transform_appends_channels_that_follow_spatial_transforms(label):
    data = TubedSkeletond(keys="label", dilation=1)({"label": label, "image": label})
    assert data["label"].shape == (2, 24, 24, 24)
    assert torch.equal(data["label"][:1], label)
    assert torch.equal(data["label"][1:], TubedSkeleton(1)(label))
    chain = Compose(
        [
            TubedSkeletond(keys="label"),
            RandFlipd(keys="label", prob=1.0, spatial_axis=0),
            RandSpatialCropd(keys="label", roi_size=(16, 16, 16)),
        ]
    )
    chain.set_random_state(0)
    out = chain({"label": label})["label"]
    assert out.shape == (2, 16, 16, 16)
    assert not (out[1].bool() & ~out[0].bool()).any()
    separate = TubedSkeletond(keys="label", skeleton_key="skeleton")({"label": label})
    assert separate["label"].shape == (1, 24, 24, 24) and torch.equal(separate["skeleton"], TubedSkeleton(2)(label))


def test_tubed_skeleton_bad_input(label):
    message = r"label must be binary \(values 0 and 1\) for the tubed skeleton, found values \[0. 1. 2.\]"
    with pytest.raises(ValueError, match=message):
        TubedSkeleton()(torch.where(label.bool(), label, label + 2 * (label.roll(1, 1) > 0)))
    with pytest.raises(ValueError, match="dilation must be a non-negative integer, got -1"):
        TubedSkeleton(-1)
    with pytest.raises(ValueError, match=r"label must be C, H, W or C, H, W, D, got shape \(24, 24\)"):
        TubedSkeleton()(label[0, 0])
    with pytest.raises(ValueError, match="skeleton_key needs exactly one label key"):
        TubedSkeletond(keys=["a", "b"], skeleton_key="s")


def test_skeleton_recall_formula_and_gradient():
    logits = distinct_logits((2, 1, 6, 7, 8))
    skeleton = (torch.rand(logits.shape, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    probs = torch.sigmoid(logits)
    recall = ((probs * skeleton).sum((2, 3, 4)) + 1.0) / (skeleton.sum((2, 3, 4)) + 1.0)
    value, grad = value_and_grad(SkeletonRecallLoss(), logits, skeleton)
    assert torch.allclose(value, 1 - recall.mean())
    expected_grad = -skeleton * probs * (1 - probs) / (skeleton.sum((2, 3, 4), keepdim=True) + 1.0) / 2
    assert torch.allclose(grad, expected_grad, atol=1e-7)
    batch = SkeletonRecallLoss(batch=True, smooth=0.5)(logits, skeleton)
    assert torch.allclose(batch, 1 - ((probs * skeleton).sum() + 0.5) / (skeleton.sum() + 0.5))
    assert SkeletonRecallLoss(reduction="none")(logits, skeleton).shape == (2, 1)


def test_skeleton_recall_ignores_false_positives_and_empty_skeletons():
    skeleton = torch.zeros(1, 1, 4, 4, 4)
    skeleton[..., 1, 1, :] = 1
    covered = torch.full(skeleton.shape, 20.0)
    assert float(SkeletonRecallLoss()(covered, skeleton)) < 1e-6
    assert float(SkeletonRecallLoss()(torch.full(skeleton.shape, -20.0), torch.zeros_like(skeleton))) == 0.0
    assert float(SkeletonRecallLoss()(-covered, skeleton)) > 0.75
    with pytest.raises(ValueError, match="skeleton must be binary"):
        SkeletonRecallLoss()(covered, skeleton * 0.5)
    with pytest.raises(ValueError, match="smooth must be > 0"):
        SkeletonRecallLoss(smooth=0)
