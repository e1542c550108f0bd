"""CombinedLoss: weighted sum of MONAI references, components, weights API, skeleton channels, state, trainer."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.engines import SupervisedTrainer
from monai.losses import DiceFocalLoss, DiceLoss, FocalLoss, SoftclDiceLoss

from pipeline.losses import (
    ClDiceLoss,
    CombinedLoss,
    EnhancedBCELoss,
    EnhancedDiceLoss,
    SkeletonRecallLoss,
    create_loss_function,
)
from pipeline.losses.testing import assert_same_value_and_grad, value_and_grad, vessel_labels, vessel_logits
from transforms.skeleton import TubedSkeleton


@pytest.fixture(scope="module")
def batch():
    labels = vessel_labels((16, 16, 16))
    skeleton = torch.stack([TubedSkeleton(1)(label) for label in labels])
    return vessel_logits(labels), labels, skeleton


def test_weighted_sum_equals_monai_references(batch):
    logits, labels, _ = batch
    loss = CombinedLoss(
        {"dice": {"jaccard": True}, "focal": {"alpha": 0.25}, "cldice": {}}, {"dice": 0.5, "focal": 0.2, "cldice": 0.3}
    )

    def reference(x, y):
        dice = DiceLoss(sigmoid=True, jaccard=True)(x, y)
        return 0.5 * dice + 0.2 * FocalLoss(gamma=2.0, alpha=0.25)(x, y) + 0.3 * SoftclDiceLoss(sigmoid=True)(x, y)

    assert_same_value_and_grad(loss, reference, logits, labels)


def test_dice_focal_equals_monai_dice_focal(batch):
    logits, labels, _ = batch
    loss = create_loss_function("focal_segmentation")
    reference = DiceFocalLoss(sigmoid=True, gamma=2.0, alpha=0.25, lambda_dice=0.6, lambda_focal=0.4)
    assert_same_value_and_grad(loss, reference, logits, labels)


def test_components_of_the_last_forward_and_on_demand(batch):
    logits, labels, skeleton = batch
    loss = create_loss_function("vessel_topology")
    assert loss.last_components == {}
    total = loss(logits, torch.cat([labels, skeleton], 1))
    last = loss.last_components
    assert list(last) == ["dice_loss", "bce_loss", "cldice_loss", "skeleton_recall_loss", "total_loss"]
    assert all(isinstance(v, float) for v in last.values())
    assert last["total_loss"] == pytest.approx(float(total))
    assert last["dice_loss"] == pytest.approx(float(EnhancedDiceLoss()(logits, labels)))
    assert last["cldice_loss"] == pytest.approx(float(ClDiceLoss()(logits, labels)))
    assert last["skeleton_recall_loss"] == pytest.approx(float(SkeletonRecallLoss()(logits, skeleton)))
    assert last["bce_loss"] == pytest.approx(float(EnhancedBCELoss(gamma=2.0, alpha=0.25)(logits, labels)))
    weighted = sum(loss.weights[k[: -len("_loss")]] * v for k, v in last.items() if k != "total_loss")
    assert weighted == pytest.approx(last["total_loss"])
    assert loss.get_loss_components(logits, labels, skeleton=skeleton) == pytest.approx(last)


def test_zero_weight_terms_are_skipped_in_forward_but_reported_on_demand(batch):
    logits, labels, _ = batch
    loss = create_loss_function("vessel_cldice")
    loss.set_weights(cldice=0.0)
    value = loss(logits, labels)
    assert "cldice_loss" not in loss.last_components
    last = loss.last_components
    assert float(value) == pytest.approx(0.5 * last["dice_loss"] + 0.2 * last["bce_loss"])
    components = loss.get_loss_components(logits, labels)
    assert components["cldice_loss"] == pytest.approx(float(ClDiceLoss()(logits, labels)))
    assert components["total_loss"] == pytest.approx(float(value))


def test_weights_are_mutable_by_name_and_validated():
    loss = create_loss_function("default_segmentation")
    assert dict(loss.weights) == {"dice": 0.7, "bce": 0.3}
    loss.dice_weight = 0.4
    loss.set_weight("bce", 0.6)
    assert loss.dice_weight == 0.4 and loss.bce_weight == 0.6 and dict(loss.weights) == {"dice": 0.4, "bce": 0.6}
    loss.set_weights({"dice": 0.0}, bce=torch.tensor(2.0))
    assert dict(loss.weights) == {"dice": 0.0, "bce": 2.0} and type(loss.weights["bce"]) is float
    with pytest.raises(TypeError):
        loss.weights["dice"] = 1.0
    for bad, message in [
        ({"dice": -0.1}, "weight of 'dice' must be finite and >= 0, got -0.1"),
        ({"dice": math.nan}, "weight of 'dice' must be finite and >= 0, got nan"),
        ({"bce": math.inf}, "weight of 'bce' must be finite and >= 0, got inf"),
        ({"dice": 0.0, "bce": 0.0}, "at least one loss weight must be > 0"),
        ({"cldice": 1.0}, r"no loss term named 'cldice' in this CombinedLoss; its terms: \['dice', 'bce'\]"),
        ({"dice": "0.5"}, "weight of 'dice' must be a number, got '0.5'"),
        ({"dice": True}, "weight of 'dice' must be a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            loss.set_weights(bad)
        assert dict(loss.weights) == {"dice": 0.0, "bce": 2.0}
    with pytest.raises(ValueError, match="at least one loss weight must be > 0"):
        loss.bce_weight = 0
    with pytest.raises(AttributeError):
        loss.tversky_weight  # noqa: B018


def test_weights_survive_a_weights_only_state_dict_round_trip():
    loss = create_loss_function("vessel_topology")
    loss.set_weights(cldice=0.05, skeleton_recall=0.0)
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = create_loss_function("vessel_topology")
    fresh.load_state_dict(state)
    assert dict(fresh.weights) == dict(loss.weights)
    other = create_loss_function("default_segmentation")
    with pytest.raises(ValueError, match="saved loss weights are for terms"):
        other.load_state_dict(state, strict=False)


def test_skeleton_convention(batch):
    logits, labels, skeleton = batch
    loss = create_loss_function("vessel_skeleton_recall")
    packed = loss(logits, torch.cat([labels, skeleton], 1))
    assert torch.equal(packed, loss(logits, labels, skeleton=skeleton))
    assert torch.equal(packed, loss(MetaTensor(logits), MetaTensor(torch.cat([labels, skeleton], 1))))
    with pytest.raises(ValueError, match="skeleton_recall term needs the tubed skeleton: pass skeleton=..., or"):
        loss(logits, labels)
    loss.skeleton_recall_weight = 0.0
    expected = 0.5 * float(EnhancedDiceLoss()(logits, labels)) + 0.5 * float(EnhancedBCELoss()(logits, labels))
    assert float(loss(logits, labels)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="skeleton must be binary"):
        create_loss_function("vessel_skeleton_recall")(logits, labels, skeleton=skeleton * 0.5)
    plain = create_loss_function("default_segmentation")
    with pytest.raises(ValueError, match=r"prediction shape \(2, 1, 16, 16, 16\) and target shape \(2, 2, 16, 16,"):
        plain(logits, torch.cat([labels, skeleton], 1))


def test_bad_input_to_forward(batch):
    logits, labels, _ = batch
    loss = create_loss_function("default_segmentation")
    with pytest.raises(ValueError, match=r"prediction shape \(2, 1, 16, 16, 16\) and target shape \(2, 1, 16, 16, 8\)"):
        loss(logits, labels[..., :8])
    with pytest.raises(ValueError, match="target must be binary .* found the value 0.5"):
        loss(logits, labels * 0.5)
    bce_only = create_loss_function({"type": "bce"})
    assert torch.isfinite(bce_only(logits, labels * 0.5))


def test_constructor_bad_input():
    with pytest.raises(ValueError, match="needs at least one term"):
        CombinedLoss({})
    terms = r"\['bce', 'cldice', 'dice', 'focal', 'skeleton_recall', 'tversky'\]"
    with pytest.raises(ValueError, match=r"unknown loss term 'hausdorff'; valid terms: " + terms):
        CombinedLoss({"hausdorff": {}})
    with pytest.raises(ValueError, match="term 'dice' must be a pipeline.losses LogitsLoss or a dict"):
        CombinedLoss({"dice": DiceLoss()})
    with pytest.raises(ValueError, match="term 'dice' has reduction='none'"):
        CombinedLoss({"dice": EnhancedDiceLoss(reduction="none")})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['smoth'\] for the 'dice' loss term; valid options"):
        CombinedLoss({"dice": {"smoth": 1.0}})


def test_inside_monai_supervised_trainer_with_skeleton_channels(batch):
    logits, labels, skeleton = batch
    torch.manual_seed(0)
    network = torch.nn.Conv3d(1, 1, 3, padding=1)
    loss = create_loss_function("vessel_topology")
    data = [{"image": labels[i : i + 1] + 0.1, "label": torch.cat([labels, skeleton], 1)[i : i + 1]} for i in range(2)]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1),
        loss_function=loss,
    )
    trainer.run()
    assert trainer.state.iteration == 2
    assert loss.last_components["total_loss"] == pytest.approx(float(trainer.state.output[0]["loss"]))
    assert set(loss.last_components) == {"dice_loss", "bce_loss", "cldice_loss", "skeleton_recall_loss", "total_loss"}


def test_review_regressions_one_hot_target_zero_weight_checks_and_weight_attributes():
    from monai.networks import one_hot

    from pipeline.losses import CombinedLoss, create_loss_function

    torch.manual_seed(0)
    labels = (torch.rand(2, 1, 12, 12, 12) > 0.7).float()
    logits = torch.randn(2, 1, 12, 12, 12)
    # a MONAI one-hot [background, vessel] label is not mistaken for label + skeleton
    with pytest.raises(ValueError, match="skeleton channels of the target are not inside its label channels"):
        create_loss_function("vessel_skeleton_recall")(logits, one_hot(labels, 2))
    # terms weighted 0 are computed by get_loss_components, so their target is checked too
    loss = CombinedLoss({"bce": {}, "cldice": {}}, {"bce": 1.0, "cldice": 0.0})
    with pytest.raises(ValueError, match="binary"):
        loss.get_loss_components(logits, labels * 0.6)
    # a known term's weight on a loss without that term is refused, not silently stored
    with pytest.raises(ValueError, match="no loss term named 'tversky'"):
        loss.tversky_weight = 0.3
    loss.cldice_weight = np.float32(0.25)  # numpy scalars and one-element tensors are numbers
    loss.bce_weight = torch.tensor([0.75])
    assert loss.weights == {"bce": 0.75, "cldice": 0.25}


def test_focal_gradient_stays_finite_for_small_gamma_and_extreme_logits():
    from monai.losses import FocalLoss

    from pipeline.losses import EnhancedBCELoss

    logits = torch.tensor([[[-200.0, 200.0, -95.0, 95.0]]], requires_grad=True)
    target = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])
    EnhancedBCELoss(gamma=0.5)(logits, target).backward()
    ours = logits.grad.clone()
    logits.grad = None
    FocalLoss(gamma=0.5, use_softmax=False)(logits, target).backward()
    assert torch.isfinite(ours).all() and torch.allclose(ours, logits.grad, atol=1e-12)


def test_cldice_refuses_second_order_gradients_clearly():
    from pipeline.losses import ClDiceLoss

    labels = (torch.rand(1, 1, 8, 8, 8) > 0.6).float()
    logits = torch.randn(1, 1, 8, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order gradients only; for second-order gradients"):
        torch.autograd.grad(ClDiceLoss(iter_=1)(logits, labels), logits, create_graph=True)
