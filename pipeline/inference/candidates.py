"""Where vessel lumen can be: a coarse candidate region found from intensities alone, before any network runs.

Contrast-enhanced lumen is bright (about 250-500 HU in a coronary CT angiogram); air, lungs, fat, muscle and unenhanced
soft tissue are not. The region is a union of small blocks whose mean intensity lies in the lumen range (the mean
suppresses isolated noise voxels), grown by a margin so that the dim partial-volume rim of every vessel stays inside.
It is kept at block resolution, so it costs a fraction of the volume's memory.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from pipeline.errors import SettingsError

__all__ = ["DEFAULT_MARGIN", "CandidateRegion", "hu_to_intensity"]

#: voxels kept around every candidate block: the partial-volume rim and the thin distal vessels are dimmer than the
#: lumen range (4 lost lumen voxels of 12 of 24 noisy ``tubes`` phantoms, 10 of none of them but of one of three
#: full-size ``ccta`` phantoms, 16 of none)
DEFAULT_MARGIN = 16


def hu_to_intensity(hu: float | None, hu_window: Sequence[float] | None) -> float | None:
    """An HU value on the scale of the network input, when the input is ``hu_window`` clipped and mapped linearly
    (``transforms.intensity_window``): ``(low, high)`` to [0, 1], or ``(low, high, std)`` (a dataset's plan) as
    ``(x - low) / std``; ``None`` (no bound) stays ``None``.

    Clipping erases what lies beyond the window: a low bound under the window's bottom becomes 0, a high bound at or
    above its top becomes ``None`` (no upper bound).
    """
    if hu is None or hu_window is None:
        return hu
    low, high = float(hu_window[0]), float(hu_window[1])
    scale = float(hu_window[2]) if len(hu_window) == 3 else high - low
    if hu >= high:
        return None
    return max((float(hu) - low) / scale, 0.0)


class CandidateRegion:
    """A union of ``block``-sized boxes of a volume that may hold vessel lumen.

    Args:
        blocks: boolean tensor on the block grid (one entry per ``block`` voxels along each spatial axis).
        block: block edge in voxels.
        shape: spatial shape of the volume in voxels.
    """

    def __init__(self, blocks: torch.Tensor, block: int, shape: Sequence[int]) -> None:
        self.blocks = blocks
        self.block = int(block)
        self.shape = tuple(int(s) for s in shape)

    @staticmethod
    def block_means(image: torch.Tensor, block: int = 2) -> torch.Tensor:
        """The mean of every ``block``-sized block of channel 0 (the last blocks may be partial).

        Args:
            image: ``(N, C, *spatial)`` batch or a ``(*spatial)`` volume.
            block: block edge in voxels.

        Returns:
            ``(N, d, h, w)`` float tensor.
        """
        if block < 1:
            raise SettingsError(f"block must be >= 1 voxel, got {block}.")
        x = image if image.dim() > 3 else image[None, None]
        x = torch.as_tensor(x)[:, :1].float()
        if x.dim() != 5:
            raise SettingsError(f"image must be 3-D (N, C, D, H, W or D, H, W), got shape {tuple(image.shape)}.")
        return (F.avg_pool3d(x, kernel_size=block, stride=block, ceil_mode=True) if block > 1 else x)[:, 0]

    @classmethod
    def from_image(
        cls,
        image: torch.Tensor,
        low: float | None,
        high: float | None = None,
        margin: int = DEFAULT_MARGIN,
        block: int = 2,
        keep_largest: bool = False,
    ) -> "CandidateRegion":
        """The blocks of ``image`` whose mean intensity lies in ``[low, high]``, grown by ``margin`` voxels
        (:meth:`block_means`, then :meth:`from_means`).

        Args:
            image: ``(N, C, *spatial)`` batch (channel 0 is read; the region is the union over the batch) or a
                ``(*spatial)`` volume, on the scale of ``low``/``high``.
            low, high, margin, block, keep_largest: as :meth:`from_means`.
        """
        x = image if image.dim() > 3 else image[None, None]
        return cls.from_means(cls.block_means(image, block), low, high, x.shape[2:], margin, block, keep_largest)

    @classmethod
    def from_means(
        cls,
        means: torch.Tensor,
        low: float | None,
        high: float | None,
        shape: Sequence[int],
        margin: int = DEFAULT_MARGIN,
        block: int = 2,
        keep_largest: bool = False,
        within: torch.Tensor | None = None,
    ) -> "CandidateRegion":
        """The blocks whose mean intensity lies in ``[low, high]``, grown by ``margin`` voxels.

        Args:
            means: ``(N, d, h, w)`` block means (:meth:`block_means`); the region is the union over ``N``.
            low: lowest plausible lumen intensity (``None``: no lower bound).
            high: highest plausible lumen intensity (``None``: no upper bound).
            shape: spatial shape of the volume in voxels.
            margin: voxels added around every candidate block, rounded up to whole blocks.
            block: block edge in voxels (the block mean is the smoothing).
            keep_largest: keep only the largest connected structure of candidate blocks (26-connected) before the
                margin. In a coronary CT angiogram that is the contrast-filled aorta and heart with the coronary
                arteries, whose lumen starts at the aortic root; bone, pulmonary vessels and noise drop out. A vessel
                cut off from it (an occlusion longer than the margin, separate trees, a crop without the aorta) is
                lost: off by default.
            within: boolean ``(d, h, w)`` mask of the block grid outside of which nothing is a candidate (applied
                after the margin; e.g. :class:`~pipeline.inference.heart.HeartLocator`'s region).

        Returns:
            the region.
        """
        if margin < 0:
            raise SettingsError(f"margin must be >= 0 voxels, got {margin}.")
        if low is not None and high is not None and low > high:
            raise SettingsError(f"the lumen range must be (low, high) with low <= high, got ({low}, {high}).")
        inside = torch.ones_like(means, dtype=torch.bool)
        if low is not None:
            inside &= means >= low
        if high is not None:
            inside &= means <= high
        inside = inside.any(dim=0)
        if keep_largest and bool(inside.any()):
            labels, _ = ndimage.label(inside.numpy(), structure=np.ones((3, 3, 3), dtype=bool))
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            inside = torch.from_numpy(labels == int(np.argmax(sizes)))
        grown = inside[None, None].float()
        reach = math.ceil(margin / block)
        if reach:
            for axis in range(3):  # a box-shaped dilation, one axis at a time
                kernel = [1, 1, 1]
                kernel[axis] = 2 * reach + 1
                padding = [0, 0, 0]
                padding[axis] = reach
                grown = F.max_pool3d(grown, kernel_size=kernel, stride=1, padding=padding)
        blocks = grown[0, 0] > 0
        if within is not None:
            blocks &= within
        return cls(blocks, block, shape)

    @property
    def fraction(self) -> float:
        """Share of the volume's voxels inside the region."""
        sizes = []
        for n, s in zip(self.blocks.shape, self.shape):  # voxels per block along each axis (the last may be partial)
            edge = torch.full((n,), float(self.block), dtype=torch.float64)
            edge[-1] = s - (n - 1) * self.block
            sizes.append(edge)
        inside = torch.einsum("ijk,i,j,k->", self.blocks.double(), *sizes)
        return float(inside) / math.prod(self.shape)

    def _block_range(self, start: Sequence[int], stop: Sequence[int]) -> tuple[slice, ...]:
        return tuple(
            slice(max(int(a), 0) // self.block, -(-min(int(b), s) // self.block))
            for a, b, s in zip(start, stop, self.shape)
        )

    def any_in(self, start: Sequence[int], stop: Sequence[int]) -> bool:
        """Whether the box ``[start, stop)`` (voxels, clipped to the volume) touches the region."""
        return bool(self.blocks[self._block_range(start, stop)].any())

    def voxel_mask(self, start: Sequence[int], stop: Sequence[int]) -> torch.Tensor:
        """The region inside the box ``[start, stop)`` at voxel resolution (boolean, the box's shape)."""
        ranges = self._block_range(start, stop)
        mask = self.blocks[ranges]
        for axis in range(3):
            mask = mask.repeat_interleave(self.block, dim=axis)
        offsets = [int(a) - r.start * self.block for a, r in zip(start, ranges)]
        return mask[tuple(slice(o, o + int(b) - int(a)) for o, a, b in zip(offsets, start, stop))]

    def fill_outside(self, output: torch.Tensor, values: Sequence[float], start: Sequence[int], slab: int = 16) -> None:
        """Set every voxel of ``output`` outside the region to ``values`` (one per channel), in place.

        Args:
            output: ``(N, C, *box)`` tensor covering the box of the volume that begins at ``start``.
            values: fill value of each channel.
            start: the box's first voxel in the volume.
            slab: planes along the first spatial axis processed at a time (bounds the temporary mask's memory).
        """
        box = output.shape[2:]
        for z in range(0, box[0], slab):
            depth = min(slab, box[0] - z)
            begin = (start[0] + z, start[1], start[2])
            stop = (begin[0] + depth, start[1] + box[1], start[2] + box[2])
            outside = ~self.voxel_mask(begin, stop)
            for channel, value in enumerate(values):
                output[:, channel, z : z + depth].masked_fill_(outside, value)
