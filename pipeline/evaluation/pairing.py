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
#: nnU-Net's channel suffix (``case_0000`` is channel 0 of ``case``)
_CHANNEL = re.compile(r"_\d{4}$")
#: TotalSegmentator's data set keeps each case's structures in ``<case>/segmentations/``
_GROUPING_FOLDER = "segmentations"
#: the accepted column names of a pairs list, ours first
_COLUMNS = {"prediction": ("prediction", "prediction_file"), "label": ("label", "reference_file", "reference")}
_SUFFIX_EXAMPLE = {"prediction": "pred", "label": "label"}


@dataclass(frozen=True)
class CasePair:
    """One case to score: its name and the two files (``None`` where the counterpart is missing).

    Attributes:
        case: case name.
        prediction: prediction file, or ``None``.
        label: label file, or ``None``.
        looked_for: where the missing counterpart was looked for (for the message), or ``None``.
    """

    case: str
    prediction: Path | None
    label: Path | None
    looked_for: str | None = None


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


def _visible(path: Path, root: Path) -> bool:
    """Not hidden: no part of the path below ``root`` starts with a dot (``.DS_Store``, macOS's ``._case.nii.gz``)."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _nifti_files(folder: Path, role: str, recursive: bool, other: Path) -> list[Path]:
    """The visible NIfTI files of a folder (and its subfolders with ``recursive``, except the ``other`` side's folder
    if it lies inside), without nnU-Net channel files (``case_0000.nii.gz``) that lie next to their case's
    segmentation (``case.nii.gz``)."""
    if not folder.is_dir():
        raise InputError(f"{role} folder '{folder}' does not exist or is not a folder.")
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in found if p.name.lower().endswith(NIFTI_SUFFIXES) and _visible(p, folder) and p.is_file())
    inside = other.resolve()
    if recursive and inside != folder.resolve() and inside.is_relative_to(folder.resolve()):
        files = [p for p in files if not p.resolve().is_relative_to(inside)]
    hidden = [p.name for p in (folder.rglob(".*") if recursive else folder.glob(".*")) if p.name.lower().endswith(NIFTI_SUFFIXES)]
    if hidden:
        logger.info("%s folder '%s': skipped %d hidden file(s) such as '%s'", role, folder, len(hidden), hidden[0])
    stems = {(p.parent, _stem(p)) for p in files}
    channels = [p for p in files if _CHANNEL.search(_stem(p)) and (p.parent, _CHANNEL.sub("", _stem(p))) in stems]
    if channels:
        logger.info("%s folder '%s': skipped %d nnU-Net channel file(s) such as '%s' (their segmentation is there)",
                    role, folder, len(channels), channels[0].name)
    skipped = set(channels)
    return [p for p in files if p not in skipped]


def _case_folder(path: Path) -> str:
    """The folder that names a file's case: its parent, or the parent's parent for TotalSegmentator's
    ``<case>/segmentations/<structure>.nii.gz``."""
    parent = path.parent
    return parent.parent.name if parent.name == _GROUPING_FOLDER else parent.name


def _index(files: list[Path], role: str, key) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for f in files:
        k = key(f)
        if k in index:
            raise InputError(f"{role} files '{index[k]}' and '{f}' both belong to case '{k}'; keep one.")
        index[k] = f
    return index


def _collide(files: list[Path]) -> bool:
    keys = [case_id(f) for f in files]
    return len(set(keys)) < len(keys)


def _folder_key(path: Path) -> str:
    return f"{_case_folder(path)}/{case_id(path)}"


def _looked_for(case: str, role: str, folder: Path, recursive: bool, by_folder: bool) -> str:
    where = f"'{folder}'" + (" and its subfolders" if recursive else "")
    if by_folder:
        name = case.split("/", 1)[1]
        return f"'{name}.nii.gz' (or '{name}.nii', or with a role suffix such as '_{_SUFFIX_EXAMPLE[role]}') in a " \
               f"folder '{case.split('/', 1)[0]}' of {where}"
    return f"'{case}.nii.gz' (or '{case}.nii', or with a role suffix such as '{case}_{_SUFFIX_EXAMPLE[role]}.nii.gz') in {where}"


def pair_by_name(pred_dir: str | os.PathLike, label_dir: str | os.PathLike, recursive: bool = False) -> list[CasePair]:
    """Pair the NIfTI files of two folders.

    Files with the same name are paired (nnU-Net's convention); the others are paired by :func:`case_id`, so
    ``case_7_image_pred.nii.gz`` (what ``vessel-pipeline infer`` writes) meets ``case_7_label.nii.gz``. Hidden
    files (``.*``, macOS's ``._*``) are skipped, and so are nnU-Net channel files (``case_0000.nii.gz``) next to their
    case's segmentation (``case.nii.gz``).

    With ``recursive``, subfolders are searched too: MONAI ``SaveImage``'s ``s0001/s0001_seg.nii.gz`` is case
    ``s0001``. Where file names repeat across folders (TotalSegmentator writes ``<case>/<structure>.nii.gz``, its
    data set ``<case>/segmentations/<structure>.nii.gz``), the case is ``<case folder>/<structure>`` on both sides,
    and the structures that no prediction has (its ``ct.nii.gz`` images) are left out.

    Returns:
        one pair per case, sorted by case name; a file without counterpart gives a pair with ``None`` on the other
        side and ``looked_for`` saying where it was looked for.

    Raises:
        InputError: a folder is missing, holds no NIfTI file, or two files of one folder map to the same case.
    """
    pred_root, label_root = Path(pred_dir), Path(label_dir)
    preds = _nifti_files(pred_root, "prediction", recursive, label_root)
    labels = _nifti_files(label_root, "label", recursive, pred_root)
    if not preds and not labels:
        nested = not recursive and any(p.is_dir() and any(p.glob("*.nii*")) for root in (pred_root, label_root) for p in root.iterdir())
        hint = "; the files are in subfolders: pass --recursive" if nested else ""
        raise InputError(f"no NIfTI files (*.nii, *.nii.gz) in '{pred_dir}' nor in '{label_dir}'{hint}.")
    if not recursive:
        label_names = {p.name for p in labels}
        same = [p for p in preds if p.name in label_names]
        if len(same) == len(preds) == len(labels):
            return [CasePair(_stem(p), p, label_root / p.name) for p in same]
    by_folder = recursive and (_collide(preds) or _collide(labels))
    key = _folder_key if by_folder else case_id
    if by_folder:
        predicted = {case_id(p) for p in preds}
        ignored = sorted({case_id(p) for p in labels} - predicted)
        if ignored:
            logger.info("label folder '%s': left out the files named %s, which no prediction has", label_root, ignored)
        labels = [p for p in labels if case_id(p) in predicted]
    by_pred = _index(preds, "prediction", key)
    by_label = _index(labels, "label", key)
    pairs = []
    for k in sorted(set(by_pred) | set(by_label)):
        pred, label = by_pred.get(k), by_label.get(k)
        looked = None
        if pred is None or label is None:
            role, root = ("prediction", pred_root) if pred is None else ("label", label_root)
            looked = _looked_for(k, role, root, recursive, by_folder)
        pairs.append(CasePair(k, pred, label, looked))
    return pairs


def _resolve(value: object, base: Path, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: a file path is expected, got {value!r}.")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _column(row: dict, role: str) -> str | None:
    """The column of ``row`` that holds the ``role`` file (ours, or nnU-Net's ``prediction_file``/``reference_file``)."""
    return next((name for name in _COLUMNS[role] if name in row), None)


def _pairs_from_rows(rows: list, base: Path, source: Path) -> list[CasePair]:
    pairs, seen = [], set()
    for i, row in enumerate(rows):
        where = f"entry {i} of '{source}'"
        if not isinstance(row, dict):
            raise InputError(f"{where} must be an object with 'prediction' and 'label', got {row!r}.")
        columns = {role: _column(row, role) for role in _COLUMNS}
        missing = [" or ".join(repr(n) for n in _COLUMNS[role]) for role, name in columns.items() if name is None]
        if missing:
            raise InputError(f"{where} has no {' and no '.join(missing)} (it has {sorted(row)}).")
        pred = _resolve(row[columns["prediction"]], base, where)
        label = _resolve(row[columns["label"]], base, where)
        case = str(row.get("case") or case_id(label or pred or f"case_{i}"))
        if case in seen:
            raise InputError(f"case '{case}' appears twice in '{source}'; give each entry a distinct 'case'.")
        seen.add(case)
        pairs.append(CasePair(case, pred, label))
    return pairs


def read_pairs_file(path: str | os.PathLike) -> list[CasePair]:
    """Pairs listed in a CSV (columns ``prediction``, ``label`` and optionally ``case``) or a JSON file (a list of
    such objects, or ``{"pairs": [...]}``). nnU-Net's column names ``prediction_file`` and ``reference_file`` are
    accepted too, and so is nnU-Net's ``summary.json`` (its ``metric_per_case`` list). Relative paths are relative to
    the list's folder.

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
        rows = next((content[k] for k in ("pairs", "metric_per_case") if k in content), None) \
            if isinstance(content, dict) else content
        if not isinstance(rows, list):
            raise InputError(f"pairs list '{source}' must be a JSON list of pairs, or an object with a 'pairs' list "
                             "(or nnU-Net's 'metric_per_case').")
    else:
        raise InputError(f"pairs list '{source}' must be a .csv or .json file, got '{suffix or 'no extension'}'.")
    if not rows:
        raise InputError(f"pairs list '{source}' lists no pairs.")
    return _pairs_from_rows(rows, source.parent, source)
