"""The command line as a user runs it: make-phantoms; train (a thin front over the bundle's train.json) killed with
SIGKILL and resumed bit for bit; infer and evaluate --checkpoint on the run folders of train and demo; bad input
stopped at set-up with one line and exit code 2, nothing left behind."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from pipeline.checkpoint import CheckpointStore, load_training_state
from pipeline.checkpoint.storage.manifest import read_manifest
from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 6
#: a two-level UNet on 16-voxel patches, one patch per volume: an epoch takes a fraction of a second
TINY = [
    "--patch-size", "16", "16", "16", "--device", "cpu", "--no-progress", "--val-interval", "3",
    "--set", "network_def#channels=[4,8,16]", "--set", "network_def#strides=[2,2]", "--set", "num_samples=1",
]


def _train_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    """Train for 6 epochs with the preprocessing cached on disk next to the run folder."""
    return ["-q", "train", "--dataset-dir", str(dataset), "--output-dir", str(out), "--epochs", str(EPOCHS), *TINY,
            "--checkpoint-strategy", "epoch", "--max-checkpoints", "2", "--set", "mlflow=false",
            "--cache", "disk", "--cache-dir", str(out.parent / f"{out.name}_cache"), *extra]


def _weights_digest(state: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    return digest.hexdigest()


def _final(run: Path) -> tuple[str, list[dict]]:
    """The final checkpoint's network digest and the history without wall times."""
    store = CheckpointStore(run / "checkpoints", "unet")
    entry = store.entries[-1]
    assert "final" in entry.reasons and entry.epoch == EPOCHS
    history = [{k: v for k, v in h.items() if k != "time_s"} for h in json.loads((run / "history.json").read_text())]
    return _weights_digest(load_training_state(store.path(entry))["network"]), history


@pytest.fixture(scope="module")
def straight(tiny_dataset, tmp_path_factory) -> Path:
    """An uninterrupted ``vessel-pipeline train``: 6 epochs, a checkpoint each epoch, 2 kept."""
    out = tmp_path_factory.mktemp("cli") / "straight"
    assert main(_train_args(tiny_dataset, out)) == 0
    return out


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


def test_train_killed_then_resumed_ends_with_the_same_weights_bit_for_bit(straight, tiny_dataset, tmp_path):
    """``python -m pipeline train`` killed with SIGKILL after its second epoch's checkpoint, then ``--resume auto``:
    the final weights, the history (losses, weights, validation) and the checkpoints kept equal the uninterrupted
    run's."""
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *_train_args(tiny_dataset, out)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest, deadline = out / "checkpoints" / "unet.manifest.json", time.monotonic() + 120
    while not any(e.epoch >= 2 for e in (read_manifest(manifest) or [])):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint of epoch 2 in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()
    killed_at = max(e.epoch for e in read_manifest(manifest))
    assert killed_at < EPOCHS and not (out / "model.pt").exists(), "the kill must land in the middle of the run"

    assert main(_train_args(tiny_dataset, out, "--resume", "auto")) == 0
    assert _final(out) == _final(straight)
    kept = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert kept == sorted(p.name for p in (straight / "checkpoints").glob("*.pt"))
    model, expected = (_weights_digest(torch.load(run / "model.pt", weights_only=True)) for run in (out, straight))
    assert model == expected


