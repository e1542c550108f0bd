"""Pairing prediction and label NIfTI files: by file name across two folders, or from a CSV / JSON list.

A file missing on one side does not stop the evaluation: its pair is returned with ``None`` on that side, and the
runner reports the case as failed with the reason.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

__all__ = ["CasePair", "NIFTI_SUFFIXES", "case_id", "pair_by_name", "read_pairs_file"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: role suffixes removed from a file name to find the case it belongs to (``case_0000`` is nnU-Net's channel suffix)
_ROLE_SUFFIX = re.compile(r"(_(pred|prediction|seg|segmentation|label|labels|mask|gt|image|img)|_0000)$", re.IGNORECASE)


@dataclass(frozen=True)
class CasePair:
    """One case to score: its name and the two files (``None`` where the counterpart is missing)."""

    case: str
    prediction: Path | None
    label: Path | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def case_id(path: str | os.PathLike) -> str:
    """The case a NIfTI file belongs to: its name without extension and without trailing role suffixes such as
    ``_pred``, ``_label``, ``_image`` or ``_0000`` (``case_7_image_pred.nii.gz`` -> ``case_7``)."""
    stem = _stem(Path(path))
    while _ROLE_SUFFIX.search(stem) and _ROLE_SUFFIX.sub("", stem):
        stem = _ROLE_SUFFIX.sub("", stem)
    return stem


def _nifti_files(folder: Path, role: str) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{role} folder '{folder}' does not exist or is not a folder.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES))


def _index(files: list[Path], role: str, key) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for f in files:
        k = key(f)
        if k in index:
            raise InputError(f"{role} files '{index[k].name}' and '{f.name}' both belong to case '{k}'; keep one.")
        index[k] = f
    return index


def pair_by_name(pred_dir: str | os.PathLike, label_dir: str | os.PathLike) -> list[CasePair]:
    """Pair the NIfTI files of two folders.

    Files with the same name are paired (nnU-Net's convention); the others are paired by :func:`case_id`, so
    ``case_7_image_pred.nii.gz`` (what ``vessel-pipeline infer`` writes) meets ``case_7_label.nii.gz``.

    Returns:
        one pair per case, sorted by case name; a file without counterpart gives a pair with ``None`` on the other
        side.

    Raises:
        InputError: a folder is missing, holds no NIfTI file, or two files of one folder map to the same case.
    """
    preds = _nifti_files(Path(pred_dir), "prediction")
    labels = _nifti_files(Path(label_dir), "label")
    if not preds and not labels:
        raise InputError(f"no NIfTI files (*.nii, *.nii.gz) in '{pred_dir}' nor in '{label_dir}'.")
    label_names = {p.name for p in labels}
    same = [p for p in preds if p.name in label_names]
    if len(same) == len(preds) == len(labels):
        return [CasePair(_stem(p), p, Path(label_dir) / p.name) for p in same]
    by_pred = _index(preds, "prediction", case_id)
    by_label = _index(labels, "label", case_id)
    return [CasePair(k, by_pred.get(k), by_label.get(k)) for k in sorted(set(by_pred) | set(by_label))]


def _resolve(value: object, base: Path, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: a file path is expected, got {value!r}.")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _pairs_from_rows(rows: list, base: Path, source: Path) -> list[CasePair]:
    pairs, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"entry {i} of '{source}' must be an object with 'prediction' and 'label', got {row!r}.")
        missing = [k for k in ("prediction", "label") if k not in row]
        if missing:
            raise InputError(f"entry {i} of '{source}' has no {missing} (it has {sorted(row)}).")
        pred = _resolve(row["prediction"], base, f"entry {i} of '{source}'")
        label = _resolve(row["label"], base, f"entry {i} of '{source}'")
        case = str(row.get("case") or case_id(label or pred or f"case_{i}"))
        if case in seen:
            raise InputError(f"case '{case}' appears twice in '{source}'; give each entry a distinct 'case'.")
        seen.add(case)
        pairs.append(CasePair(case, pred, label))
    return pairs


def read_pairs_file(path: str | os.PathLike) -> list[CasePair]:
    """Pairs listed in a CSV (columns ``prediction``, ``label`` and optionally ``case``) or a JSON file (a list of
    such objects, or ``{"pairs": [...]}``). Relative paths are relative to the list's folder.

    Raises:
        InputError: unreadable or malformed list, missing columns, duplicate case names.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(f"pairs list '{source}' does not exist.")
    suffix = source.suffix.lower()
    try:
        text = source.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of a column name
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"pairs list '{source}' cannot be read: {e}.") from None
    if suffix == ".csv":
        rows: list = list(csv.DictReader(text.splitlines()))
    elif suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"pairs list '{source}' is not valid JSON: {e}.") from None
        rows = content.get("pairs") if isinstance(content, dict) else content
        if not isinstance(rows, list):
            raise InputError(f"pairs list '{source}' must be a JSON list of pairs or an object with a 'pairs' list.")
    else:
        raise InputError(f"pairs list '{source}' must be a .csv or .json file, got '{suffix or 'no extension'}'.")
    if not rows:
        raise InputError(f"pairs list '{source}' lists no pairs.")
    return _pairs_from_rows(rows, source.parent, source)
