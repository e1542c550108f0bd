"""Bad data gives a clear error naming the file, before any training starts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.data import DatasetError, check_items, load_datalist
from pipeline.errors import SettingsError
from pipeline.workflows import resolve_device

#: a one-epoch training of a tiny network, without MLflow
TINY = ["--epochs", "1", "--no-progress", "--device", "cpu", "--set", "network_def#channels=[4,8]",
        "--set", "network_def#strides=[2]", "--set", "mlflow=false"]


def _train(dataset: Path, out: Path, *extra: str) -> int:
    return main(["-q", "train", "--dataset-dir", str(dataset), "--output-dir", str(out), *TINY, *extra])


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=f"dataset folder '{missing}' does not exist"):
        load_datalist(missing, "training")


def test_folder_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_datalist(f, "training")


def test_missing_datalist(tmp_path):
    with pytest.raises(DatasetError, match="dataset.json' not found"):
        load_datalist(tmp_path, "training")


def test_malformed_datalist(dataset_copy):
    (dataset_copy / "dataset.json").write_text("{ not json")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        load_datalist(dataset_copy, "training")


def test_unknown_and_empty_split(dataset_copy):
    with pytest.raises(DatasetError, match=r"has no list 'train'; it has: \['test', 'training', 'validation'\]"):
        load_datalist(dataset_copy, "train")
    content = json.loads((dataset_copy / "dataset.json").read_text())
    content["validation"] = []
    (dataset_copy / "dataset.json").write_text(json.dumps(content))
    with pytest.raises(DatasetError, match="'validation' list .* is empty"):
        load_datalist(dataset_copy, "validation")


def test_datalist_points_at_absent_file(dataset_copy, tmp_path, capsys):
    first = json.loads((dataset_copy / "dataset.json").read_text())["training"][0]["label"]
    (dataset_copy / first).unlink()
    with pytest.raises(DatasetError, match=f"label file '.*{Path(first).name}' does not exist"):
        load_datalist(dataset_copy, "training")
    out = tmp_path / "run"
    assert _train(dataset_copy, out) == 2
    assert Path(first).name in capsys.readouterr().err
    assert not out.exists(), "nothing is written before the data are checked"


def test_shape_mismatch_names_both_files(dataset_copy, tmp_path, capsys):
    items = load_datalist(dataset_copy, "training")
    label = nib.load(items[1]["label"])
    cropped = np.asarray(label.dataobj)[:, :, :-2]
    nib.save(nib.Nifti1Image(cropped, label.affine), items[1]["label"])
    pattern = f"image '{items[1]['image']}' has shape \\(48, 48, 32\\) but its label '{items[1]['label']}' has shape \\(48, 48, 30\\)"
    with pytest.raises(DatasetError, match=pattern):
        check_items(items)
    out = tmp_path / "run"
    assert _train(dataset_copy, out) == 2
    assert "has shape" in capsys.readouterr().err
    assert not out.exists()


def test_truncated_nifti(dataset_copy):
    items = load_datalist(dataset_copy, "validation")
    raw = Path(items[0]["image"]).read_bytes()
    Path(items[0]["image"]).write_bytes(raw[:200])
    with pytest.raises(DatasetError, match=f"'{items[0]['image']}' is not a readable NIfTI file"):
        check_items(items)


def test_not_a_nifti_at_all(dataset_copy):
    items = load_datalist(dataset_copy, "validation")
    with gzip.open(items[0]["label"], "wb") as f:
        f.write(b"hello, I am not an image")
    with pytest.raises(DatasetError, match="is not a readable NIfTI file"):
        check_items(items)


def test_four_d_volume(dataset_copy):
    items = load_datalist(dataset_copy, "validation")
    img = nib.load(items[0]["image"])
    data = np.stack([np.asarray(img.dataobj)] * 2, axis=-1)
    nib.save(nib.Nifti1Image(data, img.affine), items[0]["image"])
    with pytest.raises(DatasetError, match=r"has shape \(48, 48, 32, 2\); a 3-D volume is expected"):
        check_items(items)


def test_cli_reports_bad_input_with_exit_code(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(["-q", "train", "--dataset-dir", str(missing), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: dataset folder '{missing}' does not exist."


def test_label_must_be_binary(dataset_copy, tmp_path, capsys):
    items = load_datalist(dataset_copy, "training")
    label = nib.load(items[0]["label"])
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj) * 255, label.affine), items[0]["label"])
    with pytest.raises(DatasetError, match=rf"label '{items[0]['label']}' must hold only 0 and 1 .* values such as \[255\]"):
        check_items(items)
    assert _train(dataset_copy, tmp_path / "run") == 2
    assert "must hold only 0 and 1" in capsys.readouterr().err


def test_label_on_another_grid(dataset_copy):
    items = load_datalist(dataset_copy, "validation")
    label = nib.load(items[0]["label"])
    shifted = label.affine.copy()
    shifted[:3, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj), shifted), items[0]["label"])
    with pytest.raises(DatasetError, match="are on different grids \\(affines differ by up to 2 mm\\)"):
        check_items(items)


def test_entry_without_a_path(dataset_copy):
    content = json.loads((dataset_copy / "dataset.json").read_text())
    content["training"][1]["image"] = None
    (dataset_copy / "dataset.json").write_text(json.dumps(content))
    with pytest.raises(DatasetError, match="entry 1 of 'training' .*: image must be a file path, got None"):
        load_datalist(dataset_copy, "training")


def test_volumes_smaller_than_the_patch_are_padded(tmp_path):
    """A 40x40x20 dataset trains with 32x32x32 patches (padded), instead of failing inside the network."""
    from pipeline.phantoms import PhantomConfig, write_phantom_dataset

    write_phantom_dataset(tmp_path / "small", 3, PhantomConfig(shape=(40, 40, 20)), seed=2)
    assert _train(tmp_path / "small", tmp_path / "run", "--patch-size", "32", "32", "32", "--set", "num_samples=2") == 0
    assert (tmp_path / "run" / "model.pt").is_file()
    assert [h["epoch"] for h in json.loads((tmp_path / "run" / "history.json").read_text())] == [1]


@pytest.mark.parametrize("device", ["cudax", "gpu", "cuda:"])
def test_unknown_device_names(device):
    with pytest.raises(SettingsError, match=f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got '{device}'"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path, capsys):
    with pytest.raises(SettingsError, match="'cuda:1' asked for, but this torch sees 0 CUDA devices"):
        resolve_device("cuda:1")
    code = main(["-q", "evaluate", "--checkpoint", str(tmp_path / "x.pt"), "--device", "cuda"])
    assert code == 2 and "CUDA devices" in capsys.readouterr().err


def test_make_phantoms_bad_settings(tmp_path, capsys):
    assert main(["-q", "make-phantoms", "--out", str(tmp_path), "--spacing", "0", "1", "1"]) == 2
    assert "spacing must be three positive sizes in mm, got (0.0, 1.0, 1.0)" in capsys.readouterr().err
    assert main(["-q", "make-phantoms", "--out", str(tmp_path), "--shape", "12", "12", "8", "--trees", "4"]) == 2
    assert "ask for fewer --trees or a larger --shape" in capsys.readouterr().err
