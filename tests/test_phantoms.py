"""Tests of the synthetic coronary phantom generator (pipeline.phantoms)."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from pipeline.phantoms import (
    PhantomConfig,
    TreeConfig,
    grow_forest,
    make_phantom,
    murray_branch_angles,
    murray_child_radii,
    phantom_affine,
    signed_distance_to_tubes,
    split_counts,
    write_nifti,
    write_phantom_dataset,
)

# Small and anisotropic: fast, and the radius bounds (in voxels of the finest spacing) stay meaningful.
CONFIG = PhantomConfig(shape=(48, 48, 32), spacing=(0.4, 0.4, 0.6))
SEEDS = (0, 1, 2, 3, 4)
N_CASES = 3
DATASET_SEED = 11
CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


@pytest.fixture(scope="module")
def phantoms():
    """One phantom per seed in ``SEEDS`` (shared by the read-only tests)."""
    return {seed: make_phantom(CONFIG, np.random.default_rng(seed)) for seed in SEEDS}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A three-case phantom dataset written to disk: (dataset.json path, parsed json)."""
    path = write_phantom_dataset(tmp_path_factory.mktemp("phantoms"), n_cases=N_CASES, config=CONFIG, seed=DATASET_SEED)
    return path, json.loads(path.read_text())


def _parent_of(tree, branch):
    """The branch of ``tree`` that ends where ``branch`` starts (children start on their parent's last point)."""
    matches = [b for b in tree.branches if b is not branch and np.array_equal(b.points[-1], branch.points[0])]
    assert len(matches) == 1
    return matches[0]


# --- determinism ------------------------------------------------------------------------------------------------------


def test_same_seed_is_bit_identical(phantoms):
    """A fresh generator with the same seed reproduces image, label, tree map, centerlines and affine exactly."""
    again = make_phantom(CONFIG, np.random.default_rng(3))
    ref = phantoms[3]
    assert np.array_equal(again.image, ref.image)
    assert np.array_equal(again.label, ref.label)
    assert np.array_equal(again.tree_map, ref.tree_map)
    assert np.array_equal(again.affine, ref.affine)
    assert len(again.trees) == len(ref.trees)
    for a, b in zip(again.trees, ref.trees):
        assert np.array_equal(a.points, b.points)
        assert np.array_equal(a.radii, b.radii)


def test_different_seeds_differ(phantoms):
    """Different seeds give different images and labels."""
    for s, t in [(0, 1), (1, 2), (0, 4)]:
        assert not np.array_equal(phantoms[s].image, phantoms[t].image)
        assert not np.array_equal(phantoms[s].label, phantoms[t].label)


# --- label geometry ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_arrays_have_expected_dtypes_and_values(phantoms, seed):
    """int16 image, binary uint8 label, and a tree map that labels exactly the vessel voxels with 1..n_trees."""
    p = phantoms[seed]
    assert p.image.shape == p.label.shape == p.tree_map.shape == CONFIG.shape
    assert p.image.dtype == np.int16
    assert p.label.dtype == np.uint8
    assert set(np.unique(p.label).tolist()) == {0, 1}
    assert np.array_equal(p.label == 1, p.tree_map > 0)
    assert set(np.unique(p.tree_map).tolist()) == set(range(CONFIG.n_trees + 1))
    assert len(p.trees) == CONFIG.n_trees
    assert [t.index for t in p.trees] == list(range(CONFIG.n_trees))


