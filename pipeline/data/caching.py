"""Caching of the deterministic preprocessing that fits the data set: in memory when it fits, else on disk.

MONAI caches everything up to the first random transform (loading, resampling, windowing, cropping): in RAM with
:class:`~monai.data.CacheDataset`, on disk with :class:`~monai.data.PersistentDataset`. A thousand full-size CT volumes
need hundreds of GB, so ``cache="auto"`` measures one preprocessed volume, scales it to every volume by the voxel
counts in the NIfTI headers, and keeps the cache in RAM only when the estimate fits a memory budget.

The disk cache lives in ``<cache_dir>/<hash of the preprocessing>/``: runs with the same preprocessing share it,
a change of any transform parameter starts a new folder, and an item's key includes its files' size and modification
time, so a replaced file is preprocessed again. MONAI writes each entry to a temporary file and then moves it into
place.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

import nibabel as nib
import numpy as np
import torch
from monai.data import CacheDataset, Dataset, ImageReader, PersistentDataset
from monai.transforms import Compose, RandomizableTrait, Transform

from pipeline.errors import SettingsError
from pipeline.io import strict_json, write_json

__all__ = [
    "CACHE_MODES",
    "CachePlan",
    "build_dataset",
    "check_cache_settings",
    "default_cache_dir",
    "deterministic_transforms",
    "memory_budget",
    "plan_cache",
    "preprocessing_hash",
]

logger = logging.getLogger(__name__)

#: the valid values of ``cache``
CACHE_MODES = ("auto", "ram", "disk", "none")

#: share of the machine's available memory that ``cache="auto"`` may fill by default
DEFAULT_BUDGET_FRACTION = 0.5


@dataclass(frozen=True)
class CachePlan:
    """What :func:`plan_cache` decided.

    Attributes:
        mode: ``"ram"``, ``"disk"`` or ``"none"``.
        requested: the ``cache`` asked for.
        estimated_bytes: estimated size of the preprocessed data set (0 when not estimated).
        budget_bytes: the memory budget it was compared with (0 when not compared).
        reason: one sentence, logged.
    """

    mode: str
    requested: str
    estimated_bytes: int
    budget_bytes: int
    reason: str


def deterministic_transforms(transform: Compose) -> list:
    """The transforms MONAI caches: the leading ones up to the first random (or non-MONAI) transform."""
    prefix = []
    for t in transform.flatten().transforms:
        if isinstance(t, RandomizableTrait) or not isinstance(t, Transform):
            break
        prefix.append(t)
    return prefix


def _describe(value: Any, depth: int = 0) -> Any:
    """A JSON-able description of ``value`` with its parameters, the same in every process (no memory addresses)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        return {"dtype": str(array.dtype), "shape": list(array.shape), "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    if isinstance(value, (torch.dtype, np.dtype)):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_describe(v, depth + 1) for v in value]
        return sorted(items, key=strict_json) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, dict):
        return {str(k): _describe(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, type) or inspect.isroutine(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if depth > 12 or not hasattr(value, "__dict__"):
        return name
    state = {k: v for k, v in vars(value).items() if not _runtime_state(value, k, v)}
    return {"class": name, "state": _describe(state, depth + 1)}


def _runtime_state(owner: Any, key: str, value: Any) -> bool:
    """What a transform records while it runs rather than how it is set: thread-local flags, a reader's last files."""
    return isinstance(value, threading.local) or (isinstance(owner, ImageReader) and key == "filenames")


def preprocessing_hash(transform: Compose) -> str:
    """SHA-256 of the cached transforms with all their parameters: any change gives a new hash."""
    description = strict_json(_describe(deterministic_transforms(transform)))
    return hashlib.sha256(description.encode()).hexdigest()


def _item_hash(item: dict) -> bytes:
    """An item's cache key: its entries plus the size and modification time of every file it names."""
    described = {}
    for key, value in sorted(item.items()):
        described[key] = value
        if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
            stat = os.stat(value)
            described[f"{key}#file"] = [os.path.abspath(value), stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(strict_json(dict(sorted(described.items()))).encode()).hexdigest().encode()


def memory_budget(fraction: float = DEFAULT_BUDGET_FRACTION) -> int:
    """``fraction`` of the memory available to this process's share of the machine, in bytes.

    Available memory is ``MemAvailable`` of ``/proc/meminfo`` (else the physical memory); under ``torchrun`` each of
    the machine's ``LOCAL_WORLD_SIZE`` processes builds its own cache, so each gets its share.
    """
    if not 0 < fraction <= 1:
        raise SettingsError(f"the memory budget fraction must be in (0, 1], got {fraction}.")
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(available * fraction / max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1))


def _voxels(item: dict) -> int:
    path = item.get("image")
    return int(np.prod(nib.load(str(path)).shape)) if isinstance(path, (str, os.PathLike)) else 0


def _nbytes(value: Any) -> int:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def estimate_bytes(data: Sequence[dict], transform: Compose) -> tuple[int, str]:
    """Estimated size of the cached data set: the first item preprocessed and measured, scaled to every item by the
    voxel counts in the image headers. Returns the estimate and how it was made."""
    if not data:
        return 0, "no items"
    sample = Compose(deterministic_transforms(transform))(dict(data[0]))
    measured = _nbytes(sample)
    reference = _voxels(data[0])
    if reference == 0:
        return measured * len(data), f"{measured / 1e6:.0f} MB measured on the first item, times {len(data)} items"
    total = sum(measured * _voxels(item) / reference for item in data)
    return int(total), (
        f"{measured / 1e6:.0f} MB measured for the first item's {reference / 1e6:.1f} M voxels, scaled to the "
        f"{len(data)} items' voxel counts"
    )


def _unwritable(folder: Path, why: str) -> SettingsError:
    return SettingsError(
        f"cache_dir '{folder}' cannot be written ({why}); give a writable cache_dir, or cache='ram' or cache='none' "
        f"(valid: {', '.join(CACHE_MODES)})."
    )


def check_cache_settings(
    cache: str, cache_dir: str | os.PathLike | None = None, memory_budget_gb: float | None = None
) -> None:
    """Check the caching settings before anything is built or written (the bundle's set-up calls it).

    ``cache`` must be one of :data:`CACHE_MODES` and ``memory_budget_gb`` ``None`` or > 0. The cache folder is
    checked when it will or may be used: always for ``"disk"``, for ``"auto"`` when ``cache_dir`` is given; it, or
    the nearest folder above it that exists, must be a writable folder. Nothing is created.

    Raises:
        SettingsError: the bad setting and value, with the valid choices.
    """
    if not isinstance(cache, str) or cache not in CACHE_MODES:
        raise SettingsError(f"cache must be one of {', '.join(CACHE_MODES)}, got {cache!r}.")
    number = isinstance(memory_budget_gb, (int, float)) and not isinstance(memory_budget_gb, bool)
    if memory_budget_gb is not None and not (number and memory_budget_gb > 0):
        raise SettingsError(f"memory_budget_gb must be > 0, got {memory_budget_gb}.")
    if cache == "disk" or (cache == "auto" and cache_dir is not None):
        folder = Path(cache_dir if cache_dir is not None else default_cache_dir()).absolute()
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise _unwritable(folder, f"'{existing}' is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise _unwritable(folder, f"no permission to write in '{existing}'")


def plan_cache(
    data: Sequence[dict],
    transform: Compose,
    cache: str = "auto",
    memory_budget_gb: float | None = None,
    budget_fraction: float = DEFAULT_BUDGET_FRACTION,
) -> CachePlan:
    """Decide where the preprocessed data set is cached (see :func:`build_dataset`); nothing is cached yet.

    Raises:
        SettingsError: ``cache`` not one of :data:`CACHE_MODES`, a budget out of range.
    """
    check_cache_settings(cache, memory_budget_gb=memory_budget_gb)
    if cache != "auto":
        return CachePlan(cache, cache, 0, 0, f"cache={cache} was asked for")
    budget = int(memory_budget_gb * 1e9) if memory_budget_gb is not None else memory_budget(budget_fraction)
    source = "given" if memory_budget_gb is not None else f"{budget_fraction:.0%} of the available memory"
    estimate, how = estimate_bytes(data, transform)
    fits = estimate <= budget
    reason = (
        f"cache=auto: the preprocessed data set is estimated at {estimate / 1e9:.2f} GB ({how}), "
        f"{'within' if fits else 'above'} the memory budget of {budget / 1e9:.2f} GB ({source}): "
        f"{'kept in RAM' if fits else 'cached on disk'}"
    )
    return CachePlan("ram" if fits else "disk", "auto", estimate, budget, reason)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vessel-pipeline/datasets`` (``~/.cache/...`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vessel-pipeline" / "datasets"


def _writable_cache_folder(cache_dir: str | os.PathLike | None, transform: Compose) -> Path:
    """``<cache_dir>/<preprocessing hash>/``, created and checked writable, with a ``preprocessing.json`` that says
    what the folder holds."""
    digest = preprocessing_hash(transform)
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / digest[:16]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise _unwritable(folder.parent, error.strerror or str(error)) from None
    description = folder / "preprocessing.json"
    if not description.exists():
        write_json(description, {"sha256": digest, "transforms": _describe(deterministic_transforms(transform))})
    return folder


def build_dataset(
    data: Sequence[dict],
    transform: Compose,
    cache: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    memory_budget_gb: float | None = None,
    budget_fraction: float = DEFAULT_BUDGET_FRACTION,
    num_workers: int | None = None,
) -> Dataset:
    """The training (or validation) dataset with its deterministic preprocessing cached where it fits.

    Args:
        data: datalist items (``{"image": path, "label": path}``).
        transform: the whole chain; what precedes its first random transform is cached.
        cache: ``"auto"`` (RAM when the estimated size fits the budget, else disk), ``"ram"``
            (:class:`~monai.data.CacheDataset`), ``"disk"`` (:class:`~monai.data.PersistentDataset`) or ``"none"``
            (:class:`~monai.data.Dataset`, everything recomputed every epoch).
        cache_dir: the disk cache's folder, shared between runs (default :func:`default_cache_dir`); checked writable
            only when the disk is used.
        memory_budget_gb: RAM that ``"auto"`` may fill, in GB (default: ``budget_fraction`` of the available memory).
        budget_fraction: see ``memory_budget_gb``.
        num_workers: threads that fill the RAM cache (MONAI's default when ``None``).

    Returns:
        the dataset.

    Raises:
        SettingsError: an unknown ``cache``, a bad budget, or a cache folder that cannot be written.
    """
    plan = plan_cache(data, transform, cache, memory_budget_gb, budget_fraction)
    if plan.mode == "disk":
        folder = _writable_cache_folder(cache_dir, transform)
        logger.info("%s in %s", plan.reason, folder)
        return PersistentDataset(data, transform, cache_dir=folder, hash_func=_item_hash)
    logger.info("%s", plan.reason)
    if plan.mode == "ram":
        return CacheDataset(data, transform, cache_rate=1.0, num_workers=num_workers, progress=False)
    return Dataset(data, transform)
