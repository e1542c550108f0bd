"""Sliding-window inference that runs the network only where vessel lumen can be.

Most of a chest CT (air, lungs, fat, muscle) cannot hold a contrast-filled coronary artery. The inferer finds the
candidate region from intensities (:class:`~pipeline.inference.candidates.CandidateRegion`), crops the volume to the
windows of MONAI's grid that touch it, and lets MONAI's own :func:`~monai.inferers.sliding_window_inference` slide over
that crop, running the network only on windows that touch the region. Every window covering a candidate voxel runs, with
the same grid, weights and order as a plain run, so inside the region the output is MONAI's; outside it is background.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import Inferer, sliding_window_inference
from monai.inferers.utils import _get_scan_interval
from monai.utils import convert_to_dst_type
from tqdm import tqdm

from pipeline.errors import SettingsError
from pipeline.inference.candidates import DEFAULT_MARGIN, CandidateRegion, hu_to_intensity

__all__ = ["CandidateSlidingWindowInferer", "WindowStats"]

logger = logging.getLogger(__name__)


@dataclass
class WindowStats:
    """What the last call did: windows of the plain grid, windows the network ran on, the candidate share."""

    windows: int = 0
    run: int = 0
    region_fraction: float = 0.0


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
            a full coronary CT angiogram; see :meth:`CandidateRegion.from_image` for what it can lose).
        background: the output outside the region: one value for all channels or one per channel (for the project's
            single-logit networks, a clearly negative logit).
        mode: MONAI's window weighting (``"constant"`` or ``"gaussian"``).
        progress: show a tqdm bar over the windows that run, with the time left.
        sw_kwargs: more arguments of :func:`~monai.inferers.sliding_window_inference` (``padding_mode``, ``cval``,
            ``sigma_scale``, ``sw_device``, ``device``).

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
        self.roi_size = tuple(int(r) for r in roi_size)
        self.sw_batch_size = int(sw_batch_size)
        self.overlap = float(overlap)
        self.low = hu_to_intensity(lumen_hu[0], hu_window)
        self.high = hu_to_intensity(lumen_hu[1], hu_window)
        self.margin = int(margin)
        self.block = int(block)
        self.keep_largest = bool(keep_largest)
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
        region = CandidateRegion.from_image(image, self.low, self.high, self.margin, self.block, self.keep_largest)
        # MONAI pads an axis shorter than the window to the window (half before); its grid is on the padded axes
        padded = tuple(max(s, r) for s, r in zip(shape, self.roi_size))
        before = tuple((p - s) // 2 for p, s in zip(padded, shape))
        interval = _get_scan_interval(padded, self.roi_size, 3, (self.overlap,) * 3)
        grid = dense_patch_slices(padded, self.roi_size, interval, return_slice=False)
        kept = [w for w in grid if region.any_in(*self._unpadded(w, before))]
        self.stats = WindowStats(windows=len(grid), run=len(kept), region_fraction=region.fraction)
        logger.debug("candidate region %.1f%% of the volume: the network runs on %d of %d windows",
                     100 * self.stats.region_fraction, len(kept), len(grid))
        # the crop begins and ends on windows of the grid, so MONAI's grid inside it is the plain grid's (with no
        # candidate at all, the first window still runs once, to give the output's channels)
        kept = kept or grid[:1]
        crop = tuple(
            slice(0, s) if p > s else slice(min(w[a][0] for w in kept), max(w[a][1] for w in kept))
            for a, (s, p) in enumerate(zip(shape, padded))
        )
        start = tuple(c.start for c in crop)
        offset = tuple(st - b for st, b in zip(start, before))  # crop (padded) coordinates -> volume coordinates
        bar = tqdm(
            total=self.stats.run * image.shape[0], unit="window", desc="inference", leave=False, disable=not self.progress
        )
        predictor = _SkippingPredictor(network, region, offset, bar, args, kwargs)
        with bar:
            out = sliding_window_inference(
                image[(slice(None), slice(None), *crop)], self.roi_size, self.sw_batch_size, predictor, self.overlap,
                mode=self.mode, with_coord=True, **self.sw_kwargs,
            )
        values = self._values(out.shape[1])
        region.fill_outside(out, values, start)
        if out.shape[2:] != shape:
            full = out.new_empty((out.shape[0], out.shape[1], *shape))
            for channel, value in enumerate(values):
                full[:, channel].fill_(value)
            full[(slice(None), slice(None), *crop)] = out
            out = full
        return convert_to_dst_type(out, meta)[0] if meta is not None else out

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


class _SkippingPredictor:
    """The predictor MONAI calls with each batch of windows and their coordinates: the network runs on the windows
    that touch the candidate region; the others get zeros (they cover no candidate voxel, so none of their output is
    kept)."""

    def __init__(
        self, network: Callable[..., torch.Tensor], region: CandidateRegion, offset: Sequence[int], bar: tqdm,
        args: Sequence[Any], kwargs: dict[str, Any],
    ) -> None:
        self.network = network
        self.region = region
        self.offset = offset
        self.bar = bar
        self.args = args
        self.kwargs = kwargs
        self.out_shape: tuple[int, ...] | None = None

    def __call__(self, windows: torch.Tensor, coords: Sequence[Sequence[slice]]) -> torch.Tensor:
        keep = [i for i, c in enumerate(coords) if self._touches(c[2:])]
        if len(keep) == len(coords):
            logits = self.network(windows, *self.args, **self.kwargs)
            self.out_shape = tuple(logits.shape[1:])
            self.bar.update(len(keep))
            return logits
        if not keep and self.out_shape is not None:
            return windows.new_zeros((len(coords), *self.out_shape))
        logits = self.network(windows[keep or [0]], *self.args, **self.kwargs)  # without a candidate: for the shape
        self.out_shape = tuple(logits.shape[1:])
        out = windows.new_zeros((len(coords), *self.out_shape))
        if keep:
            out[keep] = logits.to(out.dtype)
            self.bar.update(len(keep))
        return out

    def _touches(self, window: Sequence[slice]) -> bool:
        return self.region.any_in(
            [s.start + o for s, o in zip(window, self.offset)], [s.stop + o for s, o in zip(window, self.offset)]
        )
