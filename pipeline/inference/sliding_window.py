"""Sliding-window inference that runs the network only where vessel lumen can be.

Most of a chest CT (air, lungs, fat, muscle, bone) cannot hold a contrast-filled coronary artery. The inferer finds the
candidate region from intensities (:class:`~pipeline.inference.candidates.CandidateRegion`) within a coarse heart
region on full fields of view (:class:`~pipeline.inference.heart.HeartLocator`) and runs the network only on the
windows of MONAI's grid (:func:`~monai.inferers.sliding_window_inference`'s padding, grid and weights) that touch it,
stitching them into one output the size of the volume (:func:`~pipeline.inference.window_sum.sum_windows`: no count
map of the volume is kept). Every window covering a candidate voxel runs, so inside the region the output is MONAI's;
outside it is background.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing, dense_patch_slices
from monai.inferers import Inferer
from monai.inferers.utils import _get_scan_interval
from monai.utils import convert_to_dst_type
from tqdm import tqdm

from pipeline.errors import SettingsError
from pipeline.inference.candidates import DEFAULT_MARGIN, CandidateRegion, hu_to_intensity
from pipeline.inference.heart import HeartLocator
from pipeline.inference.window_sum import MODES, sum_windows

__all__ = ["PRECISIONS", "SW_KWARGS", "CandidateSlidingWindowInferer", "WindowStats"]

#: MONAI ``sliding_window_inference`` arguments the inferer takes besides its own
SW_KWARGS = ("padding_mode", "cval", "sigma_scale", "sw_device", "device")

#: ``precision`` choices: the network in float32, under autocast to bfloat16, or bfloat16 where the CPU computes it
#: natively (AVX-512 BF16 or AMX; float32 elsewhere, and on CUDA)
PRECISIONS = ("float32", "bfloat16", "auto")

logger = logging.getLogger(__name__)


@dataclass
class WindowStats:
    """What the last call did: windows of the plain grid, windows the network ran on, the candidate share."""

    windows: int = 0
    run: int = 0
    region_fraction: float = 0.0
    heart: bool = False
    precision: str = "float32"


class CandidateSlidingWindowInferer(Inferer):
    """MONAI's sliding-window inference restricted to the voxels that may be vessel lumen.

    Usable wherever MONAI takes an ``Inferer`` (a ``SupervisedEvaluator``, a bundle's ``"inferer"`` with ``_target_``).

    Args:
        roi_size: window size in voxels.
        sw_batch_size: windows per forward pass.
        overlap: window overlap fraction (MONAI's grid).
        lumen_hu: (low, high) HU that contrast-enhanced lumen may have, block means compared; ``None`` for an open end.
        hu_window: the (low, high) HU that preprocessing mapped to [0, 1] with clipping (or ``(low, high, std)``: clipped,
            then ``(x - low) / std``, a dataset's plan), so the range above can be read
            on the input's scale; ``None`` when the input is in HU.
        margin: voxels kept around every candidate block (see :data:`~pipeline.inference.candidates.DEFAULT_MARGIN`).
        block: edge of the blocks whose mean intensity is tested, in voxels.
        keep_largest: keep only the largest connected candidate structure (the aorta and heart with the coronaries of
            a full coronary CT angiogram; see :meth:`CandidateRegion.from_means` for what it can lose).
        locator: the coarse heart region candidates must lie in on a full field of view (it restricts nothing on a
            volume too small to hold a heart or without a blood pool); ``None``: intensities alone.
        spacing: voxel size in mm, for inputs without an affine (a :class:`~monai.data.MetaTensor` brings its own);
            without either, the locator is skipped.
        precision: the network's arithmetic, one of :data:`PRECISIONS`. ``"bfloat16"`` runs it under
            ``torch.autocast`` (logits differ from float32 by a few hundredths); the sum of the windows stays float32.
        background: the output outside the region: one value for all channels or one per channel (for the project's
            single-logit networks, a clearly negative logit).
        mode: MONAI's window weighting, one of :data:`~pipeline.inference.window_sum.MODES`.
        progress: show a tqdm bar over the windows that run, with the time left.
        sw_kwargs: those of :data:`SW_KWARGS`, as in :func:`~monai.inferers.sliding_window_inference`
            (``padding_mode`` and ``cval`` pad an axis shorter than the window, ``sigma_scale`` shapes the Gaussian
            weights, ``sw_device`` is where windows are predicted, ``device`` where the output is kept).

    The last call's window counts are in :attr:`stats`.
    """

    def __init__(
        self,
        roi_size: Sequence[int],
        sw_batch_size: int = 4,
        overlap: float = 0.25,
        lumen_hu: Sequence[float | None] = (120.0, None),
        hu_window: Sequence[float] | None = None,
        margin: int = DEFAULT_MARGIN,
        block: int = 2,
        keep_largest: bool = False,
        locator: HeartLocator | None = HeartLocator(),
        spacing: Sequence[float] | None = None,
        precision: str = "float32",
        background: float | Sequence[float] = -10.0,
        mode: str = "constant",
        progress: bool = False,
        **sw_kwargs: Any,
    ) -> None:
        super().__init__()
        if len(roi_size) != 3 or any(int(r) < 1 for r in roi_size):
            raise SettingsError(f"roi_size must be three positive sizes in voxels, got {tuple(roi_size)}.")
        if sw_batch_size < 1:
            raise SettingsError(f"sw_batch_size must be >= 1, got {sw_batch_size}.")
        if not 0 <= overlap < 1:
            raise SettingsError(f"overlap must be in [0, 1), got {overlap}.")
        if len(lumen_hu) != 2 or (None not in lumen_hu and lumen_hu[0] > lumen_hu[1]):
            raise SettingsError(
                f"lumen_hu must be (low, high) in HU with low <= high (None for an open end), got {tuple(lumen_hu)}."
            )
        if hu_window is not None and (
            len(hu_window) not in (2, 3) or hu_window[0] >= hu_window[1] or (len(hu_window) == 3 and hu_window[2] <= 0)
        ):
            raise SettingsError(
                f"hu_window must be (low, high) with low < high, or (low, high, std) with std > 0, got {tuple(hu_window)}."
            )
        if precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        if mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        unknown = sorted(set(sw_kwargs) - set(SW_KWARGS))
        if unknown:
            raise SettingsError(f"unknown sliding-window arguments {unknown}; valid: {', '.join(SW_KWARGS)}.")
        if spacing is not None and (len(spacing) != 3 or any(float(v) <= 0 for v in spacing)):
            raise SettingsError(f"spacing must be three voxel sizes in mm > 0, got {tuple(spacing)}.")
        self.roi_size = tuple(int(r) for r in roi_size)
        self.sw_batch_size = int(sw_batch_size)
        self.overlap = float(overlap)
        self.low = hu_to_intensity(lumen_hu[0], hu_window)
        self.high = hu_to_intensity(lumen_hu[1], hu_window)
        self.margin = int(margin)
        self.block = int(block)
        self.keep_largest = bool(keep_largest)
        self.locator = locator
        self.spacing = None if spacing is None else tuple(float(v) for v in spacing)
        self.precision = precision
        self.hu_window = None if hu_window is None else tuple(hu_window)
        self.background = background
        self.mode = mode
        self.progress = progress
        self.sw_kwargs = sw_kwargs
        self.stats = WindowStats()

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """The network's output on the whole of ``inputs`` (``(N, C, D, H, W)``): MONAI's inside the candidate region,
        ``background`` outside."""
        meta = MetaTensor([]).copy_meta_from(inputs, copy_attr=False) if isinstance(inputs, MetaTensor) else None
        image = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        shape = tuple(image.shape[2:])
        region, heart = self.candidate_region(inputs)
        # MONAI pads an axis shorter than the window to the window (half before); its grid is on the padded axes
        padded = tuple(max(s, r) for s, r in zip(shape, self.roi_size))
        before = tuple((p - s) // 2 for p, s in zip(padded, shape))
        interval = _get_scan_interval(padded, self.roi_size, 3, (self.overlap,) * 3)
        grid = dense_patch_slices(padded, self.roi_size, interval, return_slice=False)
        run = [i for i, w in enumerate(grid) if region.any_in(*self._unpadded(w, before))]
        sw_device = self.sw_kwargs.get("sw_device") or image.device
        precision = self._precision(sw_device)
        self.stats = WindowStats(len(grid), len(run), region.fraction, heart, precision)
        logger.debug("candidate region %.1f%% of the volume (heart region: %s): the network runs on %d of %d windows "
                     "in %s", 100 * self.stats.region_fraction, heart, len(run), len(grid), precision)
        if padded != shape:
            pads = [n for b, p, s in reversed(list(zip(before, padded, shape))) for n in (b, p - s - b)]
            image = F.pad(image, pads, mode=self.sw_kwargs.get("padding_mode", "constant"),
                          value=self.sw_kwargs.get("cval", 0.0))
        bar = tqdm(total=max(len(run), 1) * image.shape[0], unit="window", desc="inference", leave=False,
                   disable=not self.progress)
        with bar:
            # with no candidate at all, the first window still runs once, to give the output's channels
            out = sum_windows(
                image, grid, run or [0], lambda windows: self._predict(network, windows, precision, args, kwargs),
                self.sw_batch_size, self.mode, self.sw_kwargs.get("sigma_scale", 0.125), self.sw_kwargs.get("device"),
                sw_device, bar,
            )
        if padded != shape:
            out = out[(slice(None), slice(None), *(slice(b, b + s) for b, s in zip(before, shape)))].contiguous()
        region.fill_outside(out, self._values(out.shape[1]), (0, 0, 0))
        return convert_to_dst_type(out, meta)[0] if meta is not None else out

    @staticmethod
    def _predict(
        network: Callable[..., torch.Tensor], windows: torch.Tensor, precision: str, args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> torch.Tensor:
        if precision == "float32":
            return network(windows, *args, **kwargs)
        with torch.autocast(windows.device.type, dtype=torch.bfloat16):
            logits = network(windows, *args, **kwargs)
        return logits.to(windows.dtype)

    def candidate_region(self, inputs: torch.Tensor) -> tuple[CandidateRegion, bool]:
        """Where the network will run on ``inputs`` (``(N, C, D, H, W)``): the candidate region, within the heart region
        where the locator finds one.

        Returns:
            the region and whether the heart region restricted it.
        """
        image = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        means = CandidateRegion.block_means(image, self.block)
        within, spacing = None, self._spacing(inputs)
        if self.locator is not None and spacing is not None:
            to_input = lambda hu: hu_to_intensity(hu, self.hu_window)  # noqa: E731
            hearts = [self.locator.locate(m, [s * self.block for s in spacing], to_input) for m in means]
            if all(h is not None for h in hearts):
                within = torch.stack(hearts).any(dim=0)
        region = CandidateRegion.from_means(
            means, self.low, self.high, image.shape[2:], self.margin, self.block, self.keep_largest, within
        )
        return region, within is not None

    def _spacing(self, inputs: torch.Tensor) -> tuple[float, ...] | None:
        if isinstance(inputs, MetaTensor) and inputs.affine is not None:
            affine = inputs.affine if inputs.affine.dim() == 2 else inputs.affine[0]
            return tuple(float(v) for v in affine_to_spacing(affine, r=3))
        return self.spacing

    def _precision(self, device: torch.device | str) -> str:
        if self.precision != "auto":
            return self.precision
        if torch.device(device).type != "cpu":
            return "float32"
        native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
            torch.cpu, "_is_amx_tile_supported", lambda: False
        )()
        return "bfloat16" if native else "float32"

    @staticmethod
    def _unpadded(window: Sequence[tuple[int, int]], before: Sequence[int]) -> tuple[list[int], list[int]]:
        return [w[0] - b for w, b in zip(window, before)], [w[1] - b for w, b in zip(window, before)]

    def _values(self, channels: int) -> list[float]:
        if isinstance(self.background, (int, float)):
            return [float(self.background)] * channels
        values = [float(v) for v in self.background]
        if len(values) != channels:
            raise SettingsError(f"background has {len(values)} values but the network gives {channels} channels.")
        return values
