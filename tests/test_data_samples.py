"""The committed data_samples/ are what the generator makes, and their datalist is consistent."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.data import check_items, load_datalist
from pipeline.phantoms import PhantomConfig, make_phantom

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
    """``vessel-pipeline make-phantoms --out data_samples --num 10 --seed 0`` reproduces the committed files."""
    meta = json.loads((SAMPLES / "dataset.json").read_text())["generator"]
    config = PhantomConfig(shape=tuple(meta["shape"]), spacing=tuple(meta["spacing"]), n_trees=meta["n_trees"])
    phantom = make_phantom(config, np.random.default_rng([meta["seed"], 0]))
    image = nib.load(SAMPLES / "coronary_000_image.nii.gz")
    label = nib.load(SAMPLES / "coronary_000_label.nii.gz")
    np.testing.assert_array_equal(np.asarray(label.dataobj), phantom.label)
    # 1 HU of slack: the image goes through float filters whose last bit may differ between scipy builds
    np.testing.assert_allclose(np.asarray(image.dataobj), phantom.image, atol=1)
    np.testing.assert_allclose(image.affine, phantom.affine, atol=1e-6)
