"""``evaluate`` on files as other tools write them: geometry (orientation, voxel size, sform/qform), values
(probability maps, 0/255 masks, multi-label files) and folder layouts (nnU-Net, MSD, MONAI SaveImage,
TotalSegmentator), on tiny volumes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import LoadImage, Orientation, SaveImage

from pipeline.cli import main
from pipeline.evaluation import monai_reference_metrics

SHAPE = (20, 18, 16)
SPACING = (0.5, 0.6, 0.7)
#: what a CT converted from DICOM usually holds: the array's axes run to the left, posterior and superior
LPS = np.array([[-0.5, 0, 0, 40.0], [0, -0.6, 0, 30.0], [0, 0, 0.7, -50.0], [0, 0, 0, 1]])


def _mask(seed: int, shape=SHAPE) -> np.ndarray:
    """A ball and a rod, moved by ``seed``."""
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    centre = np.array([9 + seed % 3, 8, 7])
    mask = ((grid - centre) ** 2).sum(-1) < 16
    mask[3 + seed % 2 : 15, 8:10, 3:5] = True
    return mask


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def _rows(out: Path) -> list[dict]:
    with open(out / "cases.csv", newline="") as f:
        return list(csv.DictReader(f))


def _run(*argv: str) -> int:
    return main(["-q", "evaluate", *[str(a) for a in argv]])


def test_monai_saveimage_ras_predictions_and_permuted_axes_are_reoriented_and_scored(tmp_path, capsys):
    """A MONAI pipeline with ``Orientation("RAS")`` saves its prediction RAS while the label is stored LPS; another
    prediction has its axes permuted. Both are the label's grid, reoriented without resampling, and score what MONAI
    scores on the label's arrays."""
    labels, raw = tmp_path / "labels", tmp_path / "raw"
    preds = {}
    for i, case in enumerate(("s0001", "s0002")):
        _save(_mask(0).astype(np.uint8), LPS, labels / f"{case}.nii.gz")
        preds[case] = _mask(i + 1).astype(np.uint8)
    _save(preds["s0001"], LPS, raw / "s0001.nii.gz")
    image = Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(LoadImage(image_only=True, ensure_channel_first=True)(str(raw / "s0001.nii.gz")))
    SaveImage(output_dir=str(tmp_path / "pred"), output_postfix="seg", output_dtype=np.uint8, print_log=False)(image)
    assert (tmp_path / "pred" / "s0001" / "s0001_seg.nii.gz").is_file()  # MONAI's layout
    assert nib.aff2axcodes(nib.load(tmp_path / "pred" / "s0001" / "s0001_seg.nii.gz").affine) == ("R", "A", "S")
    _save(np.transpose(preds["s0002"], (2, 0, 1)), LPS[:, [2, 0, 1, 3]], tmp_path / "pred" / "s0002" / "s0002_seg.nii.gz")

    assert _run("--pred", tmp_path / "pred", "--label", labels, "--recursive", "--out", tmp_path / "out") == 0
    rows = _rows(tmp_path / "out")
    assert [r["case"] for r in rows] == ["s0001", "s0002"] and {r["status"] for r in rows} == {"ok"}
    assert rows[0]["notes"] == "prediction reoriented RAS -> LPS" and rows[1]["notes"] == "prediction reoriented SLP -> LPS"
    for row, case in zip(rows, ("s0001", "s0002")):
        expected = monai_reference_metrics(preds[case], _mask(0), SPACING)
        for key in ("Dice", "HD95_mm", "ASSD_mm", "NSD", "clDice"):
            assert float(row[key]) == pytest.approx(expected[key], abs=1e-5), (case, key)
    assert "prediction reoriented RAS -> LPS" in capsys.readouterr().out


def test_other_voxel_sizes_and_shifts_are_refused_with_both_geometries_and_the_option(tmp_path):
    """A 0.5 mm prediction grid against a 0.4 mm label is 3 mm off at the far corner: an entry-wise affine tolerance
    of 0.5 accepted it; voxel centres in world space do not."""
    label_affine = np.diag([0.4, 0.4, 0.4, 1.0])
    _save(_mask(0).astype(np.uint8), label_affine, tmp_path / "label" / "a.nii.gz")
    _save(_mask(0).astype(np.uint8), np.diag([0.5, 0.5, 0.5, 1.0]), tmp_path / "pred" / "a.nii.gz")
    assert _run("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--geometry-tolerance-mm", "0.5",
                "--out", tmp_path / "out") == 1
    reason = _rows(tmp_path / "out")[0]["reason"]
    assert "voxel centres up to 2.958 mm apart (tolerance 0.5 mm)" in reason
    assert "prediction RAS, spacing (0.5, 0.5, 0.5) mm, origin (0.0, 0.0, 0.0) mm, shape (20, 18, 16)" in reason
    assert "label RAS, spacing (0.4, 0.4, 0.4) mm" in reason and "--geometry-tolerance-mm 3 accepts them" in reason


