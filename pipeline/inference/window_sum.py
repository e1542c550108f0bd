"""The stitching of a sliding-window prediction from some of the windows of MONAI's grid, into one output tensor.

MONAI's :func:`~monai.inferers.sliding_window_inference` keeps an output and a count map of the whole (padded) volume
and calls the network on every window of its grid. When most windows need not run, the same weighted average can be
had at the cost of the output alone: the windows that run are added into the output in the grid's order (as MONAI
adds them), and the sum of the window weights (the count map) is not stored. With constant weights it is the product
of the number of windows covering each coordinate along each axis (the grid is the product of one grid per axis), so
the output is divided by it plane by plane; with Gaussian weights the count map is summed over the bounding box of
the windows that ran only.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from monai.data.utils import compute_importance_map
from tqdm import tqdm

from pipeline.errors import SettingsError

__all__ = ["MODES", "sum_windows"]

#: window weightings (MONAI's ``mode`` of :func:`~monai.inferers.sliding_window_inference`)
MODES = ("constant", "gaussian")

Window = Sequence[tuple[int, int]]


def sum_windows(
    image: torch.Tensor,
    grid: Sequence[Window],
    run: Sequence[int],
    predict: Callable[[torch.Tensor], torch.Tensor],
    sw_batch_size: int,
    mode: str = "constant",
    sigma_scale: float = 0.125,
    device: torch.device | str | None = None,
    sw_device: torch.device | str | None = None,
    bar: tqdm | None = None,
) -> torch.Tensor:
    """MONAI's weighted average of window predictions at every voxel whose covering windows all ran.

    Args:
        image: ``(N, C, *spatial)`` input, each spatial size at least the window's (pad it first, as MONAI does).
        grid: every window of MONAI's grid on ``image`` (``dense_patch_slices(..., return_slice=False)``), as
            ``(start, stop)`` per spatial axis.
        run: indices into ``grid`` of the windows the network runs on, in the grid's order.
        predict: the network (already in the wanted precision), windows ``(B, C, *window)`` to ``(B, K, *window)``.
        sw_batch_size: windows per call of ``predict``.
        mode: the window weighting, one of :data:`MODES`.
        sigma_scale: the Gaussian's standard deviation as a fraction of the window (``mode="gaussian"``).
        device: where the output is summed (default: the input's device).
        sw_device: where the windows are predicted (default: the input's device).
        bar: progress bar advanced by one per window predicted.

    Returns:
        ``(N, K, *spatial)`` in the input's dtype: MONAI's output at every voxel whose covering windows are all in
        ``run``; at voxels no window of ``run`` covers, 0; elsewhere a partial average the caller must overwrite.
    """
    if mode not in MODES:
        raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if not run:
        raise SettingsError("at least one window must run, to give the output's channels.")
    device = torch.device(device) if device is not None else image.device
    sw_device = torch.device(sw_device) if sw_device is not None else image.device
    roi = tuple(b - a for a, b in grid[0])
    weight = None
    if mode != "constant":
        weight = compute_importance_map(roi, mode=mode, sigma_scale=sigma_scale, device=sw_device, dtype=image.dtype)
    windows = [grid[i] for i in run]
    out: torch.Tensor | None = None
    for n in range(image.shape[0]):
        for first in range(0, len(windows), sw_batch_size):
            batch = windows[first : first + sw_batch_size]
            data = torch.cat([image[(slice(n, n + 1), slice(None), *_slices(w))] for w in batch]).to(sw_device)
            logits = predict(data)
            if tuple(logits.shape[2:]) != roi:
                raise SettingsError(
                    f"the network must keep the window's size: {roi} in, {tuple(logits.shape[2:])} out."
                )
            if weight is not None:
                logits = logits * weight
            logits = logits.to(device=device, dtype=image.dtype)
            if out is None:
                out = torch.zeros((image.shape[0], logits.shape[1], *image.shape[2:]), dtype=image.dtype, device=device)
            for window, values in zip(batch, logits):
                out[(n, slice(None), *_slices(window))] += values
            if bar is not None:
                bar.update(len(batch))
    assert out is not None
    if weight is None:
        _divide_by_window_counts(out, grid)
    else:
        _divide_by_weight_sums(out, windows, weight.to(device))
    return out


def _slices(window: Window) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in window)


def _divide_by_window_counts(out: torch.Tensor, grid: Sequence[Window]) -> None:
    """Divide ``out`` by the number of grid windows covering each voxel (a product of one count per axis), one plane
    at a time, so no count map of the volume is made."""
    counts = []
    for axis, size in enumerate(out.shape[2:]):
        count = torch.zeros(size, dtype=out.dtype, device=out.device)
        for a, b in {w[axis] for w in grid}:
            count[a:b] += 1
        counts.append(count)
    plane = counts[1][:, None] * counts[2][None, :]
    for z in range(out.shape[2]):
        out[:, :, z].div_(plane * counts[0][z])


def _divide_by_weight_sums(out: torch.Tensor, windows: Sequence[Window], weight: torch.Tensor) -> None:
    """Divide ``out`` by the summed weights of ``windows`` over their bounding box (MONAI's count map, restricted to
    the windows that ran: equal to it wherever all covering windows ran); voxels outside the box stay 0."""
    low = [min(w[a][0] for w in windows) for a in range(3)]
    high = [max(w[a][1] for w in windows) for a in range(3)]
    total = torch.zeros([h - lo for lo, h in zip(low, high)], dtype=out.dtype, device=out.device)
    for window in windows:
        total[tuple(slice(a - lo, b - lo) for (a, b), lo in zip(window, low))] += weight
    total[total == 0] = 1  # covered by no window that ran: 0 stays 0
    box = (slice(None), slice(None), *(slice(lo, h) for lo, h in zip(low, high)))
    out[box] /= total