def test_epoch_strategy_keeps_the_newest_two_and_the_best(straight, tiny_dataset):
    """``--checkpoint-strategy epoch --max-checkpoints 2``: a checkpoint every epoch, the two newest kept, and the
    best-scored one (never evicted) when it is older; the run's config.json holds the options given (--cache disk
    with its --cache-dir, which holds the preprocessed training volumes)."""
    history = json.loads((straight / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert [h["checkpoint_reasons"] for h in history] == ["epoch"] * EPOCHS
    scored = [h for h in history if "val_mean_dice" in h]
    assert [h["epoch"] for h in scored] == [3, 6]
    best = max(scored, key=lambda h: (h["val_mean_dice"], -h["epoch"]))["epoch"]
    kept = {e.epoch for e in CheckpointStore(straight / "checkpoints", "unet").entries}
    assert kept == {EPOCHS - 1, EPOCHS, best}
    assert "final" in CheckpointStore(straight / "checkpoints", "unet").entries[-1].reasons
    config = json.loads((straight / "config.json").read_text())  # the config the run executed, overrides included
    assert (config["epochs"], config["checkpoint_strategy"], config["network_def"]["channels"]) == (EPOCHS, "epoch", [4, 8, 16])
    cache = straight.parent / "straight_cache"
    assert (config["cache"], config["cache_dir"]) == ("disk", str(cache))
    # --cache disk: one preprocessed entry per training volume, in the folder of the preprocessing's hash
    (folder,) = cache.iterdir()
    assert len(list(folder.glob("*.pt"))) == len(json.loads((tiny_dataset / "dataset.json").read_text())["training"])


def test_infer_and_evaluate_rebuild_the_run_from_its_config(straight, tiny_dataset, tmp_path, capsys):
    """``infer`` and ``evaluate --checkpoint`` on a run folder made by ``train`` (a non-default network, read from
    its config.json): predictions on each input's grid; the evaluation tool's Dice of them equals the checkpoint
    evaluation's."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    for case in ("coronary_003", "coronary_004"):
        shutil.copy(tiny_dataset / f"{case}_image.nii.gz", images)
        shutil.copy(tiny_dataset / f"{case}_label.nii.gz", labels)
    preds = tmp_path / "preds"
    assert main(["-q", "infer", "--checkpoint", str(straight), "--input", str(images), "--out", str(preds), "--device", "cpu"]) == 0
    assert f"coronary_004_image.nii.gz -> {preds / 'coronary_004_image_pred.nii.gz'}" in capsys.readouterr().out
    for case in ("coronary_003", "coronary_004"):
        pred, src = nib.load(preds / f"{case}_image_pred.nii.gz"), nib.load(images / f"{case}_image.nii.gz")
        assert pred.shape == src.shape and pred.get_data_dtype() == np.uint8
        np.testing.assert_allclose(pred.affine, src.affine, atol=1e-5)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1}

    assert main(["-q", "evaluate", "--pred", str(preds), "--label", str(labels), "--out", str(tmp_path / "ev")]) == 0
    with open(tmp_path / "ev" / "cases.csv", newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert main(["-q", "evaluate", "--checkpoint", str(straight / "model.pt"), "--dataset-dir", str(tiny_dataset),
                 "--split", "test", "--device", "cpu"]) == 0
    with open(straight / "evaluation" / "test" / "cases.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["case"] == "coronary_004_image"
    assert float(rows["coronary_004"]["Dice"]) == pytest.approx(float(row["Dice"]), abs=1e-6)


def test_demo_trains_with_the_bundle_then_scores_test_cases(tiny_dataset, tmp_path, capsys):
    """``demo`` is the bundle: train.json, then evaluate.json on the held-out list, the per-case table printed; its
    run folder serves ``infer`` and ``evaluate --checkpoint`` like any other."""
    out = tmp_path / "demo"
    args = ["-q", "demo", "--dataset-dir", str(tiny_dataset), "--output-dir", str(out), "--epochs", "1", *TINY, "--cache", "none"]
    assert main(args) == 0
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
    assert json.loads((out / "config.json").read_text())["cache"] == "none"

    # the demo's run folder reads like any training run: evaluate --checkpoint scores it to the same Dice
    assert main(["-q", "evaluate", "--checkpoint", str(out / "checkpoints"), "--dataset-dir", str(tiny_dataset),
                 "--device", "cpu", "--out", str(tmp_path / "again")]) == 0
    assert f"{case['metrics']['1']['Dice']:.4f}" in capsys.readouterr().out
    assert main(["-q", "infer", "--checkpoint", str(out), "--input", str(tiny_dataset / "coronary_004_image.nii.gz"),
                 "--out", str(tmp_path / "preds"), "--device", "cpu"]) == 0
    again = nib.load(tmp_path / "preds" / "coronary_004_image_pred.nii.gz")
    assert np.array_equal(np.asarray(again.dataobj), np.asarray(pred.dataobj))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "epochs must be an integer >= 1, got 0."),
        (["--patch-size", "30", "32", "32"], "patch_size [30, 32, 32] must be three sizes divisible by 4"),
        (["--resume", "lats"], "resume must be one of ['auto', 'best', 'last'] or a checkpoint file, got 'lats'."),
        (["--loss-schedule", "cosinus"], "unknown loss-weight schedule 'cosinus'; valid types:"),
        (["--loss-preset", "vessel_clDice"], "unknown loss preset 'vessel_clDice'; valid presets:"),
        (["--checkpoint-strategy", "bestest"], "bestest"),
        (["--set", "epoch=2"], "unknown bundle key(s) ['epoch'] ('epoch': did you mean 'epochs'?); valid keys:"),
        (["--device", "tpu"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'."),
        (["--loss-schedule-params", "[3]"], "--loss-schedule-params must be a JSON object"),
        (["--cache", "memory"], "cache must be one of auto, ram, disk, none, got 'memory'."),
        (["--cache", "disk", "--cache-dir", "DATASET/dataset.json/cache"], "/dataset.json/cache' cannot be written"),
    ],
)
def test_bad_overrides_stop_at_set_up_leaving_nothing(tiny_dataset, tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    extra = [arg.replace("DATASET", str(tiny_dataset)) for arg in extra]
    args = ["-q", "train", "--dataset-dir", str(tiny_dataset), "--output-dir", str(out), *TINY, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists(), "nothing is written before the settings are checked"


def test_an_earlier_run_is_never_replaced_silently(straight, tiny_dataset, tmp_path, capsys):
    """Training again into a run folder without --resume stops at set-up (the safe default) and changes nothing."""
    before = {p: p.stat().st_mtime_ns for p in straight.rglob("*") if p.is_file()}
    assert main(["-q", "train", "--dataset-dir", str(tiny_dataset), "--output-dir", str(straight), *TINY]) == 2
    assert "checkpoint(s) of an earlier run: continue it with resume='auto' (--resume auto)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in straight.rglob("*") if p.is_file()} == before


def test_bad_input_exits_2_with_one_line(tiny_dataset, tmp_path, capsys):
    assert main(["demo", "--dataset-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "demo")]) == 2
    assert capsys.readouterr().err == f"error: dataset folder '{tmp_path / 'nowhere'}' does not exist.\n"
    assert main(["infer", "--checkpoint", str(tmp_path / "none.pt"), "--input", str(tmp_path / "missing.nii.gz"),
                 "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: input '{tmp_path / 'missing.nii.gz'}' is neither a NIfTI file nor a folder.\n"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--dataset-dir", str(tiny_dataset)]) == 2
    assert capsys.readouterr().err.endswith(f"error: checkpoint '{tmp_path / 'none.pt'}' does not exist.\n")
    assert not (tmp_path / "demo").exists() and not (tmp_path / "out").exists() and not (tmp_path / "evaluation").exists()
