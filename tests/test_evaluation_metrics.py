"""The evaluation metrics against their references: MONAI's metric functions, skimage's skeleton, scipy's labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_hausdorff_distance, compute_iou
from scipy import ndimage
from skimage.morphology import skeletonize

from pipeline.evaluation import SparseMask, binary_metrics, empty_flag, monai_reference_metrics
from pipeline.evaluation.metrics import _quantile_like_torch, betti_numbers, skeleton
from pipeline.phantoms import PhantomConfig, make_phantom

REFERENCE_KEYS = ("Dice", "HD95_mm", "ASSD_mm", "NSD", "clDice", "beta0_pred", "beta0_ref", "beta0_error")


def _blobs(shape, n, seed, radius=(1.5, 4.0)):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(n):
        centre = rng.uniform(0, np.asarray(shape) - 1)
        mask |= ((grid - centre) ** 2).sum(-1) <= rng.uniform(*radius) ** 2
    return mask


def _vessel_pair(seed: int, shape=(40, 40, 24), spacing=(0.4, 0.4, 0.6)):
    label = make_phantom(PhantomConfig(shape=shape, spacing=spacing), np.random.default_rng(seed)).label.astype(bool)
    pred = np.roll(label, 1, axis=0)
    pred[:, :, : shape[2] // 4] = ndimage.binary_erosion(pred[:, :, : shape[2] // 4])
    pred |= _blobs(shape, 2, seed + 100, radius=(1.0, 2.0))
    return pred, label


def _assert_matches_reference(pred, label, spacing, tolerance_mm=1.0):
    ours = binary_metrics(pred, label, spacing, tolerance_mm)
    ref = monai_reference_metrics(pred, label, spacing, tolerance_mm)
    for key in REFERENCE_KEYS:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    return ours


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_blobs_match_monai(seed):
    pred, label = _blobs((30, 28, 26), 6, seed), _blobs((30, 28, 26), 6, seed + 50)
    _assert_matches_reference(pred, label, (1.0, 1.0, 1.0))


@pytest.mark.parametrize("spacing", [(0.4, 0.4, 0.6), (0.35, 0.5, 1.25)])
def test_vessel_phantoms_match_monai_with_anisotropic_spacing(spacing):
    pred, label = _vessel_pair(3, spacing=spacing)
    ours = _assert_matches_reference(pred, label, spacing, tolerance_mm=0.5)
    assert 0.3 < ours["Dice"] < 0.95 and ours["HD95_mm"] > 0 and ours["beta0_pred"] > ours["beta0_ref"]


def test_masks_on_the_volume_border_match_monai():
    """The border counts as background for the surface (MONAI crops with a margin and pads with zeros)."""
    pred, label = np.zeros((12, 10, 8), bool), np.zeros((12, 10, 8), bool)
    pred[:5, :, :] = True
    label[:7, 2:, 3:] = True
    _assert_matches_reference(pred, label, (0.7, 0.5, 1.1))


def test_iou_precision_recall_match_definitions():
    pred, label = _vessel_pair(5)
    ours = binary_metrics(pred, label, (0.4, 0.4, 0.6), metrics=["IoU"])
    iou = compute_iou(torch.from_numpy(pred)[None, None].float(), torch.from_numpy(label)[None, None].float())
    assert ours["IoU"] == pytest.approx(float(iou.item()), abs=1e-6)
    tp = np.count_nonzero(pred & label)
    assert ours["Precision"] == pytest.approx(tp / pred.sum()) and ours["Recall"] == pytest.approx(tp / label.sum())
    assert ours["VolumeDiff_ml"] == pytest.approx((pred.sum() - label.sum()) * 0.4 * 0.4 * 0.6 / 1000)
    assert ours["TN"] == pred.size - np.count_nonzero(pred | label)


def test_plain_hausdorff_matches_monai():
    pred, label = _vessel_pair(6)
    yp, y = (torch.from_numpy(m)[None, None].float() for m in (pred, label))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        hd = compute_hausdorff_distance(yp, y, include_background=True, spacing=[0.4, 0.4, 0.6])
    assert binary_metrics(pred, label, (0.4, 0.4, 0.6), metrics=["HD_mm"])["HD_mm"] == pytest.approx(float(hd), abs=1e-6)


def test_percentile_reproduces_torch_quantile():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 1000, 12345):
        values = (rng.gamma(2.0, 1.5, n)).astype(np.float32)
        for q in (0.5, 0.95, 0.99):
            assert _quantile_like_torch(values.copy(), q) == float(torch.quantile(torch.from_numpy(values), q))


def test_empty_conventions():
    shape, spacing = (16, 16, 16), (0.5, 0.5, 0.5)
    empty, full = np.zeros(shape, bool), _blobs(shape, 2, 4)
    both = binary_metrics(empty, empty, spacing)
    assert (both["Dice"], both["clDice"], both["NSD"], both["HD95_mm"], both["ASSD_mm"]) == (1.0, 1.0, 1.0, 0.0, 0.0)
    assert empty_flag(both["n_pred"], both["n_ref"]) == "both"
    for pred, label, flag in ((empty, full, "pred"), (full, empty, "label")):
        one = binary_metrics(pred, label, spacing)
        assert (one["Dice"], one["clDice"], one["NSD"], one["Precision"], one["Recall"]) == (0.0, 0.0, 0.0, 0.0, 0.0)
        assert np.isinf(one["HD95_mm"]) and np.isinf(one["ASSD_mm"]) and np.isinf(one["HD_mm"])
        assert empty_flag(one["n_pred"], one["n_ref"]) == flag
        # MONAI agrees on Dice and NSD and gives NaN (HD95) / inf (ASSD): we report inf for both and flag the case
        ref = monai_reference_metrics(pred, label, spacing)
        assert (ref["Dice"], ref["NSD"]) == (0.0, 0.0) and np.isnan(ref["HD95_mm"]) and np.isinf(ref["ASSD_mm"])


def test_skeleton_per_component_equals_whole_volume_skeleton():
    pred, _ = _vessel_pair(8, shape=(48, 48, 32))
    pred |= _blobs(pred.shape, 4, 9)
    ours = np.zeros(pred.shape, bool)
    ours[tuple(skeleton(SparseMask.from_dense(pred)).coords.T)] = True
    np.testing.assert_array_equal(ours, skeletonize(pred))


def test_components_and_edges_match_scipy():
    mask = _blobs((20, 22, 18), 9, 11, radius=(0.8, 2.5))
    sparse = SparseMask.from_dense(mask)
    n, labels = sparse.components()
    ref, n_ref = ndimage.label(mask, np.ones((3, 3, 3)))
    assert n == n_ref
    # the same partition of the voxels, whatever the numbering
    assert len(set(zip(labels.tolist(), ref[tuple(sparse.coords.T)].tolist()))) == n
    edges = np.zeros(mask.shape, bool)
    edges[tuple(sparse.edges().coords.T)] = True
    np.testing.assert_array_equal(edges, mask ^ ndimage.binary_erosion(mask))


def test_betti_numbers_of_known_shapes():
    grid = np.indices((20, 20, 12)).transpose(1, 2, 3, 0) - np.array([9.5, 9.5, 5.5])
    ring = np.hypot(np.hypot(grid[..., 0], grid[..., 1]) - 5.5, grid[..., 2]) < 2.2  # a torus: one tunnel
    assert betti_numbers(SparseMask.from_dense(ring)) == (1, 1, 0)
    shell = np.zeros((9, 9, 9), bool)
    shell[1:8, 1:8, 1:8] = True
    shell[3:6, 3:6, 3:6] = False  # a hollow cube: one cavity
    assert betti_numbers(SparseMask.from_dense(shell)) == (1, 0, 1)
    two = binary_metrics(ring, np.pad(shell, ((0, 11), (0, 11), (0, 3))), (1, 1, 1), betti1=True)
    assert (two["beta1_pred"], two["beta1_ref"], two["beta1_error"]) == (1.0, 0.0, 1.0)


def test_bad_arguments_name_the_value():
    mask = np.zeros((8, 8, 8), bool)
    with pytest.raises(ValueError, match="same shape"):
        binary_metrics(mask, np.zeros((8, 8, 7), bool), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing must be three positive"):
        binary_metrics(mask, mask, (1, 0, 1))
    with pytest.raises(ValueError, match="unknown metric.*valid choices"):
        binary_metrics(mask, mask, (1, 1, 1), metrics=["HD99"])


def test_fortran_ordered_arrays_give_the_same_scores():
    """nibabel returns Fortran-ordered arrays; the voxel lists (and every score) must not depend on memory order."""
    pred, label = _vessel_pair(12)
    c_order = binary_metrics(pred, label, (0.4, 0.4, 0.6))
    assert binary_metrics(np.asfortranarray(pred), np.asfortranarray(label), (0.4, 0.4, 0.6)) == c_order
    a, b = SparseMask.from_dense(label), SparseMask.from_dense(np.asfortranarray(label))
    np.testing.assert_array_equal(a.keys, b.keys)
    np.testing.assert_array_equal(a.coords, b.coords)


def test_large_distances_match_monai_to_float32_rounding():
    """Far-apart masks (distances near 30 mm): MONAI averages the ASSD in float32, we in float64."""
    shape, spacing = (80, 60, 30), (0.8, 0.8, 1.7)
    pred = _blobs(shape, 6, 9, radius=(1.0, 3.0))
    label = np.roll(_blobs(shape, 6, 10, radius=(1.0, 3.0)), 38, axis=0)
    ours = binary_metrics(pred, label, spacing)
    ref = monai_reference_metrics(pred, label, spacing)
    assert ref["ASSD_mm"] > 10
    assert ours["ASSD_mm"] == pytest.approx(ref["ASSD_mm"], rel=1e-7)
    for key in ("Dice", "HD95_mm", "NSD", "clDice"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key


def test_a_volume_one_voxel_deep_is_skeletonised_like_skimage_does():
    """skimage thins a (1, H, W) volume as a 2-D image; the per-component skeleton must agree with it."""
    rng = np.random.default_rng(3)
    label = ndimage.binary_dilation(rng.random((1, 48, 64)) > 0.97, iterations=2)
    pred = np.roll(label, 2, axis=2)
    _assert_matches_reference(pred, label, (0.5, 0.5, 0.5))
