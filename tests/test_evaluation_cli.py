"""``vessel-pipeline evaluate --pred --label --out`` on real NIfTI files: outputs, pairing, multi-label, bad input."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.evaluation import binary_metrics, monai_reference_metrics
from pipeline.phantoms import PhantomConfig, make_phantom

SHAPE, SPACING = (32, 32, 24), (0.4, 0.4, 0.6)
CASES = ("case_0", "case_1", "case_2")


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    """Three binary phantom labels and their predictions (label shifted by one voxel), in ``pred/`` and ``label/``."""
    root = tmp_path_factory.mktemp("eval_pairs")
    (root / "pred").mkdir()
    (root / "label").mkdir()
    for i, case in enumerate(CASES):
        ph = make_phantom(PhantomConfig(shape=SHAPE, spacing=SPACING, n_trees=1), np.random.default_rng(i))
        _save(ph.label.astype(np.uint8), ph.affine, root / "label" / f"{case}_label.nii.gz")
        _save(np.roll(ph.label, i, axis=1).astype(np.uint8), ph.affine, root / "pred" / f"{case}_image_pred.nii.gz")
    return root


@pytest.fixture
def work(pairs_dir, tmp_path) -> Path:
    """A private copy of the pairs that a test may damage."""
    shutil.copytree(pairs_dir, tmp_path / "pairs")
    return tmp_path / "pairs"


def _evaluate(root: Path, *extra: str) -> tuple[int, list[dict]]:
    code = main(["-q", "evaluate", "--pred", str(root / "pred"), "--label", str(root / "label"), "--out", str(root / "out"), *extra])
    with open(root / "out" / "cases.csv", newline="") as f:
        return code, list(csv.DictReader(f))


def _pred(root: Path, case: str) -> Path:
    return root / "pred" / f"{case}_image_pred.nii.gz"


def _label(root: Path, case: str) -> Path:
    return root / "label" / f"{case}_label.nii.gz"


def test_outputs_and_values(work, capsys):
    code, rows = _evaluate(work, "--tolerance-mm", "0.5")
    assert code == 0
    assert [r["case"] for r in rows] == list(CASES) and {r["status"] for r in rows} == {"ok"}
    assert list(rows[0])[:11] == ["case", "label", "status", "reason", "empty", "worst", "notes", "prediction", "reference",
                                  "spacing_mm", "seconds"]
    for column in ("Dice", "IoU", "Precision", "Recall", "VolumeDiff_ml", "clDice", "HD95_mm", "ASSD_mm", "NSD", "beta0_error"):
        assert column in rows[0]
    # the file values are the MONAI reference values of the same arrays with the header spacing
    pred = np.asarray(nib.load(_pred(work, "case_1")).dataobj)
    label = np.asarray(nib.load(_label(work, "case_1")).dataobj)
    ref = monai_reference_metrics(pred, label, SPACING, tolerance_mm=0.5)
    for key in ("Dice", "HD95_mm", "ASSD_mm", "NSD", "clDice", "beta0_error"):
        assert float(rows[1][key]) == pytest.approx(ref[key], abs=1e-6), key
    assert float(rows[0]["Dice"]) == 1.0 and float(rows[0]["HD95_mm"]) == 0.0  # case_0: prediction == label

    summary = json.loads((work / "out" / "summary.json").read_text())
    assert {"metric_per_case", "mean", "foreground_mean"} <= set(summary)
    assert summary["metric_per_case"][1]["metrics"]["1"]["Dice"] == pytest.approx(float(rows[1]["Dice"]))
    assert summary["metric_per_case"][1]["reference_file"] == str(_label(work, "case_1"))
    assert summary["mean"]["1"]["HD95_mm"] == pytest.approx(np.mean([float(r["HD95_mm"]) for r in rows]))
    assert summary["foreground_mean"]["Dice"] == pytest.approx(summary["mean"]["1"]["Dice"])
    assert summary["n_failed"] == 0 and summary["settings"]["tolerance_mm"] == 0.5
    assert (work / "out" / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "case_1" in printed and f"{float(rows[1]['Dice']):.4f}" in printed


def test_pairs_list_and_workers_give_the_same_scores(work):
    code, by_name = _evaluate(work)
    listing = [{"case": c, "prediction": f"pred/{c}_image_pred.nii.gz", "label": f"label/{c}_label.nii.gz"} for c in CASES]
    (work / "pairs.json").write_text(json.dumps({"pairs": listing}))
    with open(work / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["case", "prediction", "label"])
        writer.writeheader()
        writer.writerows(listing)
    for pairs_file in ("pairs.json", "pairs.csv"):
        out = work / f"out_{pairs_file}"
        assert main(["-q", "evaluate", "--pairs", str(work / pairs_file), "--out", str(out), "--workers", "2"]) == 0
        with open(out / "cases.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["case"], r["Dice"], r["HD95_mm"], r["clDice"]) for r in rows] == [
            (r["case"], r["Dice"], r["HD95_mm"], r["clDice"]) for r in by_name
        ]


def test_multi_label_files_are_scored_per_label(work):
    affine = nib.load(_label(work, "case_1")).affine
    label = np.asarray(nib.load(_label(work, "case_1")).dataobj).astype(np.uint8)
    pred = np.asarray(nib.load(_pred(work, "case_1")).dataobj).astype(np.uint8)
    label[:, :, SHAPE[2] // 2 :] *= 2  # label 2 in the upper half, label 1 below
    pred[:, :, SHAPE[2] // 2 + 1 :] *= 2
    root = work / "multi"
    (root / "pred").mkdir(parents=True)
    (root / "label").mkdir()
    _save(pred, affine, root / "pred" / "m.nii.gz")
    _save(label, affine, root / "label" / "m.nii.gz")
    code, rows = _evaluate(root, "--labels", "1", "2", "3")
    assert code == 0 and [r["label"] for r in rows] == ["1", "2", "3"]
    for row in rows[:2]:
        value = int(row["label"])
        expected = binary_metrics(pred == value, label == value, SPACING)
        assert float(row["Dice"]) == pytest.approx(expected["Dice"]) and float(row["HD95_mm"]) == pytest.approx(expected["HD95_mm"])
    assert rows[2]["empty"] == "both" and float(rows[2]["Dice"]) == 1.0  # label 3 is in neither file
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert set(summary["mean"]) == {"1", "2", "3"}
    assert summary["foreground_mean"]["Dice"] == pytest.approx(np.mean([summary["mean"][k]["Dice"] for k in "123"]))


def test_empty_prediction_is_flagged_not_fatal(work, capsys):
    affine = nib.load(_pred(work, "case_2")).affine
    _save(np.zeros(SHAPE, np.uint8), affine, _pred(work, "case_2"))
    code, rows = _evaluate(work)
    assert code == 0
    # the distance that cannot be measured counts as the worst value, the field of view's diagonal, and says so
    diagonal = float(np.linalg.norm(np.multiply(SHAPE, SPACING)))
    assert rows[2]["empty"] == "pred" and float(rows[2]["HD95_mm"]) == pytest.approx(diagonal) and float(rows[2]["Dice"]) == 0.0
    assert rows[2]["worst"] == "HD95_mm HD_mm ASSD_mm" and rows[1]["worst"] == ""
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["metric_per_case"][2]["metrics"]["1"]["HD95_mm"] == pytest.approx(diagonal)
    assert summary["metric_per_case"][2]["worst"] == {"1": ["HD95_mm", "HD_mm", "ASSD_mm"]}
    assert summary["n_worst"]["1"]["HD95_mm"] == 1 and summary["n"]["1"]["HD95_mm"] == 3
    assert summary["mean"]["1"]["HD95_mm"] == pytest.approx(np.mean([float(r["HD95_mm"]) for r in rows]))
    assert summary["mean"]["1"]["HD95_mm"] > max(float(r["HD95_mm"]) for r in rows[:2])  # worse, never better
    printed = capsys.readouterr().out
    assert "empty: pred" in printed and "worst values in the means: HD95_mm 1, ASSD_mm 1" in printed


def _damage_missing_prediction(root):
    _pred(root, "case_1").unlink()
    return "no prediction file for case 'case_1'"


def _damage_missing_label(root):
    _label(root, "case_1").unlink()
    return "no label file for case 'case_1'"


def _damage_shape(root):
    img = nib.load(_pred(root, "case_1"))
    _save(np.asarray(img.dataobj)[:, :, :-2], img.affine, _pred(root, "case_1"))
    return "have different shapes ((32, 32, 22) vs (32, 32, 24))"


def _damage_affine(root):
    img = nib.load(_pred(root, "case_1"))
    affine = img.affine.copy()
    affine[:3, 3] += 0.5
    _save(np.asarray(img.dataobj), affine, _pred(root, "case_1"))
    return "are on different grids: voxel centres up to 0.866 mm apart (tolerance 0.001 mm)"


def _damage_spacing(root):
    img = nib.load(_pred(root, "case_1"))
    _save(np.asarray(img.dataobj), img.affine @ np.diag([1.0, 1.0, 1.25, 1.0]), _pred(root, "case_1"))
    return "prediction LPS, spacing (0.4, 0.4, 0.75) mm, origin (6.2, 6.2, -120.0) mm, shape (32, 32, 24); label LPS, spacing (0.4, 0.4, 0.6) mm"


def _damage_values(root):
    img = nib.load(_pred(root, "case_1"))
    probabilities = np.asarray(img.dataobj).astype(np.float32) * 0.8
    _save(probabilities, img.affine, _pred(root, "case_1"))
    return "must be binary (0 and 1), but has values such as 0.8; a probability map? pass --threshold 0.5"


def _damage_nan(root):
    img = nib.load(_label(root, "case_1"))
    values = np.asarray(img.dataobj).astype(np.float32)
    values[3, 4, 5] = np.nan
    _save(values, img.affine, _label(root, "case_1"))
    return "has 1 NaN voxel(s)"


def _damage_truncated(root):
    path = _pred(root, "case_1")
    data = path.read_bytes()
    assert gzip.decompress(data)  # a valid file before
    path.write_bytes(data[: len(data) // 2])
    return "cannot be read (truncated or corrupt file?)"


def _damage_4d(root):
    img = nib.load(_pred(root, "case_1"))
    volume = np.asarray(img.dataobj)
    _save(np.stack([volume, volume], axis=-1), img.affine, _pred(root, "case_1"))
    return "has shape (32, 32, 24, 2); a 3-D volume is expected"


@pytest.mark.parametrize(
    "damage",
    [_damage_missing_prediction, _damage_missing_label, _damage_shape, _damage_affine, _damage_spacing, _damage_values,
     _damage_nan, _damage_truncated, _damage_4d],
    ids=lambda f: f.__name__.removeprefix("_damage_"),
)
def test_bad_case_is_reported_and_the_others_scored(work, capsys, damage):
    reason = damage(work)
    code, rows = _evaluate(work)
    assert code == 1
    by_case = {r["case"]: r for r in rows}
    assert by_case["case_1"]["status"] == "failed" and reason in by_case["case_1"]["reason"]
    assert [by_case[c]["status"] for c in ("case_0", "case_2")] == ["ok", "ok"]
    assert float(by_case["case_2"]["Dice"]) > 0.0
    out, err = capsys.readouterr()
    assert reason in out and "1 of 3 cases could not be scored" in err
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["n_failed"] == 1 and summary["failed"][0]["case"] == "case_1"
    # the failed case counts as the worst value in the means: Dice 0, distances the field of view's diagonal
    assert by_case["case_1"]["Dice"] == "0.0" and by_case["case_1"]["worst"].startswith("Dice IoU")
    assert summary["mean"]["1"]["Dice"] == pytest.approx((float(by_case["case_0"]["Dice"]) + float(by_case["case_2"]["Dice"])) / 3)
    assert "means (worst: failed cases count as worst) over 3 cases: 2 scored, 1 failed" in out


def test_a_shift_within_the_geometry_tolerance_is_accepted(work, capsys):
    img = nib.load(_pred(work, "case_1"))
    affine = img.affine.copy()
    affine[:3, 3] += 0.4  # every voxel centre 0.69 mm away from the label's: compared in world space
    _save(np.asarray(img.dataobj), affine, _pred(work, "case_1"))
    code, rows = _evaluate(work, "--geometry-tolerance-mm", "0.5")
    assert code == 1 and "--geometry-tolerance-mm 0.7 accepts them" in rows[1]["reason"]
    code, rows = _evaluate(work, "--geometry-tolerance-mm", "0.7")
    assert code == 0 and rows[1]["status"] == "ok"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--out", "x"], "evaluate needs --pred DIR and --label DIR, or --pairs LIST"),
        (["evaluate", "--pred", "nowhere", "--label", "nowhere"], "prediction folder 'nowhere' does not exist"),
        (["evaluate", "--pairs", "pairs.txt"], "pairs list 'pairs.txt' does not exist"),
        (["evaluate", "--checkpoint", "m.pt", "--pred", "p"], "--checkpoint predicts the datalist's images itself; drop ['--pred']"),
        (["evaluate", "--pairs", "a.csv", "--pred", "p"], "give either --pairs or --pred with --label, not both"),
    ],
)
def test_bad_command_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_settings_exit_2(work, capsys):
    assert main(["evaluate", "--pred", str(work / "pred"), "--label", str(work / "label"), "--tolerance-mm", "-1"]) == 2
    assert "tolerance_mm must be >= 0" in capsys.readouterr().err


def test_a_header_without_voxel_size_fails_its_case_only(work):
    for path in (_pred(work, "case_1"), _label(work, "case_1")):
        flat = nib.Nifti1Image(np.asarray(nib.load(path).dataobj), None)  # no qform: nibabel cannot write this one
        flat.set_sform(np.diag([0.5, 0.0, 0.8, 1.0]), code=1)
        nib.save(flat, path)
    code, rows = _evaluate(work)
    by_case = {r["case"]: r for r in rows}
    assert code == 1 and "has no usable voxel size in its header" in by_case["case_1"]["reason"]
    assert [by_case[c]["status"] for c in ("case_0", "case_2")] == ["ok", "ok"]
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert [c["status"] for c in summary["metric_per_case"]] == ["ok", "failed", "ok"]
    assert summary["failed"][0]["case"] == "case_1"
    # neither header gives a field of view: the worst distance is the largest diagonal of the other cases
    diagonal = float(np.linalg.norm(np.multiply(SHAPE, SPACING)))
    assert summary["metric_per_case"][1]["metrics"]["1"]["HD95_mm"] == pytest.approx(diagonal)


def test_an_internal_error_or_a_dead_worker_fails_one_case_not_the_run(work, monkeypatch):
    from pipeline.evaluation import runner

    real = runner.binary_metrics

    def broken_for_case_1(pred, ref, spacing, *args, **kwargs):
        if pred.sum() == np.asarray(nib.load(_pred(work, "case_1")).dataobj).sum():
            raise ZeroDivisionError("a bug")
        return real(pred, ref, spacing, *args, **kwargs)

    global _REAL_EVALUATE_CASE
    _REAL_EVALUATE_CASE = runner.evaluate_case
    monkeypatch.setattr(runner, "binary_metrics", broken_for_case_1)
    code, rows = _evaluate(work)
    assert code == 1 and [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["reason"] == "internal error: ZeroDivisionError: a bug"

    monkeypatch.setattr(runner, "evaluate_case", _dies_on_case_1)
    code, rows = _evaluate(work, "--workers", "2")
    # the pool breaks; the cases it took down with it are scored again, each in a process of its own
    assert code == 1 and [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["reason"].startswith("worker process failed")


_REAL_EVALUATE_CASE = None


def _dies_on_case_1(pair, settings):
    if pair.case == "case_1":
        os._exit(9)  # what the out-of-memory killer does to a worker
    return _REAL_EVALUATE_CASE(pair, settings)


def test_a_pairs_list_saved_by_a_spreadsheet_with_a_byte_order_mark(work):
    listing = work / "pairs.csv"
    lines = ["prediction,label"] + [f"{_pred(work, c)},{_label(work, c)}" for c in CASES]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    code = main(["-q", "evaluate", "--pairs", str(listing), "--out", str(work / "out")])
    assert code == 0
