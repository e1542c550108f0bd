"""Binary labels kept as ``uint8`` where they are cached and handed on as ``float32``.

A cached full-size CT volume is mostly its tensors: the image in float32 and the label (and the tubed skeleton of
the Skeleton Recall loss) in float32 take 4 bytes per voxel each, although the label holds only 0 and 1.
:class:`BinaryToUint8d` ends the deterministic (cached) part of a chain and stores the labels in 1 byte per voxel;
:class:`ToFloat32d` turns them back into the float32 0.0/1.0 that the losses, metrics and the network saw before.

:class:`ToFloat32d` is a plain callable on purpose, not a MONAI ``Transform``: MONAI's ``CacheDataset`` and
``PersistentDataset`` (and :func:`pipeline.data.caching.deterministic_transforms`) cache the transforms up to the
first random transform *or the first one that is not a MONAI* ``Transform``, so it runs on every fetch, after the
cache, even in a chain with no random transform (the validation chain).
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from pipeline.errors import InputError

__all__ = ["BinaryToUint8d", "ToFloat32d"]


def _non_binary_values(value: torch.Tensor | np.ndarray) -> list:
    """Up to five values of ``value`` other than 0 and 1 (empty when it is binary)."""
    if isinstance(value, np.ndarray):
        return np.unique(value[(value != 0) & (value != 1)])[:5].tolist()
    tensor = torch.as_tensor(value)
    return torch.unique(tensor[(tensor != 0) & (tensor != 1)])[:5].tolist()


class BinaryToUint8d(MapTransform):
    """Cast binary labels (values 0 and 1 only) to ``uint8``; place it last among the deterministic transforms.

    Args:
        keys: label keys (a label with the skeleton appended as channels counts as one).
        allow_missing_keys: do not raise on missing keys.

    Raises:
        InputError: a label with a value other than 0 and 1 (never truncated silently); the datalist check
            (:func:`pipeline.data.datalist.check_pair`) rejects such label files before training.
    """

    def __init__(self, keys: KeysCollection = "label", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor | np.ndarray]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            found = _non_binary_values(value)
            if found:
                raise InputError(
                    f"'{key}' must hold only 0 and 1 to be cached as uint8, but has values such as {found} "
                    f"after preprocessing (resample labels with nearest-neighbour interpolation)."
                )
            d[key] = value.astype(np.uint8) if isinstance(value, np.ndarray) else value.to(torch.uint8)
        return d


class ToFloat32d:
    """Cast ``keys`` to ``float32`` (tensors keep their metadata): not a MONAI ``Transform``, so it is never cached.

    Args:
        keys: the keys to cast.
    """

    def __init__(self, keys: str | Sequence[str] = "label") -> None:
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor | np.ndarray]) -> dict:
        d = dict(data)
        for key in self.keys:
            value = d[key]
            d[key] = value.astype(np.float32) if isinstance(value, np.ndarray) else value.to(torch.float32)
        return d
