"""MONAI datasets and DataLoaders for training, validation and inference."""

from __future__ import annotations

import torch
from monai.data import DataLoader
from monai.transforms import Compose

from pipeline.data.caching import build_dataset

__all__ = ["make_loader"]


def make_loader(
    items: list[dict[str, str]],
    transform: Compose,
    batch_size: int = 1,
    shuffle: bool = False,
    cache: bool | str = True,
    num_workers: int = 0,
    seed: int | None = None,
) -> DataLoader:
    """A MONAI DataLoader over ``items``.

    Args:
        items: datalist entries (see :func:`pipeline.data.load_datalist`).
        transform: the chain to apply.
        batch_size: volumes per batch (each may yield several patches in training).
        shuffle: reshuffle the order every epoch.
        cache: where the result of the deterministic leading transforms is kept, so only the random patches and
            augmentation run every epoch: ``True`` in memory, ``False`` nowhere, or a mode of
            :func:`pipeline.data.build_dataset` (``"auto"``, ``"ram"``, ``"disk"``, ``"none"``).
        num_workers: loader worker processes (0 loads in the main process).
        seed: seed of the loader's own shuffling generator, so the order does not depend on the global RNG.
    """
    mode = cache if isinstance(cache, str) else ("ram" if cache else "none")
    dataset = build_dataset(items, transform, cache=mode)
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, generator=generator
    )
