"""Tests of the realistic coronary CT phantoms (pipeline.phantoms kind ``ccta``) on small crops."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from pipeline.cli import main
from pipeline.errors import SettingsError
from pipeline.phantoms import (
    CCTAConfig,
    PhantomConfig,
    best_threshold_dice,
    make_ccta_phantom,
    make_phantom,
    phantom_config,
    write_phantom_dataset,
)
from pipeline.phantoms.ccta import SEGMENTS, Tissue, draw_ccta_case
from pipeline.phantoms.ccta.vessels import WALL_GAP_MM, murray_parent_radius

CROP = CCTAConfig(crop=(96, 96, 80))
ROOT = CCTAConfig(crop=(96, 96, 72), crop_at="root")


def _centres_mm(window, flat: np.ndarray) -> np.ndarray:
    idx = np.stack(np.unravel_index(flat, window.shape), axis=1) + np.asarray(window.start)
    return idx * np.asarray(window.spacing)


@pytest.fixture(scope="module")
def crops():
    """Three crops around the heart (seeds [3, i])."""
    return [make_ccta_phantom(CROP, np.random.default_rng([3, i])) for i in range(3)]


@pytest.fixture(scope="module")
def root_crop():
    """A crop centred on the aortic root, where both ostia are."""
    return make_ccta_phantom(ROOT, np.random.default_rng([4, 0]))


# --- what makes it hard ---------------------------------------------------------------------------------------------


def test_a_global_threshold_cannot_segment_ccta_but_solves_tubes(crops):
    """One HU threshold for the whole set (searched on the labels themselves) stays far below a usable Dice on ccta
    crops, where aorta, chambers and veins share the lumen's HU, while it nearly solves the tubes phantoms."""
    tubes = [make_phantom(PhantomConfig(shape=(48, 48, 32)), np.random.default_rng(i)) for i in range(3)]

    def pooled(phantoms):
        return best_threshold_dice(np.concatenate([p.image.ravel() for p in phantoms]),
                                   np.concatenate([p.label.ravel() for p in phantoms]))[0]

    per_case = [best_threshold_dice(p.image, p.label)[0] for p in crops]
    assert pooled(crops) <= 0.5 and float(np.median(per_case)) <= 0.5, (pooled(crops), per_case)
    assert pooled(tubes) >= 0.9 and min(best_threshold_dice(p.image, p.label)[0] for p in tubes) >= 0.85


def test_best_threshold_dice_is_exact():
    """The histogram search equals a brute-force loop over every threshold."""
    rng = np.random.default_rng(0)
    image = rng.integers(-20, 40, size=(12, 10, 8))
    label = (image + rng.integers(-15, 15, size=image.shape)) > 20
    brute = max((2 * np.sum((image >= t) & label) / (np.sum(image >= t) + label.sum()), t) for t in range(-20, 41))
    dice, t = best_threshold_dice(image, label)
    assert dice == pytest.approx(brute[0]) and t == brute[1]


# --- anatomy ------------------------------------------------------------------------------------------------------


def test_lumen_runs_in_the_epicardial_fat(crops, root_crop):
    """Around the lumen (one voxel out) there is epicardial fat, another vessel's wall, plaque or calcium, or the
    aorta at an ostium; never myocardium, a chamber's blood, lung or bone."""
    allowed = {Tissue.EPICARDIAL_FAT, Tissue.LUMEN, Tissue.VEIN, Tissue.PLAQUE, Tissue.CALCIUM, Tissue.AORTA}
    for p in crops + [root_crop]:
        ring = ndimage.binary_dilation(p.label > 0, np.ones((3, 3, 3))) & (p.label == 0)
        found = set(np.unique(p.tissue[ring]).tolist())
        assert found <= {int(t) for t in allowed}, sorted(Tissue(t).name for t in found - allowed)
        assert (p.tissue[ring] == Tissue.EPICARDIAL_FAT).mean() > 0.5


