"""The candidate-region sliding-window inferer against MONAI's plain sliding_window_inference on small volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage
from monai.inferers import sliding_window_inference

from pipeline.errors import SettingsError
from pipeline.inference import CandidateRegion, CandidateSlidingWindowInferer
from pipeline.networks import create_unet
from pipeline.phantoms import PhantomConfig, make_phantom
from transforms import DEFAULT_HU_WINDOW

ROI = (32, 32, 16)


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_unet(channels=(4, 8, 16), strides=(2, 2), num_res_units=0).eval()


def _volume(shape: tuple[int, ...], batch: int = 1) -> torch.Tensor:
    """Tissue-grey noise with one bright tube per sample (HU 40 and 400 mapped through the default window)."""
    g = torch.Generator().manual_seed(1)
    x = torch.full((batch, 1, *shape), (40.0 + 150) / 800) + 0.02 * torch.randn((batch, 1, *shape), generator=g)
    x[0, 0, 8:12, 6 : shape[1] - 6, 5:8] = (400.0 + 150) / 800
    if batch > 1:
        x[1, 0, shape[0] - 12 : shape[0] - 9, 20:24, 2 : shape[2] - 2] = (400.0 + 150) / 800
    return x


@pytest.mark.parametrize(
    "shape, batch, sw_batch_size",
    [((90, 70, 40), 1, 3), ((80, 64, 12), 2, 4)],  # the second: an axis shorter than the window, a batch of two
    ids=["crop", "padded-axis-batch"],
)
def test_output_is_monai_inside_the_region_and_background_outside(network, shape, batch, sw_batch_size):
    x = _volume(shape, batch)
    inferer = CandidateSlidingWindowInferer(ROI, sw_batch_size, 0.25, hu_window=DEFAULT_HU_WINDOW, margin=3)
    with torch.no_grad():
        plain = sliding_window_inference(x, ROI, sw_batch_size, network, 0.25)
        ours = inferer(x, network)
    assert ours.shape == plain.shape
    region = CandidateRegion.from_image(x, inferer.low, inferer.high, margin=3).voxel_mask((0, 0, 0), shape)
    assert 0 < region.float().mean() < 0.5  # the tube and its margin, not the grey tissue
    torch.testing.assert_close(ours[:, :, region], plain[:, :, region], rtol=1e-5, atol=1e-5)
    assert bool((ours[:, :, ~region] == -10.0).all())
    assert 0 < inferer.stats.run < inferer.stats.windows  # windows were skipped, others ran


def _pointwise(windows: torch.Tensor) -> torch.Tensor:
    """A "network" whose output at a voxel depends on that voxel alone, so window batches cannot change a value."""
    return torch.cat([2.0 * windows + 1.0, windows * windows - 0.3], dim=1)


@pytest.mark.parametrize(
    "shape, batch, mode", [((90, 70, 40), 1, "constant"), ((80, 64, 12), 2, "gaussian")],
    ids=["crop-constant", "padded-axis-batch-gaussian"],
)
def test_the_stitched_output_is_bit_identical_to_monai_inside_the_region(mode, shape, batch):
    """No count map is kept (constant: per-axis window counts; Gaussian: summed over the windows that ran), yet every
    voxel of the region gets exactly MONAI's value; and only the windows touching the region ran."""
    x = _volume(shape, batch)
    calls = []
    inferer = CandidateSlidingWindowInferer(ROI, 3, 0.4, hu_window=DEFAULT_HU_WINDOW, margin=3, mode=mode)
    ours = inferer(x, lambda w: calls.append(len(w)) or _pointwise(w))
    plain = sliding_window_inference(x, ROI, 3, _pointwise, 0.4, mode=mode)
    region = CandidateRegion.from_image(x, inferer.low, inferer.high, margin=3).voxel_mask((0, 0, 0), shape)
    assert torch.equal(ours[:, :, region], plain[:, :, region])
    assert bool((ours[:, :, ~region] == -10.0).all())
    assert sum(calls) == batch * inferer.stats.run < batch * inferer.stats.windows


def test_metatensor_in_metatensor_out_with_the_inputs_affine(network):
    affine = torch.diag(torch.tensor([-0.4, -0.4, 0.6, 1.0], dtype=torch.float64))
    x = MetaTensor(_volume((64, 48, 32)), affine=affine)
    with torch.no_grad():
        out = CandidateSlidingWindowInferer(ROI, hu_window=DEFAULT_HU_WINDOW, background=(-7.0,))(x, network)
    assert isinstance(out, MetaTensor)
    torch.testing.assert_close(out.affine, x.affine)
    assert float(out.min()) == -7.0


