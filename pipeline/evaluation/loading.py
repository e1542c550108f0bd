"""Reading one prediction/label pair for scoring, with every check that turns a bad file into a one-line reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import nibabel as nib
import numpy as np

from pipeline.data.datalist import AFFINE_TOLERANCE_MM, check_pair, spacing_of
from pipeline.errors import DatasetError
from pipeline.evaluation.pairing import CasePair

__all__ = ["LoadedPair", "load_pair", "spacing_of"]


@dataclass
class LoadedPair:
    """The masks of one case, one per evaluated label, and the voxel size from the headers.

    Attributes:
        masks: label value -> (prediction mask, reference mask), boolean 3-D arrays.
        spacing: voxel size in mm along each array axis (norms of the affine's columns).
        shape: the volume's shape.
    """

    masks: dict[int, tuple[np.ndarray, np.ndarray]]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]


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


def _check_values(data: np.ndarray, path: str, role: str, labels: Sequence[int] | None) -> None:
    if labels is None:
        bad = (data != 0) & (data != 1)
        if bad.any():
            found = np.unique(data[bad])[:5].tolist()
            raise DatasetError(
                f"{role} '{path}' must be binary (0 and 1), but has values such as {found}; threshold probability maps "
                "first, or pass --labels for a multi-label file."
            )
        return
    bad = data != np.round(data)
    if bad.any():
        found = np.unique(data[bad])[:5].tolist()
        raise DatasetError(f"{role} '{path}' must hold integer label values, but has values such as {found}.")


def load_pair(
    pair: CasePair, labels: Sequence[int] | None = None, tolerance_mm: float = AFFINE_TOLERANCE_MM
) -> LoadedPair:
    """Read and check the two files of a case.

    Checks: both files exist; each is a readable 3-D NIfTI (a 4-D file with one volume is accepted); same shape;
    affines equal within ``tolerance_mm`` (:func:`pipeline.data.check_pair`); voxels readable (a truncated
    ``.nii.gz`` fails here); no NaN; binary values (``labels`` is ``None``) or integer values (multi-label).

    Args:
        pair: the case.
        labels: label values to evaluate in multi-label files; ``None`` for binary files (0/1, scored as label 1).
        tolerance_mm: largest affine difference (mm) accepted as the same grid.

    Raises:
        DatasetError: the reason, naming the file.
    """
    if pair.prediction is None or not pair.prediction.is_file():
        raise DatasetError(f"no prediction file for case '{pair.case}' (expected next to label '{pair.label}')."
                           if pair.prediction is None else f"prediction file '{pair.prediction}' does not exist.")
    if pair.label is None or not pair.label.is_file():
        raise DatasetError(f"no label file for case '{pair.case}' (prediction '{pair.prediction}')."
                           if pair.label is None else f"label file '{pair.label}' does not exist.")
    pred_img, label_img = check_pair(
        str(pair.prediction), str(pair.label), check_label_values=False, tolerance_mm=tolerance_mm,
        roles=("prediction", "label"),
    )
    pred = _voxels(pred_img, str(pair.prediction), "prediction")
    ref = _voxels(label_img, str(pair.label), "label")
    _check_values(pred, str(pair.prediction), "prediction", labels)
    _check_values(ref, str(pair.label), "label", labels)
    spacing = spacing_of(label_img.affine)
    if not all(np.isfinite(s) and s > 1e-6 for s in spacing):
        raise DatasetError(f"label '{pair.label}' has no usable voxel size in its header (spacing {spacing} mm from its affine).")
    masks = {int(v): (pred == v, ref == v) for v in (labels if labels is not None else (1,))}
    return LoadedPair(masks=masks, spacing=spacing, shape=tuple(int(s) for s in ref.shape))
