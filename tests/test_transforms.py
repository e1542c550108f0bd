"""Tests of the MONAI transform chains (transforms.chains) on small synthetic phantoms written as NIfTI."""

from __future__ import annotations

import pickle

import nibabel as nib
import numpy as np
import pytest
import torch

from pipeline.phantoms import PhantomConfig, phantom_affine, write_nifti, write_phantom_dataset
from transforms import (
    DEFAULT_HU_WINDOW,
    AboveThreshold,
    get_inference_transforms,
    get_post_transforms,
    get_preprocessing,
    get_train_transforms,
    get_val_transforms,
)

CONFIG = PhantomConfig(shape=(48, 48, 32), spacing=(0.4, 0.4, 0.6))
#: lumen threshold between partial-volume wall voxels and tissue; half-integer so no integer HU sits on it
LUMEN_HU = 160.5


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Two phantom image/label pairs on disk (LPS affine: i and j flipped with respect to RAS)."""
    path = write_phantom_dataset(tmp_path_factory.mktemp("phantoms"), n_cases=2, config=CONFIG, seed=5)
    folder = path.parent
    return [{key: str(folder / f"coronary_{i:03d}_{key}.nii.gz") for key in ("image", "label")} for i in range(2)]


@pytest.fixture(scope="module")
def padded_case(cases, tmp_path_factory):
    """Case 0 with 12 slabs of air (-1000 HU) appended along i and j, so the foreground crop really crops."""
    image = nib.load(cases[0]["image"])
    array = np.pad(np.asanyarray(image.dataobj), ((0, 12), (0, 12), (0, 0)), constant_values=-1000)
    path = write_nifti(array, image.affine, tmp_path_factory.mktemp("padded") / "padded_image.nii.gz")
    return {"image": str(path)}


def _window(hu: float, window=DEFAULT_HU_WINDOW) -> float:
    return (hu - window[0]) / (window[1] - window[0])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _lumen_logits(preprocessed: torch.Tensor) -> torch.Tensor:
    """Logits from the windowed image itself: large positive where it is brighter than LUMEN_HU."""
    return 50.0 * (preprocessed.as_tensor() - _window(LUMEN_HU))


def _nifti(path: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(path)
    return np.asanyarray(img.dataobj), img.affine


# --- argument checks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hu_window", [(650.0, -150.0), (100.0, 100.0), (0.0,), (-150.0, 650.0, 0.0), (-150.0, 0.0, 650.0, 1.0)]
)
def test_bad_hu_window_is_rejected(hu_window):
    with pytest.raises(ValueError, match="hu_window"):
        get_preprocessing(hu_window=hu_window)
    with pytest.raises(ValueError, match="hu_window"):
        get_val_transforms(hu_window=hu_window)


@pytest.mark.parametrize("pixdim", [(0.5, 0.5), (0.5, 0.0, 0.5), (-0.5, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)])
def test_bad_pixdim_is_rejected(pixdim):
    with pytest.raises(ValueError, match="pixdim"):
        get_inference_transforms(pixdim=pixdim)
    with pytest.raises(ValueError, match="pixdim"):
        get_train_transforms(pixdim=pixdim)


@pytest.mark.parametrize("num_samples", [0, -1])
def test_num_samples_below_one_is_rejected(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        get_train_transforms(num_samples=num_samples)


@pytest.mark.parametrize(("pos", "neg"), [(0.0, 0.0), (-1.0, 1.0), (1.0, -0.5)])
def test_bad_pos_neg_ratio_is_rejected(pos, neg):
    with pytest.raises(ValueError, match="pos and neg"):
        get_train_transforms(pos=pos, neg=neg)


@pytest.mark.parametrize("keys", [(), ("label",), ("label", "image"), ("img", "label")])
def test_keys_must_start_with_image(keys):
    with pytest.raises(ValueError, match="keys must start with 'image'"):
        get_preprocessing(keys=keys)


def test_above_threshold_selects_and_pickles():
    """The crop's select_fn is a strict threshold and survives pickling (DataLoader workers)."""
    fn = pickle.loads(pickle.dumps(AboveThreshold(0.25)))
    x = torch.tensor([0.0, 0.25, 0.26, 1.0])
    assert fn(x).tolist() == [False, False, True, True]
    assert AboveThreshold()(np.array([-1.0, 0.0, 0.1])).tolist() == [False, False, True]


# --- validation chain -------------------------------------------------------------------------------------------------