def _assert_one_component_per_tree(phantom, n_trees):
    components, n = ndimage.label(phantom.label, structure=CONNECTIVITY_26)
    assert n == n_trees
    owners = set()
    for c in range(1, n + 1):
        region = components == c
        owner = np.unique(phantom.tree_map[region])
        assert owner.size == 1, f"component {c} mixes trees {owner.tolist()}"
        assert np.array_equal(region, phantom.tree_map == owner[0])
        owners.add(int(owner[0]))
    assert owners == set(range(1, n_trees + 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_each_tree_is_one_26_connected_component(phantoms, seed):
    """Each tree is a single 26-connected component of the label, and no two trees touch (no fusion)."""
    _assert_one_component_per_tree(phantoms[seed], CONFIG.n_trees)


@pytest.mark.parametrize("seed", [5, 6])
def test_three_trees_do_not_fuse(seed):
    """With three trees entering through different faces, there are still exactly three separate components."""
    cfg = PhantomConfig(shape=CONFIG.shape, spacing=CONFIG.spacing, n_trees=3)
    _assert_one_component_per_tree(make_phantom(cfg, np.random.default_rng(seed)), 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_centerline_radii_are_1_to_4_finest_voxels(phantoms, seed):
    """Radii (mm / finest spacing) lie in [1, 4]; roots start in the configured range; branches taper."""
    fine = min(CONFIG.spacing)
    extent = (np.asarray(CONFIG.shape) - 1) * np.asarray(CONFIG.spacing)
    for tree in phantoms[seed].trees:
        radii_vox = tree.radii / fine
        assert radii_vox.min() >= 1.0
        assert radii_vox.max() <= 4.0
        lo, hi = CONFIG.tree.root_radius_vox
        assert lo <= tree.branches[0].radii[0] / fine <= hi
        assert tree.branches[0].parent is None
        for branch in tree.branches:
            assert len(branch.points) == len(branch.radii) >= 2
            assert np.all(np.diff(branch.radii) <= 0.0)
            # every ball of the centerline fits in the box
            assert np.all(branch.points - branch.radii[:, None] >= -1e-9)
            assert np.all(branch.points + branch.radii[:, None] <= extent + 1e-9)


def _bifurcations(tree):
    """(parent, children) for every branch of ``tree`` that has grown children."""
    children: dict[int, tuple] = {}
    for branch in tree.branches[1:]:
        assert branch.parent is not None
        parent = _parent_of(tree, branch)
        children.setdefault(id(parent), (parent, []))[1].append(branch)
    return list(children.values())


@pytest.mark.parametrize("seed", SEEDS)
def test_bifurcations_follow_murray_law(phantoms, seed):
    """Children start on their parent's end, thinner than it; when both grew, r_parent^3 = r_1^3 + r_2^3."""
    lo, hi = CONFIG.tree.asymmetry
    for tree in phantoms[seed].trees:
        for parent, kids in _bifurcations(tree):
            assert 1 <= len(kids) <= 2
            r0 = parent.radii[-1]
            assert all(k.radii[0] < r0 for k in kids)
            if len(kids) == 2:
                r1, r2 = kids[0].radii[0], kids[1].radii[0]
                assert r1**3 + r2**3 == pytest.approx(r0**3, rel=1e-9)
                assert lo <= min(r1, r2) / max(r1, r2) <= hi


def test_phantom_trees_really_branch(phantoms):
    """The Murray check above is not vacuous: the phantoms contain complete two-child bifurcations."""
    complete = [len(kids) == 2 for p in phantoms.values() for tree in p.trees for _, kids in _bifurcations(tree)]
    assert sum(complete) >= 3


def test_grow_forest_is_seeded_and_returns_every_tree():
    """grow_forest draws only from its generator: the same seed gives the same centerlines."""
    extent, voxel = np.array([30.0, 30.0, 20.0]), (0.4, 0.6)
    a = grow_forest(3, extent, voxel, TreeConfig(), np.random.default_rng(8))
    b = grow_forest(3, extent, voxel, TreeConfig(), np.random.default_rng(8))
    assert [t.index for t in a] == [0, 1, 2]
    assert all(len(t.branches) >= 1 for t in a)
    for ta, tb in zip(a, b):
        assert np.array_equal(ta.points, tb.points)
        assert np.array_equal(ta.radii, tb.radii)


def test_grow_forest_raises_when_root_cannot_be_placed():
    """A box too small for any root segment is reported instead of looping forever."""
    with pytest.raises(RuntimeError, match="could not place the root"):
        grow_forest(1, np.array([2.0, 2.0, 2.0]), (0.4, 0.6), TreeConfig(), np.random.default_rng(0))


# --- Murray's law -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0.4, 1.0, 1.6])
@pytest.mark.parametrize("asymmetry", [0.3, 0.55, 0.8, 1.0])
@pytest.mark.parametrize("exponent", [2.0, 3.0])
def test_murray_child_radii(radius, asymmetry, exponent):
    """r^k = r1^k + r2^k, r2 / r1 = asymmetry, and both children are thinner than the parent."""
    r1, r2 = murray_child_radii(radius, asymmetry, exponent)
    assert r1**exponent + r2**exponent == pytest.approx(radius**exponent, rel=1e-12)
    assert r2 / r1 == pytest.approx(asymmetry, rel=1e-12)
    assert 0.0 < r2 <= r1 < radius


def test_murray_child_radii_symmetric_cube_law():
    """Two equal children of a unit vessel have radius 2^(-1/3) (default exponent 3)."""
    r1, r2 = murray_child_radii(1.0, 1.0)
    assert r1 == pytest.approx(2.0 ** (-1.0 / 3.0), rel=1e-12)
    assert r2 == pytest.approx(r1, rel=1e-12)


@pytest.mark.parametrize("asymmetry", [0.1, 0.3, 0.55, 0.75, 0.95, 1.0])
def test_murray_branch_angles_are_acute(asymmetry):
    """Both angles lie in (0, pi/2), and the thicker child deviates less from the parent direction."""
    r0 = 1.3
    r1, r2 = murray_child_radii(r0, asymmetry)
    a1, a2 = murray_branch_angles(r0, r1, r2)
    assert 0.0 < a1 < math.pi / 2
    assert 0.0 < a2 < math.pi / 2
    assert a1 <= a2 + 1e-12
    # cos(theta_1) = (r0^4 + r1^4 - r2^4) / (2 r0^2 r1^2)
    assert math.cos(a1) == pytest.approx((r0**4 + r1**4 - r2**4) / (2 * r0**2 * r1**2), rel=1e-12)
    assert math.cos(a2) == pytest.approx((r0**4 + r2**4 - r1**4) / (2 * r0**2 * r2**2), rel=1e-12)


def test_murray_branch_angles_symmetric_value():
    """The classic symmetric bifurcation: each child at arccos(2^(-1/3)), about 37.5 degrees."""
    r1, r2 = murray_child_radii(1.0, 1.0)
    a1, a2 = murray_branch_angles(1.0, r1, r2)
    assert a1 == pytest.approx(a2, abs=1e-12)
    assert math.degrees(a1) == pytest.approx(37.47, abs=0.01)


# --- intensities ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_intensities_are_ct_like(phantoms, seed):
    """Contrast-enhanced lumen (eroded interior) around 250-480 HU, soft-tissue/fat background around -100..80 HU."""
    p = phantoms[seed]
    interior = ndimage.binary_erosion(p.label.astype(bool))
    assert interior.sum() >= 20
    assert 250.0 <= np.median(p.image[interior]) <= 480.0
    distance_mm = ndimage.distance_transform_edt(p.label == 0, sampling=CONFIG.spacing)
    far = distance_mm > 3.0
    assert far.sum() > 0.5 * far.size
    assert -100.0 <= np.median(p.image[far]) <= 80.0
    # lumen is much brighter than the background everywhere on average
    assert np.median(p.image[interior]) - np.median(p.image[far]) > 200.0
    assert p.image.min() >= -1024 and p.image.max() <= 3071


# --- affine and signed distance ---------------------------------------------------------------------------------------


def test_phantom_affine_is_lps_and_centred():
    """i and j are flipped (LPS as from DICOM), diagonal magnitudes are the spacing, the volume centre is at x=y=0."""
    shape, spacing = (48, 40, 32), (0.4, 0.5, 0.6)
    affine = phantom_affine(shape, spacing)
    assert affine.shape == (4, 4)
    np.testing.assert_allclose(np.diag(affine)[:3], [-0.4, -0.5, 0.6])
    np.testing.assert_allclose(affine[3], [0.0, 0.0, 0.0, 1.0])
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    centre = affine @ np.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2, 0.0, 1.0])
    np.testing.assert_allclose(centre[:3], [0.0, 0.0, -120.0], atol=1e-12)
    np.testing.assert_allclose(nib.affines.voxel_sizes(affine), spacing)


def test_make_phantom_uses_phantom_affine(phantoms):
    np.testing.assert_array_equal(phantoms[0].affine, phantom_affine(CONFIG.shape, CONFIG.spacing))


def test_signed_distance_of_straight_tube():
    """A straight tube of radius 1 mm along k at (x, y) = (4, 4) mm: sd = min(distance - radius, band)."""
    spacing = np.array([0.4, 0.4, 0.6])
    shape = (21, 21, 11)
    radius, band = 1.0, 1.0
    z = np.linspace(0.0, (shape[2] - 1) * spacing[2], 121)
    points = np.stack([np.full_like(z, 4.0), np.full_like(z, 4.0), z], axis=1)
    sd = signed_distance_to_tubes(points, np.full(len(z), radius), shape, spacing, band)
    assert sd.shape == shape and sd.dtype == np.float32

    # hand-computed voxels (x = 0.4 i, y = 0.4 j): on the axis, inside, just outside, diagonal, beyond the band
    expected = {
        (10, 10, 5): -1.0,
        (10, 10, 0): -1.0,
        (11, 11, 3): math.hypot(0.4, 0.4) - 1.0,  # -0.434
        (12, 10, 5): 0.8 - 1.0,  # -0.2
        (10, 8, 7): 0.8 - 1.0,
        (13, 10, 5): 1.2 - 1.0,  # +0.2
        (12, 12, 2): math.hypot(0.8, 0.8) - 1.0,  # +0.131
        (14, 10, 5): 1.6 - 1.0,  # +0.6
        (17, 10, 5): band,  # 2.8 mm away: outside the band
        (0, 0, 0): band,
    }
    for idx, value in expected.items():
        assert sd[idx] == pytest.approx(value, abs=1e-4), idx

    # the whole volume against the closed form
    x = np.arange(shape[0]) * spacing[0]
    y = np.arange(shape[1]) * spacing[1]
    dist = np.hypot(x[:, None] - 4.0, y[None, :] - 4.0)[:, :, None] * np.ones(shape[2])
    np.testing.assert_allclose(sd, np.minimum(dist - radius, band), atol=1e-4)
    assert np.array_equal(sd < 0, dist < radius)
    assert np.count_nonzero(sd < 0) > 0


def test_signed_distance_ignores_points_outside_the_volume():
    """Balls entirely outside the array leave the band value untouched."""
    spacing = np.array([0.5, 0.5, 0.5])
    sd = signed_distance_to_tubes(np.array([[-10.0, -10.0, -10.0]]), np.array([1.0]), (8, 8, 8), spacing, 0.7)
    assert np.all(sd == np.float32(0.7))


# --- NIfTI dataset ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_cases", "expected"),
    [(1, (1, 0, 0)), (2, (1, 1, 0)), (3, (1, 1, 1)), (4, (2, 1, 1)), (5, (3, 1, 1)), (10, (6, 2, 2)), (20, (12, 4, 4))],
)
def test_split_counts_default_fractions(n_cases, expected):
    """Validation and test get at least one case from three cases on; the counts always add up."""
    assert split_counts(n_cases) == expected
    assert sum(split_counts(n_cases)) == n_cases


