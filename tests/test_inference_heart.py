"""The coarse heart locator on a small synthetic chest, and the inferer with it (windows skipped, MONAI's output inside
the region, precision)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference

from pipeline.errors import SettingsError
from pipeline.inference import CandidateRegion, CandidateSlidingWindowInferer, HeartLocator
from pipeline.networks import create_unet

SPACING = (2.5, 2.5, 2.5)
SHAPE = (64, 64, 48)  # 160 x 160 x 120 mm
ROI = (16, 16, 16)


def _ball(shape, centre, radius_mm):
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, SPACING)], indexing="ij"))
    return ((grid - np.asarray(centre, dtype=float)[:, None, None, None] * 2.5) ** 2).sum(0) <= radius_mm**2


def _chest() -> tuple[np.ndarray, dict[str, tuple[int, int, int]]]:
    """HU: fat everywhere, lungs left and right, a heart (blood pool 350 HU in a 10 mm myocardium of 100 HU), a
    coronary (400 HU) in the fat on its surface, a separate descending aorta (350 HU), a vertebra (marrow 400 HU in a
    1000 HU cortex) and a lone bright speck."""
    hu = np.full(SHAPE, -90.0, dtype=np.float32)
    hu[:12], hu[52:] = -850.0, -850.0
    hu[_ball(SHAPE, (32, 30, 24), 35.0)] = 100.0
    hu[_ball(SHAPE, (32, 30, 24), 25.0)] = 350.0
    hu[32:34, 46:48, 10:38] = 400.0  # 40 mm from the centre: 5 mm beyond the myocardium, in the fat
    hu[_ball(SHAPE, (32, 58, 24), 8.0)] = 350.0  # 70 mm behind the heart
    hu[_ball(SHAPE, (32, 6, 8), 10.0)] = 1000.0
    hu[_ball(SHAPE, (32, 6, 8), 7.5)] = 400.0
    hu[14, 58, 44] = 400.0
    return hu, {"coronary": (32, 46, 24), "aorta": (32, 58, 24), "vertebra": (32, 6, 8), "speck": (14, 58, 44)}


def _locate(hu: np.ndarray, locator: HeartLocator = HeartLocator()) -> torch.Tensor | None:
    means = CandidateRegion.block_means(torch.from_numpy(hu), 2)[0]
    return locator.locate(means, [2 * s for s in SPACING], lambda v: v)


def test_the_heart_region_holds_the_heart_and_its_surface_not_separate_bright_structures():
    hu, where = _chest()
    region = _locate(hu)
    assert region is not None and region.shape == (32, 32, 24)
    inside = lambda p: bool(region[tuple(c // 2 for c in p)])  # noqa: E731
    assert inside((32, 30, 24)) and inside(where["coronary"])
    assert not inside(where["aorta"]) and not inside(where["vertebra"]) and not inside(where["speck"])
    assert 0.1 < float(region.float().mean()) < 0.6


def test_no_heart_region_on_a_small_field_of_view_or_without_a_blood_pool():
    hu, _ = _chest()
    assert _locate(hu[16:48, 14:46, 8:40]) is None  # 80 mm across: a crop, not a chest
    assert _locate(np.full(SHAPE, -90.0, dtype=np.float32)) is None
    assert _locate(hu, HeartLocator(min_pool_ml=500.0)) is None  # the pool here is 65 mL


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_unet(channels=(4, 8, 16), strides=(2, 2), num_res_units=0).eval()


def test_the_inferer_skips_the_windows_outside_the_heart_and_is_monai_inside(network):
    hu, where = _chest()
    x = MetaTensor(torch.from_numpy(hu)[None, None], affine=torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64)))
    ours = CandidateSlidingWindowInferer(ROI, 8, lumen_hu=(120.0, None), margin=2)
    intensities = CandidateSlidingWindowInferer(ROI, lumen_hu=(120.0, None), margin=2, locator=None)
    with torch.no_grad():
        out, plain = ours(x, network), sliding_window_inference(x.as_tensor(), ROI, 8, network, 0.25)
    assert ours.stats.heart and ours.stats.run < ours.stats.windows
    assert ours.stats.region_fraction < intensities.candidate_region(x)[0].fraction
    region, heart = ours.candidate_region(x)
    mask = region.voxel_mask((0, 0, 0), SHAPE)
    assert heart and bool(mask[where["coronary"]]) and not bool(mask[where["aorta"]])
    torch.testing.assert_close(out.as_tensor()[:, :, mask], plain[:, :, mask], rtol=1e-5, atol=1e-5)
    assert bool((out[:, :, ~mask] == -10.0).all())
    # a plain tensor has no affine: the locator needs `spacing`, and without it restricts nothing
    assert not CandidateSlidingWindowInferer(ROI, lumen_hu=(120.0, None), margin=2).candidate_region(x.as_tensor())[1]
    assert CandidateSlidingWindowInferer(ROI, lumen_hu=(120.0, None), spacing=SPACING).candidate_region(x.as_tensor())[1]


def test_bfloat16_runs_the_network_under_autocast_and_sums_in_float32(network):
    x = torch.rand(1, 1, 32, 32, 16) * 500.0
    with torch.no_grad():
        full = CandidateSlidingWindowInferer(ROI, lumen_hu=(None, None), locator=None)(x, network)
        half = CandidateSlidingWindowInferer(ROI, lumen_hu=(None, None), locator=None, precision="bfloat16")
        low = half(x, network)
    assert half.stats.precision == "bfloat16" and low.dtype == torch.float32
    assert 0 < float((low - full).abs().max()) < 0.1 * float(full.abs().max())
    assert CandidateSlidingWindowInferer(ROI, precision="auto")._precision("cpu") in ("float32", "bfloat16")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CandidateSlidingWindowInferer(ROI, precision="half"), "precision must be one of float32, bfloat16, auto"),
        (lambda: CandidateSlidingWindowInferer(ROI, spacing=(0.4, 0.0, 0.6)), "spacing"),
        (lambda: HeartLocator(margin_mm=-1.0), "margin_mm"),
        (lambda: HeartLocator(pool_hu=800.0), "pool_hu"),
    ],
)
def test_bad_settings_raise_one_clear_error(make, message):
    with pytest.raises(SettingsError, match=message):
        make()
