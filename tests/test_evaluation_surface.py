"""Surface distances: the distance-transform path gives the KD-tree path's values, and ``auto`` chooses by cost."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from pipeline.evaluation import SparseMask, binary_metrics, monai_reference_metrics
from pipeline.evaluation.surface import surface_distances, use_distance_transform

SPACINGS = [(0.35, 0.5, 1.25), (0.438, 0.438, 0.529)]


def _edges(mask: np.ndarray) -> SparseMask:
    return SparseMask.from_dense(mask).edges()


def _both(pred: np.ndarray, label: np.ndarray, spacing):
    p, r = _edges(pred), _edges(label)
    return surface_distances(p, r, spacing, method="kdtree"), surface_distances(p, r, spacing, method="edt")


def _assert_same(kd, edt):
    for a, b in zip(kd, edt):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        # the same voxel centres and float64 arithmetic; only a tie between two nearest voxels could round differently
        np.testing.assert_allclose(b, a, rtol=2.0**-23, atol=0)


def _random_pair(seed: int, shape=(18, 15, 11)):
    rng = np.random.default_rng(seed)
    pred = rng.random(shape) < rng.uniform(0.05, 0.4)
    label = np.zeros(shape, bool)
    label[tuple(rng.integers(0, shape, size=(40, 3)).T)] = True
    return pred, label


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_transform_equals_kdtree_on_random_masks(seed, spacing):
    pred, label = _random_pair(seed)
    kd, edt = _both(pred, label, spacing)
    _assert_same(kd, edt)
    assert kd[0].max() > 2 * max(spacing)  # some far voxels: the nearest target is not a neighbour


@pytest.mark.parametrize("method", ["kdtree", "edt", "auto"])
def test_edge_cases(method):
    spacing = (0.4, 0.7, 1.3)
    empty, point, other = np.zeros((6, 7, 5), bool), np.zeros((6, 7, 5), bool), np.zeros((6, 7, 5), bool)
    point[1, 2, 3] = True
    other[5, 0, 4] = True
    d_pr, d_rp = surface_distances(_edges(point), _edges(empty), spacing, method=method)
    assert d_pr.tolist() == [np.inf] and d_rp.size == 0
    d_pr, d_rp = surface_distances(_edges(point), _edges(other), spacing, method=method)
    expected = np.float32(np.sqrt((4 * 0.4) ** 2 + (2 * 0.7) ** 2 + (1 * 1.3) ** 2))
    assert d_pr.tolist() == d_rp.tolist() == pytest.approx([expected], rel=1e-7)
    d_pr, d_rp = surface_distances(_edges(point), _edges(point), spacing, method=method)
    assert d_pr.tolist() == d_rp.tolist() == [0.0]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_masks_touching_the_volume_border(spacing):
    """Surfaces on all six faces of the volume: the box reaches the border, the origin is one voxel outside it."""
    pred, label = np.zeros((12, 10, 8), bool), np.zeros((12, 10, 8), bool)
    pred[:5] = True
    pred[7:, 3:, :] = True
    label[2:, :7, 4:] = True
    _assert_same(*_both(pred, label, spacing))


def test_auto_takes_the_distance_transform_for_a_large_surface_and_matches_monai():
    """A speckled prediction (the early network's case) against a thin tube: ``auto`` takes the distance transform
    for the prediction's side, the KD-tree for the tube's, and the metrics are MONAI's."""
    shape, spacing = (26, 22, 18), (0.438, 0.438, 0.529)
    rng = np.random.default_rng(7)
    pred = rng.random(shape) < 0.3
    label = np.zeros(shape, bool)
    label[3:23, 10:12, 8:10] = True
    p, r = _edges(pred), _edges(label)
    box = int(np.prod(np.maximum(p.coords.max(0), r.coords.max(0)) - np.minimum(p.coords.min(0), r.coords.min(0)) + 2))
    assert use_distance_transform(len(p), len(r), box) and not use_distance_transform(len(r), len(p), box)
    _assert_same(surface_distances(p, r, spacing, method="kdtree"), surface_distances(p, r, spacing, method="auto"))
    ours, ref = binary_metrics(pred, label, spacing), monai_reference_metrics(pred, label, spacing, 1.0)
    for key in ("HD95_mm", "ASSD_mm", "NSD"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    assert ours["HD95_mm"] > 2.0 and 0.0 < ours["NSD"] < 0.5


def test_a_thin_pair_in_a_large_box_stays_on_the_kdtree():
    """Two thin tubes far apart in a 200^3 box: a distance transform would cost the whole box; nothing is allocated
    for one (it would need about 110 MB), and the values are the exact distances."""
    pred, label = SparseMask.from_coords((200, 200, 200), [(i, 5, 5) for i in range(10)]), SparseMask.from_coords(
        (200, 200, 200), [(190, 190, i) for i in range(190, 200)]
    )
    assert not use_distance_transform(len(pred), len(label), 200**3)
    tracemalloc.start()
    d_pr, d_rp = surface_distances(pred, label, (1.0, 1.0, 1.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
    assert d_pr.min() == pytest.approx(np.sqrt(181**2 + 185**2 + 185**2))
    assert d_rp.max() == pytest.approx(np.sqrt(181**2 + 185**2 + 194**2))


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match=r"method must be one of \['auto', 'kdtree', 'edt'\], got 'fast'"):
        surface_distances(_edges(np.ones((2, 2, 2), bool)), _edges(np.ones((2, 2, 2), bool)), (1, 1, 1), method="fast")