def test_sform_qform_disagreement_and_missing_codes_are_noted(tmp_path):
    folders = ("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--out", tmp_path / "out")
    label = nib.Nifti1Image(_mask(0).astype(np.uint8), LPS)
    shifted = LPS.copy()
    shifted[0, 3] += 5.0
    label.set_qform(shifted, code=1)  # what a tool that updates only one of the two leaves behind
    label.set_sform(LPS, code=1)
    _save(_mask(1).astype(np.uint8), LPS, tmp_path / "pred" / "a.nii.gz")
    (tmp_path / "label").mkdir()
    nib.save(label, tmp_path / "label" / "a.nii.gz")
    assert _run(*folders) == 0
    assert "its sform and qform place the voxels up to 5 mm apart; the sform is used" in _rows(tmp_path / "out")[0]["notes"]

    pred = nib.Nifti1Image(_mask(1).astype(np.uint8), LPS)
    pred.set_sform(None, code=0)
    pred.set_qform(None, code=0)
    nib.save(pred, tmp_path / "pred" / "a.nii.gz")
    _save(_mask(0).astype(np.uint8), pred.header.get_base_affine(), tmp_path / "label" / "a.nii.gz")
    assert _run(*folders) == 0
    notes = _rows(tmp_path / "out")[0]["notes"]
    assert "prediction '" in notes and "has neither an sform nor a qform code: its position in space is unknown" in notes


def test_probability_maps_need_a_threshold_and_get_the_right_hint(tmp_path):
    """MONAI ``SaveImage`` of a sigmoid output writes float32 probabilities."""
    probabilities = np.where(_mask(1), 0.9, 0.1).astype(np.float32)
    probabilities[_mask(2) & ~_mask(1)] = 0.5
    _save(probabilities, LPS, tmp_path / "pred" / "a.nii.gz")
    _save(_mask(0).astype(np.uint8), LPS, tmp_path / "label" / "a.nii.gz")
    folders = ("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--out", tmp_path / "out")
    assert _run(*folders) == 1
    assert "a probability map? pass --threshold 0.5" in _rows(tmp_path / "out")[0]["reason"]
    assert _run(*folders, "--threshold", "0.5") == 0
    expected = monai_reference_metrics(probabilities >= 0.5, _mask(0), SPACING)
    assert float(_rows(tmp_path / "out")[0]["Dice"]) == pytest.approx(expected["Dice"], abs=1e-6)


def test_a_0_255_label_against_0_1_predictions_is_scored_with_nonzero_and_never_silently_empty(tmp_path, capsys):
    """Masks exported as 0/255 (uint8) against 0/1 predictions: the hint is --nonzero (--labels 1 would score an
    empty label), and --labels 1 says that the label has no voxel of label 1 and a value 255 nobody asked for."""
    _save(_mask(0).astype(np.uint8) * 255, LPS, tmp_path / "label" / "a.nii.gz")
    _save(_mask(1).astype(np.uint8), LPS, tmp_path / "pred" / "a.nii.gz")
    folders = ("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--out", tmp_path / "out")
    assert _run(*folders) == 1
    reason = _rows(tmp_path / "out")[0]["reason"]
    assert "label" in reason and "a mask stored as 0/255? pass --nonzero" in reason and "--labels" not in reason
    assert _run(*folders, "--nonzero") == 0
    expected = monai_reference_metrics(_mask(1), _mask(0), SPACING)
    assert float(_rows(tmp_path / "out")[0]["Dice"]) == pytest.approx(expected["Dice"], abs=1e-6)
    capsys.readouterr()
    assert _run(*folders, "--labels", "1") == 0
    row = _rows(tmp_path / "out")[0]
    assert row["empty"] == "label" and "label has no voxel of label(s) 1" in row["notes"]
    assert "label has label value(s) 255 not requested with --labels" in row["notes"]
    assert "label value(s) 255 not requested" in capsys.readouterr().out


def test_multi_label_hint_lists_the_values(tmp_path):
    label = _mask(0).astype(np.uint8)
    label[_mask(2) & ~_mask(0)] = 2
    _save(label, LPS, tmp_path / "label" / "a.nii.gz")
    _save(_mask(0).astype(np.uint8), LPS, tmp_path / "pred" / "a.nii.gz")
    assert _run("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--out", tmp_path / "out") == 1
    assert "a multi-label file? pass --labels with the values to score (here 1, 2)" in _rows(tmp_path / "out")[0]["reason"]


def test_nnunet_channel_files_and_hidden_files_are_skipped(tmp_path):
    """nnU-Net keeps ``case_0000.nii.gz`` images next to ``case.nii.gz`` segmentations; MSD archives unpacked on
    macOS carry ``._case.nii.gz`` AppleDouble files."""
    for case in ("la_003", "la_004"):
        _save(_mask(0).astype(np.uint8), LPS, tmp_path / "labels" / f"{case}.nii.gz")
        _save((_mask(1) * 300).astype(np.int16), LPS, tmp_path / "labels" / f"{case}_0000.nii.gz")
        _save(_mask(1).astype(np.uint8), LPS, tmp_path / "preds" / f"{case}.nii.gz")
        (tmp_path / "labels" / f"._{case}.nii.gz").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
    (tmp_path / "preds" / ".la_005.nii.gz").write_bytes(b"junk")
    assert _run("--pred", tmp_path / "preds", "--label", tmp_path / "labels", "--out", tmp_path / "out") == 0
    rows = _rows(tmp_path / "out")
    assert [r["case"] for r in rows] == ["la_003", "la_004"] and {r["status"] for r in rows} == {"ok"}