@pytest.mark.parametrize(
    ("n_cases", "fractions", "expected"),
    [
        (3, (1.0, 0.0, 0.0), (3, 0, 0)),
        (10, (8, 1, 1), (8, 1, 1)),
        (10, (0.7, 0.3, 0.0), (7, 3, 0)),
        (4, (0.9, 0.05, 0.05), (2, 1, 1)),
        (2, (0.0, 1.0, 1.0), (0, 1, 1)),
    ],
)
def test_split_counts_custom_fractions(n_cases, fractions, expected):
    """Fractions are relative; a zero fraction gets no case; small non-zero ones get one from three cases on."""
    assert split_counts(n_cases, fractions) == expected


@pytest.mark.parametrize(
    ("n_cases", "fractions"),
    [
        (0, (0.6, 0.2, 0.2)),
        (-3, (0.6, 0.2, 0.2)),
        (5, (0.5, 0.5)),
        (5, (0.5, 0.3, 0.1, 0.1)),
        (5, (0.8, -0.1, 0.3)),
        (5, (0.0, 0.0, 0.0)),
    ],
)
def test_split_counts_rejects_bad_input(n_cases, fractions):
    with pytest.raises(ValueError):
        split_counts(n_cases, fractions)


def test_write_nifti_round_trip(tmp_path):
    """write_nifti stores the array bit for bit with sform/qform code 1 and millimetre units."""
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1000, size=(6, 5, 4)).astype(np.int16)
    affine = phantom_affine(array.shape, (0.4, 0.5, 0.6))
    path = write_nifti(array, affine, tmp_path / "x.nii.gz")
    assert path == tmp_path / "x.nii.gz" and path.exists()
    img = nib.load(path)
    assert np.array_equal(np.asanyarray(img.dataobj), array)
    assert img.get_data_dtype() == np.int16
    np.testing.assert_allclose(img.affine, affine, atol=1e-5)
    _, s_code = img.get_sform(coded=True)
    _, q_code = img.get_qform(coded=True)
    assert int(s_code) == 1 and int(q_code) == 1
    assert img.header.get_xyzt_units() == ("mm", "sec")


