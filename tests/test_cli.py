"""The command line: make-phantoms, demo (train + evaluate), evaluate and infer, as a user runs them."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pytest
import numpy as np

from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent


def _newest_checkpoint(run: Path) -> Path:
    """The last checkpoint a run wrote (after one epoch: the best and the final model)."""
    return max((run / "checkpoints").glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)


def test_make_phantoms(tmp_path, capsys):
    out = tmp_path / "phantoms"
    code = main(["-q", "make-phantoms", "--out", str(out), "--num", "3", "--shape", "40", "40", "24", "--seed", "3"])
    assert code == 0
    content = json.loads((out / "dataset.json").read_text())
    assert [len(content[k]) for k in ("training", "validation", "test")] == [1, 1, 1]
    img = nib.load(out / "coronary_000_image.nii.gz")
    assert img.shape == (40, 40, 24)
    np.testing.assert_allclose(img.header.get_zooms(), (0.4, 0.4, 0.6), rtol=1e-6)
    assert "wrote 3 image/label pairs" in capsys.readouterr().out


def test_demo_trains_with_the_bundle_then_scores_test_cases(tiny_dataset, tmp_path, capsys):
    """``demo`` is the bundle: train.json, then evaluate.json on the held-out list, the per-case table printed."""
    out = tmp_path / "demo"
    args = ["-q", "demo", "--dataset-dir", str(tiny_dataset), "--output-dir", str(out), "--epochs", "1"]
    code = main(args + ["--patch-size", "32", "32", "32", "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained 1 epochs" in printed
    assert "coronary_004_image" in printed  # the one test case of the tiny dataset, in the per-case table
    assert "clDice" in printed and "HD95 mm" in printed  # the evaluation tool's table
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    (case,) = summary["metric_per_case"]
    assert case["case"] == "coronary_004_image" and 0.0 <= case["metrics"]["1"]["Dice"] <= 1.0
    pred = nib.load(out / "evaluation" / "predictions" / "coronary_004_image_pred.nii.gz")
    src = nib.load(tiny_dataset / "coronary_004_image.nii.gz")
    assert pred.shape == src.shape
    np.testing.assert_allclose(pred.affine, src.affine, atol=1e-5)
    assert (out / "model.pt").is_file() and (out / "mlflow.db").is_file() and (out / "training_curves.png").is_file()
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1]

    # the bundle's run reads like any training run: evaluate --checkpoint scores the same checkpoint to the same Dice
    code = main(["-q", "evaluate", "--checkpoint", str(_newest_checkpoint(out)),
                 "--dataset-dir", str(tiny_dataset), "--device", "cpu"])
    assert code == 0
    assert f"{case['metrics']['1']['Dice']:.4f}" in capsys.readouterr().out


def test_demo_bad_input_exits_2_before_training(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--dataset-dir", str(tmp_path / "nowhere"), "--output-dir", str(out)]) == 2
    assert f"error: dataset folder '{tmp_path / 'nowhere'}' does not exist." in capsys.readouterr().err
    assert main(["demo", "--dataset-dir", str(tiny_dataset), "--output-dir", str(out), "--loss", "vessel_cldice",
                 "--loss-schedule", "cosinus"]) == 2
    assert "cosinus" in capsys.readouterr().err
    assert not list(out.rglob("*.pt"))


def test_module_entry_point_reports_errors(tmp_path):
    """``python -m pipeline`` exits with code 2 and a one-line reason, not a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", "--checkpoint", str(tmp_path / "none.pt")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"error: checkpoint '{tmp_path / 'none.pt'}' does not exist.")
    assert "Traceback" not in proc.stderr


def test_evaluate_into_a_new_folder(tiny_dataset, tmp_path):
    """``evaluate --output-dir`` creates the folder and writes every per-case field to scores.json."""
    run = tmp_path / "run"
    assert main(["-q", "train", "--dataset-dir", str(tiny_dataset), "--output-dir", str(run), "--epochs", "1",
                 "--patch-size", "32", "32", "32", "--no-progress", "--device", "cpu"]) == 0
    out = tmp_path / "new" / "eval"
    assert main(["-q", "evaluate", "--checkpoint", str(_newest_checkpoint(run)),
                 "--dataset-dir", str(tiny_dataset), "--split", "validation", "--output-dir", str(out)]) == 0
    (row,) = json.loads((out / "scores.json").read_text())
    assert row["case"] == "coronary_003_image" and row["shape"] == [48, 48, 32]
    assert row["spacing_mm"] == pytest.approx([0.4, 0.4, 0.6])
    assert Path(row["prediction"]).is_file()


def test_infer_writes_predictions_on_each_input_grid_then_evaluate_scores_them(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--dataset-dir", str(tiny_dataset), "--output-dir", str(run), "--epochs", "1",
                 "--patch-size", "32", "32", "32", "--no-progress", "--device", "cpu"]) == 0
    images = tmp_path / "images"
    images.mkdir()
    for case in ("coronary_003", "coronary_004"):
        shutil.copy(tiny_dataset / f"{case}_image.nii.gz", images)
    preds = tmp_path / "preds"
    assert main(["-q", "infer", "--checkpoint", str(_newest_checkpoint(run)), "--input", str(images),
                 "--out", str(preds), "--device", "cpu"]) == 0
    assert "coronary_004_image_pred.nii.gz" in capsys.readouterr().out
    for case in ("coronary_003", "coronary_004"):
        pred, src = nib.load(preds / f"{case}_image_pred.nii.gz"), nib.load(images / f"{case}_image.nii.gz")
        assert pred.shape == src.shape
        np.testing.assert_allclose(pred.affine, src.affine, atol=1e-5)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1}

    # the written predictions pair with the labels by case name; the Dice equals the checkpoint scoring's
    labels = tmp_path / "labels"
    labels.mkdir()
    for case in ("coronary_003", "coronary_004"):
        shutil.copy(tiny_dataset / f"{case}_label.nii.gz", labels)
    assert main(["-q", "evaluate", "--pred", str(preds), "--label", str(labels), "--out", str(tmp_path / "ev")]) == 0
    with open(tmp_path / "ev" / "cases.csv", newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert main(["-q", "evaluate", "--checkpoint", str(_newest_checkpoint(run)), "--dataset-dir",
                 str(tiny_dataset), "--split", "test", "--out", str(tmp_path / "ckpt")]) == 0
    (row,) = json.loads((tmp_path / "ckpt" / "scores.json").read_text())
    assert float(rows["coronary_004"]["Dice"]) == pytest.approx(row["dice"], abs=1e-6)


def test_infer_bad_input_exits_2(tmp_path, capsys):
    assert main(["infer", "--checkpoint", str(tmp_path / "none.pt"), "--input", str(tmp_path / "missing.nii.gz"),
                 "--out", str(tmp_path / "out")]) == 2
    assert f"input '{tmp_path / 'missing.nii.gz'}' is neither a NIfTI file nor a folder." in capsys.readouterr().err
