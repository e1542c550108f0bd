"""Dataset fingerprint (MONAI's DataAnalyzer + distance-transform radii) -> plan.json -> the bundle's settings."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from pipeline.cli import main
from pipeline.data import (
    DatasetFingerprint,
    PlanSettings,
    load_datalist,
    load_plan,
    make_plan,
    plan_overrides,
    vessel_radii,
)
from pipeline.errors import DatasetError, SettingsError
from transforms import check_hu_window, intensity_window

CONFIGS = Path(__file__).resolve().parent.parent / "bundles" / "coronary_vessel_seg" / "configs"


@pytest.fixture(scope="module")
def planned(tiny_dataset, tmp_path_factory) -> Path:
    """A copy of the tiny dataset with its plan.json (written by the CLI)."""
    root = tmp_path_factory.mktemp("planned") / "data"
    shutil.copytree(tiny_dataset, root)
    assert main(["-q", "plan", "--dataset-dir", str(root), "--device", "cpu"]) == 0
    return root


def test_radius_of_straight_tubes_at_anisotropic_spacing():
    spacing = (0.4, 0.4, 0.6)
    x, y = np.meshgrid(np.arange(60) * spacing[0], np.arange(60) * spacing[1], indexing="ij")
    for radius in (0.8, 1.6, 2.4):
        tube = np.repeat(((x - 12.0) ** 2 + (y - 12.0) ** 2 <= radius**2)[..., None], 30, axis=2)
        radii = vessel_radii(tube, spacing)
        # distances run between voxel centres: the true radius up to one voxel more
        assert radius - 1e-6 <= np.median(radii) <= radius + spacing[0] + 1e-6
    assert len(vessel_radii(np.zeros((8, 8, 8)), spacing)) == 0


def test_radii_equal_the_distance_transform_on_the_skeleton():
    from pipeline.phantoms import PhantomConfig, make_phantom
    from scipy import ndimage
    from skimage.morphology import skeletonize

    phantom = make_phantom(PhantomConfig(shape=(48, 48, 32)), np.random.default_rng([5, 0]))
    mask = np.pad(phantom.label > 0, 1)
    reference = ndimage.distance_transform_edt(mask, sampling=(0.4, 0.4, 0.6))[skeletonize(mask)]
    assert np.allclose(np.sort(vessel_radii(phantom.label, (0.4, 0.4, 0.6))), np.sort(reference), atol=1e-9)


def test_fingerprint_matches_numpy_on_the_labelled_cases(planned):
    plan = load_plan(planned)
    fp = DatasetFingerprint.from_dict(plan.fingerprint)
    items = load_datalist(planned, "training") + load_datalist(planned, "validation")
    assert fp.n_cases == len(items) == 4 and fp.source["cases_per_list"] == {"training": 3, "validation": 1}
    assert fp.spacing_median == (0.4, 0.4, 0.6) and fp.shape_median == (48, 48, 32)
    images = [np.asarray(nib.load(it["image"]).dataobj, dtype=np.float64) for it in items]
    labels = [np.asarray(nib.load(it["label"]).dataobj) > 0 for it in items]
    vessel = [im[lb] for im, lb in zip(images, labels)]
    pooled = np.concatenate(vessel)
    assert fp.intensity["mean"] == pytest.approx(pooled.mean(), rel=1e-4)
    assert fp.intensity["std"] == pytest.approx(pooled.std(), rel=1e-3)
    assert fp.intensity["p99_5"] == pytest.approx(np.mean([np.percentile(v, 99.5) for v in vessel]), rel=1e-3)
    assert fp.intensity["p00_5"] == pytest.approx(np.mean([np.percentile(v, 0.5) for v in vessel]), rel=1e-3)
    fractions = [lb.mean() for lb in labels]
    assert fp.foreground_fraction["mean"] == pytest.approx(np.mean(fractions), rel=1e-4)
    radii = np.concatenate([vessel_radii(lb, (0.4, 0.4, 0.6)) for lb in labels])
    assert fp.radius_mm["p50"] == pytest.approx(np.percentile(radii, 50), abs=1e-3)
    assert 0.3 < fp.radius_mm["p05"] <= fp.radius_mm["p50"] <= fp.radius_mm["p95"] < 2.0


def test_plan_file_is_complete_and_round_trips(planned):
    data = json.loads((planned / "plan.json").read_text())
    assert data["schema_version"] == 1 and not list(planned.glob(".plan.json*"))
    plan = load_plan(planned)
    assert plan.pixdim is None  # all cases share one spacing: no resampling
    fp = plan.fingerprint["intensity"]
    assert plan.hu_window == pytest.approx([fp["p00_5"], fp["p99_5"], fp["std"]], rel=1e-4)
    assert all(p % 8 == 0 for p in plan.patch_size) and plan.patch_size == [48, 48, 32]
    assert plan_overrides(plan) == {k: data[k] for k in plan_overrides(plan)}
    assert set(plan_overrides(plan)) == {
        "pixdim", "hu_window", "patch_size", "batch_size", "num_samples", "learning_rate", "epochs"
    }
    assert plan_overrides(None) == {}


def _fingerprint(**changes) -> DatasetFingerprint:
    base = dict(
        n_cases=10,
        spacing_median=(0.4, 0.4, 0.6),
        spacing_min=(0.39, 0.39, 0.6),
        spacing_max=(0.42, 0.42, 0.6),
        spacing_p10=(0.39, 0.39, 0.6),
        shape_median=(256, 256, 200),
        intensity={"p00_5": 100.0, "p50": 300.0, "p99_5": 500.0, "mean": 310.0, "std": 80.0},
        foreground_fraction={"mean": 0.005, "min": 0.003, "max": 0.008},
        radius_mm={"p05": 0.5, "p25": 0.8, "p50": 1.1, "p75": 1.5, "p95": 2.2},
    )
    return DatasetFingerprint(**{**base, **changes})


def test_plan_rules_spacing_memory_and_epochs():
    cpu = PlanSettings(device="cpu", memory_bytes=8 * 2**30)
    plan = make_plan(_fingerprint(), cpu, n_training=10)
    assert plan.pixdim is None  # within 10 % of the median
    assert plan.hu_window == [100.0, 500.0, 80.0]
    voxels = math.prod(plan.patch_size) * plan.batch_size * plan.num_samples
    assert all(p % 8 == 0 for p in plan.patch_size) and voxels <= cpu.cpu_voxels_per_step
    assert plan.batch_size * plan.num_samples >= cpu.min_patches
    assert plan.epochs == math.ceil(1000 / math.ceil(10 / plan.batch_size))

    spread = _fingerprint(spacing_min=(0.3, 0.3, 0.5), spacing_max=(0.7, 0.7, 1.0))
    assert make_plan(spread, cpu).pixdim == [0.4, 0.4, 0.6]
    thick = _fingerprint(
        spacing_median=(0.4, 0.4, 2.5), spacing_min=(0.3, 0.3, 1.0), spacing_max=(0.5, 0.5, 3.0),
        spacing_p10=(0.32, 0.32, 1.25),
    )
    assert make_plan(thick, cpu).pixdim == [0.4, 0.4, 1.25]  # anisotropic: the coarse axis at its 10th percentile

    gpu = PlanSettings(device="cuda", memory_bytes=80 * 2**30)
    big = make_plan(_fingerprint(), gpu)
    assert big.patch_size == [256, 256, 200] and big.batch_size * big.num_samples == gpu.max_patches
    small = make_plan(_fingerprint(), PlanSettings(device="cuda", memory_bytes=2**30))
    assert small.memory["estimated_bytes"] <= 2**30 and math.prod(small.patch_size) < math.prod(big.patch_size)
    assert make_plan(_fingerprint(), dataclasses.replace(cpu, target_steps=10)).epochs == cpu.min_epochs
    with pytest.raises(SettingsError, match="device must be 'cpu' or 'cuda'"):
        PlanSettings(device="tpu")


def test_bad_plan_files_name_the_problem(tmp_path):
    assert load_plan(tmp_path) is None
    (tmp_path / "plan.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(DatasetError, match="schema_version 99, this version reads 1"):
        load_plan(tmp_path)
    (tmp_path / "plan.json").write_text("{")
    with pytest.raises(DatasetError, match="cannot be read"):
        load_plan(tmp_path)


def test_cli_plan_bad_input(tmp_path, capsys):
    assert main(["plan", "--dataset-dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["plan", "--dataset-dir", str(tmp_path), "--memory-gb", "0"]) == 2
    assert "--memory-gb must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "plan.json").exists()


def test_hu_window_with_std_clips_and_scales():
    image = torch.tensor([[-500.0, 100.0, 300.0, 500.0, 900.0]])
    out = intensity_window("image", [100.0, 500.0, 80.0])({"image": image})["image"]
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 2.5, 5.0, 5.0]]))
    with pytest.raises(ValueError, match=r"\(low, high, std\) with std > 0"):
        check_hu_window([100.0, 500.0, 0.0])


def _bundle(dataset_dir: Path, bundle_root: Path, **override) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"), meta_file=str(CONFIGS / "metadata.json"), logging_file=False,
        workflow_type="train", bundle_root=str(bundle_root), dataset_dir=str(dataset_dir), **override,
    )


def test_bundle_preprocesses_with_the_plan_and_overrides_win(planned, tmp_path):
    plan = load_plan(planned)
    parser = _bundle(planned, tmp_path).parser
    planned_keys = ("pixdim", "hu_window", "patch_size", "batch_size", "num_samples", "learning_rate", "epochs")
    assert {k: parser.get_parsed_content(k) for k in planned_keys} == plan_overrides(plan)
    low, high, std = plan.hu_window
    image = parser.get_parsed_content("validate#dataset")[0]["image"]
    assert float(image.min()) == 0.0 and float(image.max()) == pytest.approx((high - low) / std, rel=1e-5)
    patches = parser.get_parsed_content("train#dataset")[0]
    assert len(patches) == plan.num_samples and all(p["image"].shape[1:] == tuple(plan.patch_size) for p in patches)
    # augmented: scaled by up to 10 %, shifted by up to 5 % of the window's range
    assert all(float(p["image"].max()) <= (high - low) / std * 1.1 * 1.05 + 1e-4 for p in patches)

    explicit = _bundle(planned, tmp_path, patch_size=[32, 32, 32], hu_window=[-150.0, 650.0]).parser
    assert explicit.get_parsed_content("patch_size") == [32, 32, 32]
    assert explicit.get_parsed_content("hu_window") == [-150.0, 650.0]
    assert explicit.get_parsed_content("learning_rate") == plan.learning_rate
    plain = _bundle(planned.parent / "missing_ok", tmp_path).parser
    assert plain.get_parsed_content("plan") == {} and plain.get_parsed_content("patch_size") == [64, 64, 32]
