"""Reading one prediction/label pair for scoring, with every check that turns a bad file into a one-line reason.

The prediction is brought onto the label's grid (:func:`~pipeline.evaluation.geometry.match_grids`: world space,
lossless reorientation) and both files' values are turned into one boolean mask per scored label, as the settings
say: 0/1 files, ``threshold`` for probability maps, ``nonzero`` for any foreground value, or ``labels`` for
multi-label files. A value the settings do not explain is an error whose hint names the option that fits the values
found; a requested label missing from a file, or a value present but not requested, is noted, never scored silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import nibabel as nib
import numpy as np

from pipeline.errors import DatasetError
from pipeline.evaluation.geometry import header_warnings, load_volume, match_grids, spacing_of
from pipeline.evaluation.pairing import CasePair
from pipeline.evaluation.settings import EvaluationSettings

__all__ = ["LoadedPair", "load_pair", "spacing_of"]


@dataclass
class LoadedPair:
    """The masks of one case, one per evaluated label, and the voxel size from the label's header.

    Attributes:
        masks: label value -> (prediction mask, reference mask), boolean 3-D arrays on the label's grid.
        spacing: voxel size in mm along each array axis of the label (norms of the affine's columns).
        shape: the label's shape.
        notes: what the scores should be read with: reorientation, header warnings, absent or unrequested labels.
    """

    masks: dict[int, tuple[np.ndarray, np.ndarray]]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    notes: list[str] = field(default_factory=list)


def _voxels(img: nib.Nifti1Image, path: str, role: str) -> np.ndarray:
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # truncated or corrupt gzip streams raise EOFError, zlib.error, OSError, ValueError
        raise DatasetError(f"{role} '{path}' cannot be read (truncated or corrupt file?): {type(e).__name__}: {e}".strip()) from None
    data = data.reshape(data.shape[:3])
    if np.issubdtype(data.dtype, np.floating):
        n_nan = int(np.count_nonzero(np.isnan(data)))
        if n_nan:
            raise DatasetError(f"{role} '{path}' has {n_nan} NaN voxel(s); a segmentation must hold label values only.")
    return data


def _values(found: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in found[:6].tolist())
    return shown + (", ..." if len(found) > 6 else "")


def _binary_hint(values: np.ndarray, role: str) -> str:
    """The option that fits a file that is not 0/1 (``values``: its distinct nonzero values)."""
    integer = bool(np.all(values == np.round(values)))
    if not integer and values.min() > 0 and values.max() <= 1:
        if role == "prediction":
            return "a probability map? pass --threshold 0.5 (a voxel >= the threshold is foreground)"
        return "a label must not be a probability map"
    if integer and len(values) == 1:
        return f"a mask stored as 0/{values[0]:g}? pass --nonzero (any nonzero voxel is foreground, in each file)"
    if integer and values.min() > 0:
        return (f"a multi-label file? pass --labels with the values to score (here {_values(values)}), or --nonzero "
                "to score all of them as one foreground")
    return "pass --threshold T if it is a score map" if role == "prediction" else "a label holds 0 and 1 only"


def _binary_mask(data: np.ndarray, path: str, role: str, settings: EvaluationSettings) -> np.ndarray:
    if settings.nonzero:
        return data != 0
    if settings.threshold is not None and role == "prediction":
        return data >= settings.threshold
    bad = (data != 0) & (data != 1)
    if bad.any():
        found = np.unique(data[bad])
        raise DatasetError(f"{role} '{path}' must be binary (0 and 1), but has values such as {_values(found)}; "
                           f"{_binary_hint(np.unique(data[data != 0]), role)}.")
    return data == 1


def _label_values(data: np.ndarray, path: str, role: str) -> np.ndarray:
    """The nonzero values of a multi-label file (a vessel tree fills a small part of the volume: quick)."""
    foreground = data[data != 0]
    if not np.all(foreground == np.round(foreground)):
        found = np.unique(foreground[foreground != np.round(foreground)])
        raise DatasetError(f"{role} '{path}' must hold integer label values, but has values such as {_values(found)}.")
    return np.unique(foreground)


def _label_notes(present: dict[str, np.ndarray], labels: Sequence[int]) -> list[str]:
    notes = []
    for role, values in present.items():
        absent = [v for v in labels if v not in values]
        unrequested = [v for v in values.tolist() if v not in labels]
        if absent:
            notes.append(f"{role} has no voxel of label(s) {', '.join(map(str, absent))}")
        if unrequested:
            notes.append(f"{role} has label value(s) {_values(np.asarray(unrequested))} not requested with --labels")
    return notes


def load_pair(pair: CasePair, settings: EvaluationSettings = EvaluationSettings()) -> LoadedPair:
    """Read and check the two files of a case.

    Checks: both files exist; each is a readable 3-D NIfTI (a 4-D file with one volume is accepted); the prediction
    lies on the label's grid after a lossless reorientation (:func:`~pipeline.evaluation.geometry.match_grids`);
    voxels readable (a truncated ``.nii.gz`` fails here); no NaN; values as the settings ask.

    Args:
        pair: the case.
        settings: labels, threshold, nonzero and geometry tolerance.

    Raises:
        DatasetError: the reason, naming the file (and, for a missing file, where it was looked for).
    """
    if pair.prediction is None or not pair.prediction.is_file():
        looked = f"; looked for {pair.looked_for}" if pair.looked_for else ""
        raise DatasetError(f"no prediction file for case '{pair.case}' (label '{pair.label}'){looked}."
                           if pair.prediction is None else f"prediction file '{pair.prediction}' does not exist.")
    if pair.label is None or not pair.label.is_file():
        looked = f"; looked for {pair.looked_for}" if pair.looked_for else ""
        raise DatasetError(f"no label file for case '{pair.case}' (prediction '{pair.prediction}'){looked}."
                           if pair.label is None else f"label file '{pair.label}' does not exist.")
    pred_path, label_path = str(pair.prediction), str(pair.label)
    pred_img, label_img = load_volume(pred_path, "prediction"), load_volume(label_path, "label")
    spacing = spacing_of(label_img.affine)
    if not all(np.isfinite(s) and s > 1e-6 for s in spacing):
        raise DatasetError(f"label '{label_path}' has no usable voxel size in its header (spacing {spacing} mm from its affine).")
    match = match_grids(pred_img, label_img, settings.geometry_tolerance_mm, (pred_path, label_path))
    notes = [match.note] if match.note else []
    for img, path, role in ((pred_img, pred_path, "prediction"), (label_img, label_path, "label")):
        notes += header_warnings(img, path, role, settings.geometry_tolerance_mm)
    pred = match.apply(_voxels(pred_img, pred_path, "prediction"))
    ref = _voxels(label_img, label_path, "label")
    if settings.labels is None:
        masks = {1: (_binary_mask(pred, pred_path, "prediction", settings), _binary_mask(ref, label_path, "label", settings))}
    else:
        present = {"prediction": _label_values(pred, pred_path, "prediction"), "label": _label_values(ref, label_path, "label")}
        notes += _label_notes(present, settings.label_values)
        masks = {v: (pred == v, ref == v) for v in settings.label_values}
    return LoadedPair(masks=masks, spacing=spacing, shape=tuple(int(s) for s in ref.shape), notes=notes)
