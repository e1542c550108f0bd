"""VesselMetric: the evaluation tool's metrics as Ignite validation metrics, with the spacing of each volume."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.metrics import compute_hausdorff_distance, compute_surface_dice
from monai.utils import set_determinism

from pipeline import VAL_KEY_METRIC, create_evaluator, create_unet, load_datalist, make_loader
from pipeline.evaluation import VesselMetric, binary_metrics, pair_by_name, run_evaluation, spacing_from_tensor
from pipeline.evaluation.ignite_metric import _LAST_PAIR
from transforms import get_val_transforms


def _monai(fn, pred, label, spacing, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return float(fn(pred[None].float(), label[None].float(), include_background=True, spacing=list(spacing), **kwargs))


def test_evaluator_reports_tool_metrics_in_mm(tiny_dataset):
    set_determinism(seed=3)
    val = make_loader(load_datalist(tiny_dataset, "validation"), get_val_transforms())
    net = create_unet(channels=(4, 8), strides=(2,), num_res_units=0)
    evaluator = create_evaluator(net, val, "cpu", roi_size=(32, 32, 32), extra_metrics=("Dice", "HD95_mm", "NSD", "clDice"), tolerance_mm=0.8)
    outputs = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.extend(e.state.output))
    evaluator.run()
    set_determinism(seed=None)
    metrics = evaluator.state.metrics
    assert set(metrics) == {VAL_KEY_METRIC, "val_dice", "val_hd95_mm", "val_hd95_mm_worst_cases", "val_nsd", "val_cldice"}
    assert metrics["val_hd95_mm_worst_cases"] == 0
    assert metrics["val_dice"] == pytest.approx(metrics[VAL_KEY_METRIC], abs=1e-6)  # MONAI's DiceMetric

    (case,) = outputs
    pred, label = case["pred"], case["label"]
    spacing = spacing_from_tensor(label)
    assert spacing == pytest.approx(spacing_from_tensor(pred)) and spacing == pytest.approx(tuple(float(s) for s in label.pixdim))
    assert metrics["val_hd95_mm"] == pytest.approx(_monai(compute_hausdorff_distance, pred, label, spacing, percentile=95), abs=1e-6)
    assert metrics["val_nsd"] == pytest.approx(_monai(compute_surface_dice, pred, label, spacing, class_thresholds=[0.8]), abs=1e-6)
    expected = binary_metrics(pred[0].numpy() > 0.5, label[0].numpy() > 0.5, spacing, metrics=["clDice"])["clDice"]
    assert metrics["val_cldice"] == pytest.approx(expected, abs=1e-12)


def _blob_batch(spacing):
    grid = np.indices((20, 20, 16)).transpose(1, 2, 3, 0)
    label = np.stack([((grid - c) ** 2).sum(-1) < r**2 for c, r in (((9, 9, 8), 5.0), ((11, 8, 7), 4.0))])
    pred = np.stack([((grid - c) ** 2).sum(-1) < r**2 for c, r in (((10, 9, 8), 4.5), ((11, 9, 7), 4.0))])
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    to_meta = lambda a: MetaTensor(torch.from_numpy(a)[:, None].float(), affine=affine[None].repeat(2, 1, 1))  # noqa: E731
    return to_meta(pred), to_meta(label)


def test_batched_meta_tensors_on_a_plain_ignite_engine():
    spacing = (0.5, 0.7, 1.2)
    pred, label = _blob_batch(spacing)
    engine = Engine(lambda e, batch: batch)
    hd95 = VesselMetric("HD95_mm")
    hd95.attach(engine, "hd95")
    fixed = VesselMetric("ASSD_mm", spacing=(1.0, 1.0, 1.0))
    fixed.attach(engine, "assd_vox")
    state = engine.run([(pred, label)])
    expected = np.mean([_monai(compute_hausdorff_distance, pred[b], label[b], spacing, percentile=95) for b in range(2)])
    assert state.metrics["hd95"] == pytest.approx(expected, abs=1e-6)
    unit = np.mean([binary_metrics(pred[b, 0].numpy() > 0, label[b, 0].numpy() > 0, (1, 1, 1))["ASSD_mm"] for b in range(2)])
    assert state.metrics["assd_vox"] == pytest.approx(unit)


def test_metrics_of_one_group_share_their_computation_and_never_another_pairs():
    """HD95 and NSD on one engine: the surface group is computed for the first and reused by the second for the same
    pair; a different pair, spacing or tolerance is computed anew."""
    spacing = (0.5, 0.7, 1.2)
    pred, label = _blob_batch(spacing)
    engine = Engine(lambda e, batch: batch)
    metrics = {"hd95": VesselMetric("HD95_mm"), "nsd": VesselMetric("NSD"), "nsd_small": VesselMetric("NSD", tolerance_mm=0.4)}
    for name, metric in metrics.items():
        metric.attach(engine, name)
    state = engine.run([(pred[:1], label[:1]), (pred[1:], label[1:])])
    masks = [(pred[b, 0].numpy() > 0.5, label[b, 0].numpy() > 0.5) for b in range(2)]
    direct = [binary_metrics(p, t, spacing, 1.0) for p, t in masks]
    direct_small = [binary_metrics(p, t, spacing, 0.4)["NSD"] for p, t in masks]
    assert direct[0]["NSD"] != direct[1]["NSD"] and direct[1]["NSD"] != direct_small[1]
    assert state.metrics["hd95"] == pytest.approx(np.mean([d["HD95_mm"] for d in direct]), abs=1e-12)
    assert state.metrics["nsd"] == pytest.approx(np.mean([d["NSD"] for d in direct]), abs=1e-12)
    assert state.metrics["nsd_small"] == pytest.approx(np.mean(direct_small), abs=1e-12)
    # what is kept: the last pair's groups at the last tolerance (the 0.4 mm NSD's own surface group)
    assert set(_LAST_PAIR.scores) == {"HD95_mm", "HD_mm", "ASSD_mm", "NSD"} and _LAST_PAIR.scores["NSD"] == direct_small[1]


def test_a_case_predicted_empty_counts_as_the_worst_distance_as_in_the_evaluation_tool(tmp_path):
    """Predicting nothing for a hard case makes the validation HD95/ASSD worse, never better: the case counts as the
    field of view's diagonal, the evaluation tool's worst value, and the count is published as a metric."""
    spacing = (0.5, 0.7, 1.2)
    pred, label = _blob_batch(spacing)
    pred[1] = 0  # the network predicts nothing for the second case
    engine = Engine(lambda e, batch: batch)
    VesselMetric("HD95_mm").attach(engine, "hd95")
    VesselMetric("ASSD_mm").attach(engine, "assd")
    VesselMetric("Dice").attach(engine, "dice")
    state = engine.run([(pred, label)])
    diagonal = float(np.linalg.norm(np.multiply((20, 20, 16), spacing)))
    first = _monai(compute_hausdorff_distance, pred[0], label[0], spacing, percentile=95)
    assert state.metrics["hd95"] == pytest.approx((first + diagonal) / 2) and state.metrics["hd95"] > first
    assert state.metrics["hd95_worst_cases"] == 1 and state.metrics["assd_worst_cases"] == 1
    assert "dice_worst_cases" not in state.metrics  # an empty prediction already scores Dice 0

    # one definition: the evaluation tool's means of the same two cases, read from NIfTI files, are the same numbers
    affine = np.diag([*spacing, 1.0])
    for sub in ("pred", "label"):
        (tmp_path / sub).mkdir()
    for b in range(2):
        nib.save(nib.Nifti1Image(pred[b, 0].numpy().astype(np.uint8), affine), tmp_path / "pred" / f"c{b}.nii.gz")
        nib.save(nib.Nifti1Image(label[b, 0].numpy().astype(np.uint8), affine), tmp_path / "label" / f"c{b}.nii.gz")
    report = run_evaluation(pair_by_name(tmp_path / "pred", tmp_path / "label"))
    assert report.summary["mean"]["1"]["HD95_mm"] == pytest.approx(state.metrics["hd95"], abs=1e-6)
    assert report.summary["mean"]["1"]["ASSD_mm"] == pytest.approx(state.metrics["assd"], abs=1e-6)
    assert report.summary["n_worst"]["1"]["HD95_mm"] == state.metrics["hd95_worst_cases"]


def test_bad_use_is_explained():
    with pytest.raises(ValueError, match="metric must be one of"):
        VesselMetric("hd95")
    metric = VesselMetric("Dice")
    with pytest.raises(ValueError, match="without an affine has no voxel spacing"):
        metric.update((torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 4, 4, 4)))
    with pytest.raises(ValueError, match="two \\(B, C, X, Y, Z\\) tensors or two lists"):
        metric.update((torch.zeros(4, 4, 4), [torch.zeros(1, 4, 4, 4)]))