def test_val_chain_native_spacing_reorients_exactly(cases):
    """pixdim=None keeps the native spacing; the LPS volume is flipped to RAS, voxel for voxel, and windowed."""
    out = get_val_transforms()(dict(cases[0]))
    image, label = out["image"], out["label"]
    hu, _ = _nifti(cases[0]["image"])
    truth, _ = _nifti(cases[0]["label"])
    assert image.shape == label.shape == (1, *CONFIG.shape)
    assert image.dtype == label.dtype == torch.float32
    expected_affine = np.diag([*CONFIG.spacing, 1.0])
    expected_affine[:3, 3] = [-9.4, -9.4, -120.0]  # the RAS corner of the LPS-centred phantom
    np.testing.assert_allclose(image.affine.numpy(), expected_affine, atol=1e-4)
    np.testing.assert_allclose(label.affine.numpy(), expected_affine, atol=1e-4)
    assert np.array_equal(label[0].numpy(), truth[::-1, ::-1, :].astype(np.float32))
    windowed = np.clip((hu[::-1, ::-1, :] - DEFAULT_HU_WINDOW[0]) / np.diff(DEFAULT_HU_WINDOW), 0.0, 1.0)
    np.testing.assert_allclose(image[0].numpy(), windowed, atol=1e-6)


@pytest.mark.parametrize("pixdim", [(0.5, 0.5, 0.5), (0.6, 0.6, 0.8)])
def test_val_chain_resamples_to_ras_pixdim(cases, pixdim):
    """RAS affine (positive diagonal = pixdim), same grid for image and label, image in [0, 1], binary label."""
    out = get_val_transforms(pixdim=pixdim)(dict(cases[1]))
    image, label = out["image"], out["label"]
    assert image.shape == label.shape
    assert image.ndim == 4 and image.shape[0] == 1
    affine = image.affine.numpy()
    np.testing.assert_allclose(np.diag(affine)[:3], pixdim, atol=1e-6)
    np.testing.assert_allclose(affine[:3, :3], np.diag(pixdim), atol=1e-6)
    np.testing.assert_allclose(label.affine.numpy(), affine, atol=1e-6)
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    # the resampled grid covers the original field of view (to within one output voxel)
    extent = (np.asarray(CONFIG.shape) - 1) * np.asarray(CONFIG.spacing)
    covered = (np.asarray(image.shape[1:]) - 1) * np.asarray(pixdim)
    assert np.all(np.abs(covered - extent) <= np.asarray(pixdim) + 1e-6)
    assert image.dtype == label.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert set(torch.unique(label).tolist()) == {0.0, 1.0}
    # nearest-neighbour label keeps a vessel volume close to the original one (in mm^3)
    truth, _ = _nifti(cases[1]["label"])
    original_mm3 = truth.sum() * np.prod(CONFIG.spacing)
    resampled_mm3 = float(label.sum()) * np.prod(pixdim)
    assert resampled_mm3 == pytest.approx(original_mm3, rel=0.25)


# --- training chain ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("augment", [True, False])
def test_train_chain_yields_num_samples_patches(cases, augment):
    """num_samples float32 patches of patch_size; binary labels; the vessels in each patch are where it is bright."""
    chain = get_train_transforms(patch_size=(24, 24, 16), num_samples=3, pos=1.0, neg=0.0, augment=augment)
    chain.set_random_state(seed=0)
    patches = chain(dict(cases[0]))
    assert isinstance(patches, list) and len(patches) == 3
    for patch in patches:
        image, label = patch["image"], patch["label"]
        assert image.shape == label.shape == (1, 24, 24, 16)
        assert image.dtype == label.dtype == torch.float32
        assert set(torch.unique(label).tolist()) <= {0.0, 1.0}
        # pos only: each patch is centred on a vessel voxel
        assert float(label.sum()) > 0
        # image and label were flipped/rotated together: lumen much brighter than background
        vessel = image[label > 0].mean()
        background = image[label == 0].mean()
        assert float(vessel - background) > 0.2
        if not augment:
            assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_train_chain_is_deterministic_for_a_seed(cases):
    """Two chains with the same random state give identical patches, augmentation included."""
    outputs = []
    for _ in range(2):
        chain = get_train_transforms(patch_size=(16, 16, 16), num_samples=4, pixdim=(0.5, 0.5, 0.5))
        chain.set_random_state(seed=123)
        outputs.append(chain(dict(cases[1])))
    for a, b in zip(*outputs):
        assert torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
        assert torch.equal(a["label"].as_tensor(), b["label"].as_tensor())
    assert len({tuple(p["image"].flatten()[:64].tolist()) for p in outputs[0]}) > 1  # the patches differ


# --- inference chain and its inverse ----------------------------------------------------------------------------------