def test_arteries_lie_on_the_epicardium_outside_the_myocardium():
    """Every artery centre point beyond the ostial segments is its radius plus the wall gap outside the epicardial
    ellipsoid, and no deeper than 6 mm: the trees wrap the heart's surface."""
    for seed in range(3):
        case = draw_ccta_case(CROP, np.random.default_rng([5, seed]))
        ell = case.heart.epicardium
        m = ell.quadratic()
        for v in case.arteries:
            if v.name == "LM":  # from the ostium on the aortic root to the surface: check where it arrives
                pts, radii = v.points[-1:], v.radii[-1:]
            elif v.name == "RCA":  # skip the ostial segment
                pts, radii = v.points[-len(v.points) // 2 :], v.radii[-len(v.points) // 2 :]
            else:
                pts, radii = v.points, v.radii
            d = pts - ell.centre
            rho = np.sqrt(np.einsum("ni,ij,nj->n", d, m, d))
            # distance along the normal is r + gap: between (rho - 1) * smallest and * largest semi-axis
            assert np.all((rho - 1.0) * ell.semi.max() >= radii + WALL_GAP_MM - 0.05), v.name
            assert np.all((rho - 1.0) * ell.semi.min() <= radii + WALL_GAP_MM + 0.05), v.name
            assert np.all(radii + WALL_GAP_MM < 6.0)


def test_ostia_sit_on_the_aortic_root_and_the_lumen_joins_it(root_crop):
    """Both ostia are on the sinus (distance to its centre = its radius), the LM and RCA start there, and their
    labelled lumen touches aortic voxels while no aortic voxel is labelled."""
    case = root_crop.case
    centre, radius = case.heart.aortic_root
    for key, name in (("left_ostium", "LM"), ("right_ostium", "RCA")):
        ostium = case.info[key]
        assert np.linalg.norm(ostium - centre) == pytest.approx(radius, abs=1e-6)
        vessel = next(v for v in case.arteries if v.name == name)
        np.testing.assert_allclose(vessel.points[0], ostium, atol=1e-9)
    aorta = root_crop.tissue == Tissue.AORTA
    assert not np.any(root_crop.label[aorta])
    touching = ndimage.binary_dilation(aorta, np.ones((3, 3, 3))) & (root_crop.label > 0)
    assert {1, 4} <= set(np.unique(root_crop.segments[touching]).tolist())  # LM and RCA


def test_label_excludes_veins_calcium_and_blood_pools(crops, root_crop):
    """Labelled voxels lie inside an artery's open lumen (KD-tree on the centrelines); voxels only inside a vein,
    a calcium nodule or the aortic root are background, and the veins are bright enough to fool a threshold."""
    for p in crops + [root_crop]:
        case = p.case
        lab = np.nonzero(p.label.reshape(-1))[0]
        xyz = _centres_mm(p.window, lab)
        pts = np.concatenate([v.points for v in case.arteries])
        lumen = np.concatenate([v.lumen for v in case.arteries])
        tree = cKDTree(pts)
        for x, near in zip(xyz, tree.query_ball_point(xyz, float(lumen.max()) + 0.02)):
            near = np.asarray(near)
            assert np.any(np.linalg.norm(pts[near] - x, axis=1) <= lumen[near] + 0.02), x
        centre, radius = case.heart.aortic_root
        assert np.all(np.linalg.norm(xyz - centre, axis=1) > radius)
        for nodule, r in case.calcium:
            assert np.all(cKDTree(nodule).query(xyz)[0] > r[0] - 1e-6)
        veins = p.tissue == Tissue.VEIN
        assert not np.any(p.label[veins])
        if veins.sum() > 50:
            assert p.image[veins].mean() > 100.0


def test_segments_name_the_labelled_lumen(root_crop):
    seg, lab = root_crop.segments, root_crop.label
    assert np.array_equal(seg > 0, lab > 0)
    assert set(np.unique(seg).tolist()) - {0} <= set(SEGMENTS)


def test_tree_shape_diameters_lengths_and_murray():
    """Proximal diameters in the published ranges, distal ends under 1 mm, LAD and RCA long enough to reach the apex
    or crux, side branches present, and the left main splitting by Murray's law."""
    for seed in range(4):
        case = draw_ccta_case(CROP, np.random.default_rng([6, seed]))
        by = {v.name: v for v in case.arteries}
        assert 3.6 <= 2 * by["LM"].radii[0] <= 5.6
        assert 3.0 <= 2 * by["LAD"].radii[0] <= 4.5
        assert 2.0 <= 2 * by["RCA"].radii[0] <= 4.8
        assert 80.0 <= by["LAD"].length <= 170.0 and 50.0 <= by["RCA"].length <= 200.0
        assert 4.0 <= by["LM"].length <= 25.0
        assert max(2 * v.radii[-1] for v in case.arteries if not v.name in ("LM", "LCX", "RCA")) < 1.0
        children = [by[n].radii[0] for n in ("LAD", "LCX", "RI") if n in by]
        assert by["LM"].radii[-1] == pytest.approx(murray_parent_radius(*children), rel=1e-6)
        assert len(case.arteries) >= 7 and len(case.veins) >= 2


def test_lumen_volume_fraction_at_full_size_is_realistic():
    """From the centrelines (no rendering): the open lumen is 0.03-0.3 % of a full 512x512x(224-288) volume."""
    for seed in range(4):
        case = draw_ccta_case(CCTAConfig(), np.random.default_rng([7, seed]))
        fraction = case.lumen_volume_mm3() / float(np.prod(np.asarray(case.shape) * np.asarray(case.spacing)))
        assert 0.0003 <= fraction <= 0.003, fraction
        assert case.shape[:2] == (512, 512) and 224 <= case.shape[2] <= 288


def test_crop_keeps_its_place_in_the_scanner_frame(root_crop):
    """A crop's affine maps its first voxel where the full grid's affine maps the same voxel (LPS-style axes)."""
    from pipeline.phantoms import phantom_affine

    w = root_crop.window
    full = phantom_affine(w.full_shape, w.spacing)
    np.testing.assert_allclose(root_crop.affine @ [0, 0, 0, 1], full @ [*w.start, 1])
    assert root_crop.affine[0, 0] < 0 and root_crop.affine[1, 1] < 0 and root_crop.affine[2, 2] > 0


# --- determinism, files, bad input ------------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_segments_file(tmp_path):
    """Two writes with the same seed give byte-identical files; another seed differs; the segments file and its
    names are there when asked for."""
    cfg = CCTAConfig(crop=(40, 40, 32))
    a = write_phantom_dataset(tmp_path / "a", 1, cfg, seed=9, segments=True)
    b = write_phantom_dataset(tmp_path / "b", 1, cfg, seed=9, segments=True)
    c = write_phantom_dataset(tmp_path / "c", 1, cfg, seed=10)
    names = sorted(p.name for p in a.parent.iterdir())
    assert names == ["coronary_000_image.nii.gz", "coronary_000_label.nii.gz", "coronary_000_segments.nii.gz", "dataset.json"]
    for name in names:
        assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes(), name
    assert (a.parent / names[0]).read_bytes() != (c.parent / names[0]).read_bytes()
    desc = json.loads(a.read_text())
    assert desc["generator"]["kind"] == "ccta" and desc["segments"]["labels"]["2"] == "LAD"
    img = nib.load(a.parent / names[0])
    assert img.shape == (40, 40, 32) and img.get_data_dtype() == np.int16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temporary folder left


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spacing": (-0.4, 0.4, 0.6)}, r"spacing must be three sizes in \[0.1, 2.0\] mm, got \(-0.4, 0.4, 0.6\)"),
        ({"shape": (128, 128, 128), "spacing": (0.4, 0.4, 0.5)}, r"heart_long_mm=\(54.0, 64.0\) does not fit: .* valid: heart_long_mm <= 16 mm"),
        ({"heart_long_mm": (150.0, 160.0), "heart_short_mm": (40.0, 48.0)}, r"heart_long_mm=\(150.0, 160.0\) does not fit"),
        ({"crop": (8, 80, 80)}, r"crop must be three sizes of at least 16 voxels"),
        ({"noise_hu": (45.0, 15.0)}, r"noise_hu must be a range \(low, high\) with low <= high"),
    ],
)
def test_impossible_settings_name_the_parameter_and_its_range(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        CCTAConfig(**kwargs)


def test_zero_cases_and_unknown_kind_are_refused_before_writing(tmp_path):
    with pytest.raises(SettingsError, match="n_cases must be an integer >= 1, got 0"):
        write_phantom_dataset(tmp_path / "out", 0, CROP)
    with pytest.raises(SettingsError, match=r"kind must be one of \['ccta', 'tubes'\], got 'ct'"):
        phantom_config("ct")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_case_leaves_no_partial_folder(tmp_path):
    """When a later case fails (no room for four trees in a 12 mm box), neither the output folder nor a temporary
    sibling is left; an existing folder keeps its files untouched."""
    cfg = PhantomConfig(shape=(30, 30, 20), n_trees=4)
    seed = next(s for s in range(100) if _renders(cfg, [s, 0]) and not _renders(cfg, [s, 1]))
    with pytest.raises(RuntimeError):
        write_phantom_dataset(tmp_path / "new", 3, cfg, seed=seed)
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        write_phantom_dataset(existing, 3, cfg, seed=seed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]


def _renders(cfg: PhantomConfig, seed: list[int]) -> bool:
    try:
        make_phantom(cfg, np.random.default_rng(seed))
    except RuntimeError:
        return False
    return True


def test_make_phantoms_command_writes_ccta_crops_with_segments(tmp_path, capsys):
    """``make-phantoms --kind ccta --crop ... --segments`` writes the crops, their segment files and a dataset.json
    whose settings rebuild the same configuration; ``--segments`` with kind tubes is refused in one line."""
    out = tmp_path / "ccta"
    assert main(["-q", "make-phantoms", "--kind", "ccta", "--crop", "32", "32", "24", "--num", "1", "--segments",
                 "--out", str(out), "--seed", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "coronary_000_image.nii.gz", "coronary_000_label.nii.gz", "coronary_000_segments.nii.gz", "dataset.json"]
    settings = json.loads((out / "dataset.json").read_text())["generator"]["settings"]
    assert settings["crop"] == [32, 32, 24] and settings["shape"] is None
    assert nib.load(out / "coronary_000_image.nii.gz").shape == (32, 32, 24)
    assert main(["-q", "make-phantoms", "--segments", "--out", str(tmp_path / "t")]) == 2
    assert "segments=True needs kind 'ccta'" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