def test_totalsegmentator_layout_is_found_recursively(tmp_path):
    """TotalSegmentator writes ``<case>/<structure>.nii.gz``; its data set keeps ``<case>/ct.nii.gz`` and
    ``<case>/segmentations/<structure>.nii.gz``. The structures no prediction has (``ct``) are left out; a missing
    prediction says exactly what was looked for."""
    for case in ("s0001", "s0002", "s0003"):
        _save((_mask(0) * 200).astype(np.int16), LPS, tmp_path / "data" / case / "ct.nii.gz")
        _save(_mask(0).astype(np.uint8), LPS, tmp_path / "data" / case / "segmentations" / "aorta.nii.gz")
        if case != "s0003":
            _save(_mask(1).astype(np.uint8), LPS, tmp_path / "ts" / case / "aorta.nii.gz")
    folders = ("--pred", tmp_path / "ts", "--label", tmp_path / "data")
    assert _run(*folders, "--out", tmp_path / "out") == 2  # not recursive: the files are in subfolders
    assert _run(*folders, "--recursive", "--out", tmp_path / "out") == 1
    rows = _rows(tmp_path / "out")
    assert [(r["case"], r["status"]) for r in rows] == [("s0001/aorta", "ok"), ("s0002/aorta", "ok"), ("s0003/aorta", "failed")]
    assert rows[2]["reason"] == (
        f"no prediction file for case 's0003/aorta' (label '{tmp_path / 'data' / 's0003' / 'segmentations' / 'aorta.nii.gz'}'); "
        f"looked for 'aorta.nii.gz' (or 'aorta.nii', or with a role suffix such as '_pred') in a folder 's0003' of "
        f"'{tmp_path / 'ts'}' and its subfolders."
    )
    # predictions kept inside the data set's folder are not taken for labels
    (tmp_path / "ts").rename(tmp_path / "data" / "predictions")
    assert _run("--pred", tmp_path / "data" / "predictions", "--label", tmp_path / "data", "--recursive", "--out", tmp_path / "out") == 1
    assert [(r["case"], r["status"]) for r in _rows(tmp_path / "out")] == [(r["case"], r["status"]) for r in rows]


def test_missing_prediction_says_what_was_looked_for_and_no_files_hints_recursive(tmp_path, capsys):
    for case in ("case_0", "case_1"):
        _save(_mask(0).astype(np.uint8), LPS, tmp_path / "label" / f"{case}_label.nii.gz")
    _save(_mask(0).astype(np.uint8), LPS, tmp_path / "pred" / "case_0_pred.nii.gz")
    assert _run("--pred", tmp_path / "pred", "--label", tmp_path / "label", "--out", tmp_path / "out") == 1
    assert _rows(tmp_path / "out")[1]["reason"].endswith(
        f"looked for 'case_1.nii.gz' (or 'case_1.nii', or with a role suffix such as 'case_1_pred.nii.gz') in "
        f"'{tmp_path / 'pred'}'."
    )
    nested = tmp_path / "nested"
    _save(_mask(0).astype(np.uint8), LPS, nested / "p" / "s1" / "s1_seg.nii.gz")
    _save(_mask(0).astype(np.uint8), LPS, nested / "l" / "s1" / "s1_seg.nii.gz")
    capsys.readouterr()
    assert _run("--pred", nested / "p", "--label", nested / "l") == 2
    assert "the files are in subfolders: pass --recursive" in capsys.readouterr().err


def test_pairs_lists_with_nnunet_columns_and_nnunet_summary_json(tmp_path):
    """nnU-Net names its columns ``prediction_file``/``reference_file``; its ``summary.json`` lists the pairs."""
    for case in ("a", "b"):
        _save(_mask(0).astype(np.uint8), LPS, tmp_path / "gt" / f"{case}.nii.gz")
        _save(_mask(1).astype(np.uint8), LPS, tmp_path / "pr" / f"{case}.nii.gz")
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prediction_file", "reference_file"])
        writer.writerows([[f"pr/{c}.nii.gz", f"gt/{c}.nii.gz"] for c in ("a", "b")])
    summary = {"metric_per_case": [{"prediction_file": str(tmp_path / "pr" / f"{c}.nii.gz"),
                                    "reference_file": str(tmp_path / "gt" / f"{c}.nii.gz"), "metrics": {}} for c in ("a", "b")],
               "mean": {}, "foreground_mean": {}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    dice = []
    for listing in ("pairs.csv", "summary.json"):
        assert _run("--pairs", tmp_path / listing, "--out", tmp_path / listing.replace(".", "_")) == 0
        rows = _rows(tmp_path / listing.replace(".", "_"))
        assert [r["case"] for r in rows] == ["a", "b"]
        dice.append([r["Dice"] for r in rows])
    assert dice[0] == dice[1]