def test_a_volume_without_candidates_is_background_at_the_cost_of_one_window(network):
    calls = []
    with torch.no_grad():
        out = CandidateSlidingWindowInferer(ROI, hu_window=DEFAULT_HU_WINDOW)(
            torch.zeros(1, 1, 64, 64, 32), lambda w: calls.append(len(w)) or network(w)
        )
    assert calls == [1] and bool((out == -10.0).all()) and out.shape == (1, 1, 64, 64, 32)


def test_the_default_region_keeps_every_lumen_voxel_of_tube_phantoms():
    """Noisy phantoms with thin distal branches: every labelled voxel lies in the candidate region."""
    for seed in range(2):
        phantom = make_phantom(PhantomConfig(shape=(96, 96, 48), noise_hu=30.0), np.random.default_rng([5, seed]))
        scaled = np.clip((phantom.image - DEFAULT_HU_WINDOW[0]) / (DEFAULT_HU_WINDOW[1] - DEFAULT_HU_WINDOW[0]), 0, 1)
        inferer = CandidateSlidingWindowInferer(ROI, hu_window=DEFAULT_HU_WINDOW)
        region = CandidateRegion.from_image(
            torch.as_tensor(scaled, dtype=torch.float32), inferer.low, inferer.high, inferer.margin, inferer.block
        )
        mask = region.voxel_mask((0, 0, 0), phantom.image.shape).numpy()
        assert mask[phantom.label > 0].all(), f"seed {seed}: {int((phantom.label > 0).sum() - mask[phantom.label > 0].sum())} lumen voxels lost"
        # tissue and fat farther from every vessel than the margin (and a block's rounding) are not candidates, but
        # for the surroundings of a few noise peaks
        far = ndimage.distance_transform_cdt(phantom.label == 0, metric="chessboard") > inferer.margin + 2 * inferer.block
        assert far.mean() > 0.1 and mask[far].mean() < 0.1


def test_keep_largest_drops_what_is_not_connected_to_the_largest_structure():
    """A thick bright vessel (standing for the aorta with its coronaries) and a thin one apart from it: by default
    both are candidates; with keep_largest only the thick one and its margin."""
    x = torch.zeros(1, 1, 64, 64, 32)
    x[0, 0, 4:16, 4:60, 4:16] = 0.8
    x[0, 0, 50:52, 10:50, 20:22] = 0.8
    both = CandidateRegion.from_image(x, 0.5, None, margin=2).voxel_mask((0, 0, 0), x.shape[2:])
    largest = CandidateRegion.from_image(x, 0.5, None, margin=2, keep_largest=True).voxel_mask((0, 0, 0), x.shape[2:])
    assert bool(both[50, 30, 20]) and not bool(largest[50, 30, 20])
    assert bool(largest[10, 30, 10]) and bool(largest[17, 30, 10]) and not bool(largest[20, 30, 10])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lumen_hu": (500.0, 100.0)}, "low <= high"),
        ({"roi_size": (32, 32)}, "roi_size"),
        ({"overlap": 1.0}, "overlap"),
        ({"hu_window": (650.0, -150.0)}, "hu_window"),
        ({"mode": "linear"}, "mode must be one of constant, gaussian"),
        ({"buffer_steps": 2}, r"unknown sliding-window arguments \['buffer_steps'\]; valid: padding_mode"),
    ],
)
def test_bad_settings_raise_one_clear_error(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        inferer = CandidateSlidingWindowInferer(**{"roi_size": ROI, **kwargs})
        inferer(torch.zeros(1, 1, 32, 32, 16), lambda w: w)


def test_a_plan_window_maps_the_lumen_range_as_its_preprocessing_does():
    """A dataset's plan windows as (low, high, std): clipped, then (x - low) / std (transforms.intensity_window)."""
    from pipeline.inference.candidates import hu_to_intensity
    from transforms.intensity import intensity_window

    window = (100.0, 600.0, 125.0)
    mapped = intensity_window("image", window)({"image": torch.tensor([[[[40.0, 120.0, 350.0, 700.0]]]])})["image"]
    assert hu_to_intensity(120.0, window) == pytest.approx(float(mapped.flatten()[1]))
    assert hu_to_intensity(40.0, window) == 0.0 and hu_to_intensity(600.0, window) is None
    inferer = CandidateSlidingWindowInferer(ROI, hu_window=window)
    assert inferer.low == pytest.approx((120.0 - 100.0) / 125.0)
