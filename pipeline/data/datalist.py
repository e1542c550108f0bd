"""Reading and checking MSD-style datalists before any training starts.

Every problem is reported as a :class:`DatasetError` that names the file at fault, instead of a stack trace from deep
inside a MONAI loader several minutes into a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib

__all__ = ["DatasetError", "resolve_datalist", "load_datalist", "check_pair", "check_items"]

DATALIST_NAME = "dataset.json"


class DatasetError(ValueError):
    """A dataset folder, datalist or image/label pair that cannot be used, with the file named in the message."""


def resolve_datalist(dataset_dir: str | os.PathLike, datalist: str | os.PathLike | None = None) -> Path:
    """Path of the datalist: ``datalist`` if given (relative to ``dataset_dir``), else ``dataset_dir/dataset.json``."""
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
            file = Path(entry[k])
            file = file if file.is_absolute() else (root / file)
            if not file.is_file():
                raise DatasetError(f"entry {i} of '{split}' in '{path}': {k} file '{file}' does not exist.")
            item[k] = str(file.resolve())
        items.append(item)
    return items


def _header_shape(path: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in nib.load(path).shape)
    except Exception as e:  # nibabel raises several types for unreadable files
        raise DatasetError(f"'{path}' is not a readable NIfTI file: {e}.") from None


def check_pair(image: str, label: str) -> None:
    """Check from the headers alone that ``image`` and ``label`` are readable 3-D volumes of the same shape."""
    image_shape, label_shape = _header_shape(image), _header_shape(label)
    for path, shape in ((image, image_shape), (label, label_shape)):
        if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
            raise DatasetError(f"'{path}' has shape {shape}; a 3-D volume is expected.")
    if image_shape[:3] != label_shape[:3]:
        raise DatasetError(f"image '{image}' has shape {image_shape} but its label '{label}' has shape {label_shape}.")


def check_items(items: list[dict[str, str]]) -> None:
    """Run :func:`check_pair` on every entry that has a label, and a header check on image-only entries."""
    for item in items:
        if "label" in item:
            check_pair(item["image"], item["label"])
        else:
            _header_shape(item["image"])
