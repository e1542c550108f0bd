"""The datalists of a bundle, checked when it initialises (before any training or prediction)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from pipeline.data import DatasetError, check_items, load_datalist
from pipeline.data.plan import load_plan, plan_overrides
from pipeline.evaluation.pairing import NIFTI_SUFFIXES

__all__ = ["checked_datalist", "dataset_plan", "image_files"]

logger = logging.getLogger(__name__)


def checked_datalist(
    dataset_dir: str, split: str, datalist: str | None = None, keys: Sequence[str] = ("image", "label")
) -> list[dict[str, str]]:
    """One list of an MSD-style datalist with absolute paths, every file checked (exists, 3-D NIfTI, label on the
    image's grid and binary), so bad input fails when the bundle initializes, before any training.

    Raises:
        DatasetError: missing folder or datalist, missing or empty list, a missing or broken file.
    """
    items = load_datalist(dataset_dir, split, datalist, keys=tuple(keys))
    check_items(items)
    return items


def dataset_plan(dataset_dir: str) -> dict:
    """The bundle settings of ``dataset_dir/plan.json`` (``vessel-pipeline plan``), ``{}`` when there is none.

    ``train.json`` reads its data-dependent keys through this (``"$@plan.get('pixdim', <default>)"``), so a plan
    replaces the defaults and an explicit override replaces the plan.

    Raises:
        DatasetError: a plan of another schema version or one that cannot be read.
    """
    plan = load_plan(dataset_dir)
    if plan is None:
        logger.warning(
            "no plan.json in %s: training with the fallback settings of the bundle's train.json; "
            "'vessel-pipeline plan --dataset-dir %s' plans them from the data (docs/planning.md).", dataset_dir, dataset_dir
        )
    return plan_overrides(plan)


def image_files(inputs: str | Sequence[str], pattern: str = "*_image.nii.gz") -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` of NIfTI files: each of ``inputs`` is a file, or a folder whose files matching
    ``pattern`` are taken (sorted); headers checked.

    Raises:
        DatasetError: an input that does not exist, a folder without a matching NIfTI file, a broken file, or two
            inputs whose predictions would have the same name.
    """
    files: list[str] = []
    for entry in [inputs] if isinstance(inputs, (str, Path)) else list(inputs):
        path = Path(entry)
        if path.is_dir():
            found = sorted(str(p.resolve()) for p in path.glob(pattern) if p.name.lower().endswith(NIFTI_SUFFIXES))
            if not found:
                raise DatasetError(f"input folder '{path}' holds no NIfTI file matching {pattern!r}.")
            files += found
        elif path.is_file():
            files.append(str(path.resolve()))
        else:
            raise DatasetError(f"input '{path}' is neither a NIfTI file nor a folder.")
    names: dict[str, str] = {}
    for file in files:
        name = Path(file).name
        other = names.setdefault(name, file)
        if other != file:
            raise DatasetError(f"'{file}' and '{other}' would both be predicted as {name}; rename one.")
    items = [{"image": f} for f in files]
    check_items(items)
    return items
