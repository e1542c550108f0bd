"""Means that move the right way: failed and missing cases count as worst, ``--aggregation nnunet`` gives nnU-Net
v2's numbers, the console and the box plots say what the means hold; the output folder is checked first; sharded runs
merge into the single run's reports; ``--help`` imports nothing heavy."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.evaluation import EvaluationSettings, aggregate, pair_by_name, run_evaluation
from pipeline.evaluation.plots import box_plot_figure

SHAPE = (18, 16, 14)
AFFINE = np.diag([0.6, 0.6, 0.8, 1.0])
CASES = ("c1", "c2", "c3", "c4", "c5")


def _save_like_nnunet(array: np.ndarray, path: Path) -> None:
    """uint8 segmentation with qform and sform codes 1 (scanner), as ITK-based writers (nnU-Net's SimpleITK) write."""
    img = nib.Nifti1Image(array.astype(np.uint8), AFFINE)
    img.set_qform(AFFINE, code=1)
    img.set_sform(AFFINE, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def _ball(centre, radius: float) -> np.ndarray:
    grid = np.indices(SHAPE).transpose(1, 2, 3, 0)
    return ((grid - np.asarray(centre)) ** 2).sum(-1) < radius**2


@pytest.fixture
def multi_label(tmp_path) -> Path:
    """Five cases with labels 1 and 2 in nnU-Net's layout (same names in ``gt/`` and ``pred/``): label 2 is absent
    from both files of c2 and c4 (nnU-Net scores those NaN), the prediction of c3 misses label 2, c5's prediction
    is missing."""
    rng = np.random.default_rng(0)
    for i, case in enumerate(CASES):
        gt = _ball((8, 7, 6), 4.0).astype(np.uint8)
        pred = _ball((8 + i % 2, 7, 6 + (i % 3 == 1)), 3.6 + 0.3 * i).astype(np.uint8)
        if case not in ("c2", "c4"):
            gt[_ball((3, 3, 10), 2.5 + 0.4 * i)] = 2
            if case != "c3":
                pred[_ball((3 + rng.integers(0, 2), 3, 10), 2.5)] = 2
        _save_like_nnunet(gt, tmp_path / "gt" / f"{case}.nii.gz")
        if case != "c5":
            _save_like_nnunet(pred, tmp_path / "pred" / f"{case}.nii.gz")
    return tmp_path


def _nnunet_reference(folder_ref: Path, folder_pred: Path, labels: tuple[int, ...]) -> dict:
    """nnU-Net v2's ``compute_metrics_on_folder`` as published (nnunetv2/evaluation/evaluate_predictions.py): the
    predictions found are scored; per label TP/FP/FN/TN from the masks ``seg == label``, Dice and IoU NaN when
    ``tp + fp + fn == 0``; ``mean`` is ``np.nanmean`` over the cases, ``foreground_mean`` ``np.mean`` over labels."""
    results = []
    for pred_file in sorted(folder_pred.glob("*.nii.gz")):
        seg_ref = np.asarray(nib.load(folder_ref / pred_file.name).dataobj)
        seg_pred = np.asarray(nib.load(pred_file).dataobj)
        metrics = {}
        for r in labels:
            mask_ref, mask_pred = seg_ref == r, seg_pred == r
            tp, fp = np.sum(mask_ref & mask_pred), np.sum(~mask_ref & mask_pred)
            fn, tn = np.sum(mask_ref & ~mask_pred), np.sum(~mask_ref & ~mask_pred)
            if tp + fp + fn == 0:
                dice = iou = np.nan
            else:
                dice, iou = 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)
            metrics[r] = {"Dice": dice, "IoU": iou, "FP": fp, "TP": tp, "FN": fn, "TN": tn, "n_pred": fp + tp, "n_ref": fn + tp}
        results.append(metrics)
    names = list(results[0][labels[0]])
    means = {r: {m: np.nanmean([res[r][m] for res in results]) for m in names} for r in labels}
    foreground = {m: np.mean([means[r][m] for r in labels]) for m in names}
    return {"mean": means, "foreground_mean": foreground}


def test_aggregation_nnunet_reproduces_nnunet_v2_summary(multi_label, capsys):
    out = multi_label / "out"
    assert main(["-q", "evaluate", "--pred", str(multi_label / "pred"), "--label", str(multi_label / "gt"), "--labels", "1", "2",
                 "--aggregation", "nnunet", "--out", str(out)]) == 1  # c5 has no prediction
    summary = json.loads((out / "summary.json").read_text())
    reference = _nnunet_reference(multi_label / "gt", multi_label / "pred", (1, 2))
    for metric in ("Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref"):
        for label in (1, 2):
            assert summary["mean"][str(label)][metric] == pytest.approx(float(reference["mean"][label][metric]), rel=1e-12)
        assert summary["foreground_mean"][metric] == pytest.approx(float(reference["foreground_mean"][metric]), rel=1e-12)
    assert [c["case"] for c in summary["metric_per_case"]] == ["c1", "c2", "c3", "c4"]  # as nnU-Net: found predictions
    assert summary["metric_per_case"][1]["metrics"]["2"]["Dice"] is None  # NaN: label 2 in neither file of c2
    assert summary["n"]["2"]["Dice"] == 2 and summary["n_excluded"]["2"]["Dice"] == 3
    lines = capsys.readouterr().out.strip().splitlines()  # the console ends with the means
    assert lines[-7].startswith("means (nnunet: nnU-Net v2: both empty -> NaN, nanmean, failed cases left out) over 5 cases: 4 scored, 1 failed")
    assert lines[-2].startswith("label 1: worst values in the means: none; excluded from the means: Dice 1,")
    assert lines[-1].startswith("label 2: worst values in the means: ") and "excluded from the means: Dice 3," in lines[-1]


def test_missing_prediction_counts_as_worst_and_lowers_the_mean(multi_label):
    settings = EvaluationSettings(labels=(1, 2))
    missing = run_evaluation(pair_by_name(multi_label / "pred", multi_label / "gt"), settings=settings)
    assert missing.summary["n_failed"] == 1 and missing.summary["n"]["1"]["Dice"] == 5
    _save_like_nnunet(np.asarray(nib.load(multi_label / "gt" / "c5.nii.gz").dataobj), multi_label / "pred" / "c5.nii.gz")
    found = run_evaluation(pair_by_name(multi_label / "pred", multi_label / "gt"), settings=settings)
    dice = [r.metrics[1]["Dice"] for r in found.results]
    assert missing.summary["mean"]["1"]["Dice"] == pytest.approx((sum(dice[:4]) + 0.0) / 5)  # the missing case is 0
    assert missing.summary["mean"]["1"]["Dice"] < found.summary["mean"]["1"]["Dice"]
    diagonal = float(np.linalg.norm(np.multiply(SHAPE, (0.6, 0.6, 0.8))))
    failed = missing.summary["metric_per_case"][4]
    assert failed["status"] == "failed" and failed["metrics"]["1"]["HD95_mm"] == pytest.approx(diagonal)
    assert failed["metrics"]["1"]["TP"] is None  # a count has no worst value: not part of the means
    assert missing.summary["n"]["1"]["TP"] == 4 and missing.summary["n_excluded"]["1"]["TP"] == 1
    # both-empty label 2 of c2 and c4 scores 1 by default; nnU-Net's rule leaves it out
    assert missing.summary["metric_per_case"][1]["metrics"]["2"]["Dice"] == 1.0


def test_box_plots_say_n_per_panel_and_name_the_outliers(tmp_path):
    for i in range(7):
        _save_like_nnunet(_ball((8, 7, 6), 4.0), tmp_path / "gt" / f"case_{i}.nii.gz")
        pred = _ball((8, 7, 6), 4.0) if i != 5 else _ball((13, 11, 6), 2.0)  # case_5 is far off
        pred = pred & ~_ball((8, 7, 9 + i % 2), 1.5)
        _save_like_nnunet(pred, tmp_path / "pred" / f"case_{i}.nii.gz")
    report = run_evaluation(pair_by_name(tmp_path / "pred", tmp_path / "gt"), tmp_path / "out")
    fig = box_plot_figure(report.results, aggregate(report.results, EvaluationSettings()), ("Dice", "HD95_mm"))
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["Dice\nn = 7", "HD95 (mm)\nn = 7"]
        assert [t.get_text() for t in fig.axes[0].texts] == ["case_5"]
    finally:
        plt.close(fig)
    assert (tmp_path / "out" / "evaluation.png").read_bytes()[:4] == b"\x89PNG"


def test_output_folder_is_checked_before_scoring(multi_label, capsys):
    folders = ["evaluate", "--pred", str(multi_label / "pred"), "--label", str(multi_label / "gt"), "--labels", "1", "2"]
    blocker = multi_label / "a_file"
    blocker.write_text("x")
    for out, message in ((blocker, f"output folder '{blocker}' is a file; give a folder for --out."),
                         (blocker / "sub", f"output folder '{blocker / 'sub'}' cannot be written: ")):
        assert main([*folders, "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith(f"error: {message}") and len(captured.err.splitlines()) == 1
    assert main(["-q", *folders]) == 1
    assert "\nno --out given: nothing written\n" in capsys.readouterr().out


def test_help_and_bad_options_import_nothing_heavy():
    code = (
        "import sys; from pipeline.cli import build_parser, main\n"
        "build_parser().format_help()\n"
        "assert main(['evaluate', '--pred', 'p', '--label', 'l', '--threshold', '0.5', '--nonzero']) == 2\n"
        "print(sorted(m for m in ('numpy', 'torch', 'monai', 'nibabel', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.stdout.strip() == "[]", done.stderr
    assert "give either threshold (probability maps) or nonzero (any nonzero value), not both" in done.stderr


def _csv_without_seconds(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_sharded_runs_merge_into_the_single_run_reports(multi_label, capsys):
    folders = ["-q", "evaluate", "--pred", str(multi_label / "pred"), "--label", str(multi_label / "gt"), "--labels", "1", "2"]
    assert main([*folders, "--out", str(multi_label / "single")]) == 1
    for i in (1, 2):
        main([*folders, "--shard", f"{i}/2", "--out", str(multi_label / f"shard{i}")])
    partial = json.loads((multi_label / "shard1" / "partial.json").read_text())
    assert [r["case"] for r in partial["results"]] == ["c1", "c3", "c5"]
    assert main(["-q", "evaluate", "--merge", str(multi_label / "shard2"), str(multi_label / "shard1"),
                 "--out", str(multi_label / "merged")]) == 1
    single, merged = multi_label / "single", multi_label / "merged"
    assert json.loads((merged / "summary.json").read_text()) == json.loads((single / "summary.json").read_text())
    assert _csv_without_seconds(merged / "cases.csv") == _csv_without_seconds(single / "cases.csv")

    capsys.readouterr()
    for spec, message in (("3/2", "--shard 3/2: I must be between 1 and N (N >= 1), got I=3, N=2."),
                          ("2", "--shard must be I/N, e.g. 2/8 (the 2nd of 8 parts), got '2'.")):
        assert main([*folders, "--shard", spec, "--out", str(multi_label / "bad")]) == 2
        assert capsys.readouterr().err == f"error: {message}\n" and not (multi_label / "bad").exists()
    main([*folders, "--shard", "2/2", "--tolerance-mm", "2", "--out", str(multi_label / "other")])
    capsys.readouterr()
    for parts, message in (((multi_label / "shard1", multi_label / "other"), "have different settings: tolerance_mm 1.0 vs 2.0"),
                           ((multi_label / "shard1",), "shard(s) 2/2 missing: give all 2 partial results."),
                           ((multi_label / "shard1", multi_label / "shard1"), "shard 1/2 is given twice"),
                           ((multi_label / "shard1", multi_label / "shard2", "--labels", "1"), "drop the scoring options")):
        assert main(["-q", "evaluate", "--merge", *map(str, parts), "--out", str(multi_label / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1 and not (multi_label / "bad").exists()
