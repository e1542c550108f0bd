"""Tubed skeleton labels for the Skeleton Recall loss (Kirchhoff et al., ECCV 2024).

The skeleton is computed once per sample in the data pipeline (CPU workers, before the network), never inside the
loss: skeletonise the binary label (``skimage.morphology.skeletonize``, Lee's 3-D thinning), dilate it ``dilation``
times with the face-connected cross, and keep it inside the label, as the authors' nnU-Net ``SkeletonTransform``.
"""

from __future__ import annotations

from typing import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type, convert_to_numpy
from scipy import ndimage
from skimage.morphology import skeletonize

from pipeline.errors import InputError, SettingsError

__all__ = ["TubedSkeleton", "TubedSkeletond"]


class TubedSkeleton(Transform):
    """Channel-wise tubed skeleton of a binary ``C, *spatial`` label (2-D or 3-D), same type and dtype as the label.

    Args:
        dilation: dilations of the one-voxel skeleton with the face-connected cross (0 keeps the bare skeleton);
            the authors use 2.

    Raises:
        ValueError: a label with values other than 0 and 1.
    """

    def __init__(self, dilation: int = 2) -> None:
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
            raise SettingsError(f"dilation must be a non-negative integer, got {dilation!r}.")
        self.dilation = dilation

    def __call__(self, label: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        array = convert_to_numpy(label)
        if array.ndim not in (3, 4):
            raise InputError(f"label must be C, H, W or C, H, W, D, got shape {array.shape}.")
        values = np.unique(array)
        if not np.isin(values, (0, 1)).all():
            raise InputError(
                f"label must be binary (values 0 and 1) for the tubed skeleton, found values {values[:8]}."
            )
        out = np.zeros(array.shape, dtype=bool)
        structure = ndimage.generate_binary_structure(array.ndim - 1, 1)
        for c, channel in enumerate(array.astype(bool)):
            if not channel.any():
                continue
            skeleton = skeletonize(channel)
            if self.dilation:
                skeleton = ndimage.binary_dilation(skeleton, structure=structure, iterations=self.dilation)
            out[c] = skeleton & channel
        return convert_to_dst_type(out, label, dtype=label.dtype)[0]


class TubedSkeletond(MapTransform):
    """Dictionary version of :class:`TubedSkeleton`.

    By default the skeleton is appended to the label as extra channels (``C`` label channels, then ``C`` skeleton
    channels), so that later spatial transforms (crops, flips, rotations) move both together and MONAI's
    ``SupervisedTrainer`` hands both to :class:`~pipeline.losses.CombinedLoss`, which splits them. Place it after
    resampling and before random cropping, so that the skeleton is that of the whole vessel tree. With
    ``skeleton_key`` the skeleton goes to its own key instead.

    Args:
        keys: label key(s).
        skeleton_key: where to write the skeleton; ``None`` appends it to the label's channels.
        dilation: see :class:`TubedSkeleton`.
        allow_missing_keys: do not raise on missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "label",
        skeleton_key: str | None = None,
        dilation: int = 2,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if skeleton_key is not None and len(self.keys) != 1:
            raise SettingsError(f"skeleton_key needs exactly one label key, got keys={list(self.keys)}.")
        self.skeleton_key = skeleton_key
        self.skeleton = TubedSkeleton(dilation)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            skeleton = self.skeleton(d[key])
            if self.skeleton_key is not None:
                d[self.skeleton_key] = skeleton
            elif isinstance(d[key], np.ndarray):
                d[key] = np.concatenate([d[key], skeleton])
            else:
                d[key] = torch.cat([d[key], skeleton])
        return d
