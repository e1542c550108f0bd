"""The committed data_samples/ are what the generator makes, and their datalist is consistent."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.data import check_items, load_datalist
from pipeline.phantoms import CCTAConfig, best_threshold_dice, make_ccta_phantom

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"


def test_datalist_lists_every_pair_once():
    content = json.loads((SAMPLES / "dataset.json").read_text())
    items = [it for split in ("training", "validation", "test") for it in load_datalist(SAMPLES, split)]
    check_items(items)
    assert len({it["image"] for it in items}) == len(items) == 10
    assert content["numTraining"] == len(content["training"]) + len(content["validation"])
    assert content["numTest"] == len(content["test"])
    on_disk = sorted(p.name for p in SAMPLES.glob("*_image.nii.gz"))
    assert sorted(Path(it["image"]).name for it in items) == on_disk


def test_samples_regenerate_from_their_seed():
    """``vessel-pipeline make-phantoms --kind ccta --crop 96 96 80 --out data_samples --num 10 --seed 0``
    reproduces the committed files (case 0 checked)."""
    meta = json.loads((SAMPLES / "dataset.json").read_text())["generator"]
    assert meta["kind"] == "ccta"
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["settings"].items()}
    phantom = make_ccta_phantom(CCTAConfig(**settings), np.random.default_rng([meta["seed"], 0]))
    image = nib.load(SAMPLES / "coronary_000_image.nii.gz")
    label = nib.load(SAMPLES / "coronary_000_label.nii.gz")
    np.testing.assert_array_equal(np.asarray(label.dataobj), phantom.label)
    # 1 HU of slack: the image goes through float filters whose last bit may differ between scipy builds
    np.testing.assert_allclose(np.asarray(image.dataobj), phantom.image, atol=1)
    np.testing.assert_allclose(image.affine, phantom.affine, atol=1e-6)


def test_samples_are_not_a_threshold_problem():
    """No case of data_samples/ is segmented by its best global HU threshold (Dice <= 0.5; see docs/data.md)."""
    for path in sorted(SAMPLES.glob("*_image.nii.gz")):
        image = np.asarray(nib.load(path).dataobj)
        label = np.asarray(nib.load(str(path).replace("_image", "_label")).dataobj)
        assert label.sum() > 1000, path.name
        assert best_threshold_dice(image, label)[0] <= 0.5, path.name