def test_dataset_json_lists_match_split_counts(dataset):
    """training/validation/test lists have the split_counts sizes, cover all cases once, and their files exist."""
    path, desc = dataset
    n_train, n_val, n_test = split_counts(N_CASES)
    assert len(desc["training"]) == n_train
    assert len(desc["validation"]) == n_val
    assert len(desc["test"]) == n_test
    assert desc["numTraining"] == n_train + n_val
    assert desc["numTest"] == n_test
    assert desc["generator"] == {
        "seed": DATASET_SEED,
        "shape": list(CONFIG.shape),
        "spacing": list(CONFIG.spacing),
        "n_trees": CONFIG.n_trees,
    }
    entries = desc["training"] + desc["validation"] + desc["test"]
    assert [e["image"] for e in entries] == [f"./coronary_{i:03d}_image.nii.gz" for i in range(N_CASES)]
    for entry in entries:
        assert set(entry) == {"image", "label"}
        for key in ("image", "label"):
            assert (path.parent / entry[key]).is_file()


def test_dataset_nifti_geometry_round_trips(dataset):
    """Affine (to 1e-5), zooms, shape and on-disk dtypes survive nibabel; label is binary."""
    path, desc = dataset
    expected_affine = phantom_affine(CONFIG.shape, CONFIG.spacing)
    for entry in desc["training"] + desc["validation"] + desc["test"]:
        image = nib.load(path.parent / entry["image"])
        label = nib.load(path.parent / entry["label"])
        for img, dtype in ((image, np.int16), (label, np.uint8)):
            assert img.shape == CONFIG.shape
            assert img.get_data_dtype() == dtype
            assert np.asanyarray(img.dataobj).dtype == dtype
            np.testing.assert_allclose(img.affine, expected_affine, atol=1e-5)
            np.testing.assert_allclose(img.header.get_zooms(), CONFIG.spacing, atol=1e-6)
        assert set(np.unique(np.asanyarray(label.dataobj)).tolist()) == {0, 1}