def test_inference_chain_on_image_only(cases):
    """The inference chain needs no label; it resamples to pixdim in RAS and windows to [0, 1]."""
    out = get_inference_transforms(pixdim=(0.5, 0.5, 0.5))({"image": cases[0]["image"]})
    assert "label" not in out
    image = out["image"]
    assert image.ndim == 4 and image.shape[0] == 1 and image.dtype == torch.float32
    np.testing.assert_allclose(image.affine.numpy()[:3, :3], np.diag([0.5, 0.5, 0.5]), atol=1e-6)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_inference_chain_without_pixdim_keeps_native_spacing(cases):
    out = get_inference_transforms(pixdim=None)({"image": cases[0]["image"]})
    image = out["image"]
    assert image.shape == (1, *CONFIG.shape)
    np.testing.assert_allclose(np.abs(np.diag(image.affine.numpy())[:3]), CONFIG.spacing, atol=1e-6)


def test_inverse_restores_original_grid_and_writes_mask(cases, tmp_path):
    """Resample to 0.5 mm in RAS, threshold, invert: the mask is back on the LPS grid, written as uint8 NIfTI,
    and it recovers the vessels of the label file."""
    image_path = cases[0]["image"]
    _, original_affine = _nifti(image_path)
    truth, _ = _nifti(cases[0]["label"])
    pre = get_inference_transforms(pixdim=(0.5, 0.5, 0.5))
    data = pre({"image": image_path})
    assert tuple(data["image"].shape[1:]) != CONFIG.shape  # the grid really changed
    data["pred"] = _lumen_logits(data["image"])

    out = get_post_transforms(pre, output_dir=str(tmp_path))(data)
    pred = out["pred"]
    assert tuple(pred.shape) == (1, *CONFIG.shape)
    np.testing.assert_allclose(pred.affine.numpy(), original_affine, atol=1e-4)
    assert set(torch.unique(pred).tolist()) <= {0.0, 1.0}
    assert _dice(pred[0].numpy(), truth) > 0.75

    saved = tmp_path / "coronary_000_image_pred.nii.gz"
    assert [p.name for p in tmp_path.iterdir()] == [saved.name]
    mask, affine = _nifti(str(saved))
    assert mask.shape == CONFIG.shape
    assert mask.dtype == np.uint8
    assert nib.load(saved).get_data_dtype() == np.uint8
    np.testing.assert_allclose(affine, original_affine, atol=1e-4)
    np.testing.assert_allclose(affine, phantom_affine(CONFIG.shape, CONFIG.spacing), atol=1e-4)
    assert np.array_equal(mask, pred[0].numpy().astype(np.uint8))
    assert _dice(mask, truth) > 0.75


def test_inverse_at_native_spacing_is_exact(cases):
    """Without resampling, the inverted mask equals thresholding the original HU volume voxel for voxel
    (so the RAS flip was undone exactly)."""
    hu, original_affine = _nifti(cases[1]["image"])
    pre = get_inference_transforms(pixdim=None)
    data = pre({"image": cases[1]["image"]})
    data["pred"] = _lumen_logits(data["image"])
    pred = get_post_transforms(pre)(data)["pred"]
    np.testing.assert_allclose(pred.affine.numpy(), original_affine, atol=1e-4)
    assert np.array_equal(pred[0].numpy().astype(bool), hu > LUMEN_HU)


def test_inverse_undoes_foreground_crop(padded_case, tmp_path):
    """Air around the body is cropped away and the inverse pads the mask back (background) to the input grid."""
    hu, original_affine = _nifti(padded_case["image"])
    pre = get_inference_transforms(pixdim=None)
    data = pre(dict(padded_case))
    cropped = tuple(data["image"].shape[1:])
    assert cropped[0] < hu.shape[0] and cropped[1] < hu.shape[1]
    assert cropped[0] >= CONFIG.shape[0] and cropped[1] >= CONFIG.shape[1]
    data["pred"] = _lumen_logits(data["image"])
    out = get_post_transforms(pre, output_dir=str(tmp_path), output_postfix="mask")(data)
    pred = out["pred"]
    assert tuple(pred.shape) == (1, *hu.shape)
    np.testing.assert_allclose(pred.affine.numpy(), original_affine, atol=1e-4)
    assert np.array_equal(pred[0].numpy().astype(bool), hu > LUMEN_HU)
    mask, affine = _nifti(str(tmp_path / "padded_image_mask.nii.gz"))
    assert mask.shape == hu.shape and mask.dtype == np.uint8
    np.testing.assert_allclose(affine, original_affine, atol=1e-4)
    assert np.array_equal(mask.astype(bool), hu > LUMEN_HU)


def test_post_threshold_is_applied_to_probabilities(cases):
    """A higher probability threshold keeps a subset of the voxels of a lower one."""
    pre = get_inference_transforms(pixdim=None)
    masks = []
    for threshold in (0.5, 0.9):
        data = pre({"image": cases[0]["image"]})
        data["pred"] = _lumen_logits(data["image"])
        masks.append(get_post_transforms(pre, threshold=threshold)(data)["pred"][0].numpy().astype(bool))
    low, high = masks
    assert high.sum() < low.sum()
    assert not np.any(high & ~low)
