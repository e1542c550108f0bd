"""Reading and checking MSD-style datalists before any training starts.

Every problem is reported as a :class:`DatasetError` that names the file at fault, instead of a stack trace from deep
inside a MONAI loader several minutes into a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.errors import DatasetError
from pipeline.io.nifti import load_volume, spacing_of

__all__ = ["DatasetError", "resolve_datalist", "load_datalist", "check_pair", "check_items", "spacing_of"]

DATALIST_NAME = "dataset.json"

#: largest difference (mm) between the affines of an image and its label that still counts as the same grid
AFFINE_TOLERANCE_MM = 1e-3


def resolve_datalist(dataset_dir: str | os.PathLike, datalist: str | os.PathLike | None = None) -> Path:
    """Path of the datalist: ``dataset_dir/dataset.json`` by default; a given ``datalist`` path is used as it is when
    it exists, else looked up inside ``dataset_dir``."""
    root = Path(dataset_dir)
    if not root.exists():
        raise DatasetError(f"dataset folder '{root}' does not exist.")
    if not root.is_dir():
        raise DatasetError(f"dataset folder '{root}' is not a folder.")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"dataset folder '{root}' is not readable.")
    path = Path(datalist) if datalist is not None else root / DATALIST_NAME
    if not path.is_absolute() and datalist is not None and not path.exists():
        path = root / path
    if not path.is_file():
        raise DatasetError(f"datalist '{path}' not found (expected an MSD-style JSON with 'training' etc. lists).")
    return path


def load_datalist(
    dataset_dir: str | os.PathLike,
    split: str,
    datalist: str | os.PathLike | None = None,
    keys: tuple[str, ...] = ("image", "label"),
) -> list[dict[str, str]]:
    """Entries of one list of an MSD-style datalist, with absolute paths, after checking that every file exists.

    Args:
        dataset_dir: folder the relative paths in the datalist are relative to.
        split: name of the list, e.g. ``"training"``, ``"validation"`` or ``"test"``.
        datalist: the JSON file; default ``dataset_dir/dataset.json``.
        keys: keys each entry must have (``("image",)`` for inference).

    Returns:
        the entries, each a dict of absolute paths.

    Raises:
        DatasetError: missing folder or file, malformed JSON, unknown or empty list, entry without a key.
    """
    root = Path(dataset_dir)
    path = resolve_datalist(root, datalist)
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"datalist '{path}' is not valid JSON: {e}.") from None
    except OSError as e:
        raise DatasetError(f"datalist '{path}' cannot be read: {e.strerror}.") from None
    lists = {k: v for k, v in content.items() if isinstance(v, list)} if isinstance(content, dict) else {}
    if split not in lists:
        raise DatasetError(f"datalist '{path}' has no list '{split}'; it has: {sorted(lists) or 'none'}.")
    if not lists[split]:
        raise DatasetError(f"the '{split}' list of datalist '{path}' is empty.")
    items = []
    for i, entry in enumerate(lists[split]):
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, dict):
            raise DatasetError(f"entry {i} of '{split}' in '{path}' must be an object or a path, got {entry!r}.")
        missing_keys = [k for k in keys if k not in entry]
        if missing_keys:
            raise DatasetError(f"entry {i} of '{split}' in '{path}' has no {missing_keys} (it has {sorted(entry)}).")
        item = {}
        for k in keys:
            if not isinstance(entry[k], str) or not entry[k]:
                raise DatasetError(f"entry {i} of '{split}' in '{path}': {k} must be a file path, got {entry[k]!r}.")
            file = Path(entry[k])
            file = file if file.is_absolute() else (root / file)
            if not file.is_file():
                raise DatasetError(f"entry {i} of '{split}' in '{path}': {k} file '{file}' does not exist.")
            item[k] = str(file.resolve())
        items.append(item)
    return items


def check_pair(
    image: str,
    label: str,
    check_label_values: bool = True,
    tolerance_mm: float = AFFINE_TOLERANCE_MM,
    roles: tuple[str, str] = ("image", "label"),
) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Check that ``image`` and ``label`` are readable 3-D volumes on the same grid, with a binary label.

    Shapes and affines come from the headers; with ``check_label_values`` the label's voxels are read too (a label
    compresses well, so this is quick) and must all be 0 or 1.

    Args:
        image: the first file (an image, or a prediction when scoring).
        label: the second file, which must lie on the grid of the first.
        check_label_values: also read the label's voxels and require 0 and 1 only.
        tolerance_mm: largest difference between the two affines (mm) that still counts as the same grid.
        roles: what the two files are, for the messages (e.g. ``("prediction", "label")``).

    Returns:
        the two NIfTI images (headers read, voxels not yet unless ``check_label_values``).
    """
    first, second = roles
    image_img, label_img = load_volume(image), load_volume(label)
    if image_img.shape[:3] != label_img.shape[:3]:
        raise DatasetError(
            f"{first} '{image}' has shape {tuple(image_img.shape)} but its {second} '{label}' has shape {tuple(label_img.shape)}."
        )
    if not np.allclose(image_img.affine, label_img.affine, rtol=0.0, atol=tolerance_mm):
        spacings = [tuple(round(v, 4) for v in spacing_of(img.affine)) for img in (image_img, label_img)]
        spacing_note = f"; spacing {spacings[0]} vs {spacings[1]} mm" if spacings[0] != spacings[1] else ""
        raise DatasetError(
            f"{first} '{image}' and its {second} '{label}' are on different grids (affines differ by up to "
            f"{np.abs(image_img.affine - label_img.affine).max():.4g} mm){spacing_note}; tolerance {tolerance_mm:g} mm.\n"
            f"{image_img.affine}\nvs\n{label_img.affine}"
        )
    if check_label_values:
        try:
            values = np.asarray(label_img.dataobj)
        except Exception as e:
            raise DatasetError(f"'{label}' is not a readable NIfTI file: {type(e).__name__}: {e}.") from None
        binary = (values == 0) | (values == 1)
        if not binary.all():
            found = np.unique(values[~binary])[:5]
            raise DatasetError(f"{second} '{label}' must hold only 0 and 1 (vessel), but has values such as {found.tolist()}.")
    return image_img, label_img


def check_items(items: list[dict[str, str]]) -> None:
    """Run :func:`check_pair` on every entry that has a label, and a header check on image-only entries."""
    for item in items:
        if "label" in item:
            check_pair(item["image"], item["label"])
        else:
            load_volume(item["image"])