def test_dataset_cases_reproduce_make_phantom(dataset):
    """Case i is make_phantom(default_rng([seed, i])), bit for bit, so it does not depend on n_cases."""
    path, desc = dataset
    entries = desc["training"] + desc["validation"] + desc["test"]
    for i in (0, N_CASES - 1):
        phantom = make_phantom(CONFIG, np.random.default_rng([DATASET_SEED, i]))
        assert np.array_equal(np.asanyarray(nib.load(path.parent / entries[i]["image"]).dataobj), phantom.image)
        assert np.array_equal(np.asanyarray(nib.load(path.parent / entries[i]["label"]).dataobj), phantom.label)


@pytest.mark.parametrize(
    ("n_cases", "fractions", "expected"),
    [(3, (0.0, 0.5, 0.5), (0, 2, 1)), (1, (0.0, 1.0, 1.0), (0, 1, 0)), (7, (0.6, 0.2, 0.2), (4, 2, 1))],
)
def test_split_counts_never_negative(n_cases, fractions, expected):
    """Largest-remainder rounding: no negative count, and a zero fraction never receives the only case."""
    assert split_counts(n_cases, fractions) == expected


def test_parent_is_an_index_into_the_tree():
    """``Branch.parent`` indexes its own tree's branches, for every tree of the forest, not only the first."""
    for seed in range(5):
        trees = grow_forest(3, np.array([30.0, 30.0, 30.0]), (0.4, 0.6), TreeConfig(), np.random.default_rng(seed))
        for tree in trees:
            assert tree.branches[0].parent is None
            for branch in tree.branches[1:]:
                parent = tree.branches[branch.parent]
                np.testing.assert_array_equal(branch.points[0], parent.points[-1])
                assert branch.radii[0] < parent.radii[0]


@pytest.mark.parametrize("spacing", [(0.3, 0.3, 0.8), (0.25, 0.25, 1.0)])
def test_trees_stay_connected_on_thick_slices(spacing):
    """With slices up to 4x thicker than the pixels, the radius floor keeps every tree one 26-connected component."""
    for seed in range(8):
        phantom = make_phantom(PhantomConfig(shape=(48, 48, 24), spacing=spacing), np.random.default_rng([5, seed]))
        _, n = ndimage.label(phantom.label, np.ones((3, 3, 3)))
        assert n == 2, (spacing, seed)


def test_roots_keep_their_distance_from_earlier_trees():
    """Every root starts at least ``gap_vox`` coarse voxels from the wall of every earlier tree (four trees crowded
    into a 15 mm box: without the check on the root's first point, one of these seeds starts a root too close)."""
    cfg = TreeConfig()
    grown = 0
    for seed in range(40):
        try:
            trees = grow_forest(4, np.array([15.0, 15.0, 15.0]), (0.4, 0.6), cfg, np.random.default_rng(seed))
        except RuntimeError:  # no room left for a fourth root: reported, not forced
            continue
        grown += 1
        for k, tree in enumerate(trees[1:], start=1):
            start, r0 = tree.branches[0].points[0], tree.branches[0].radii[0]
            for earlier in trees[:k]:
                d = np.linalg.norm(earlier.points - start, axis=1) - earlier.radii - r0
                assert d.min() >= cfg.gap_vox * 0.6 - 1e-9, seed
    assert grown >= 30
