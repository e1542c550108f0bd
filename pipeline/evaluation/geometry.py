"""Where the voxels of a NIfTI file lie in the world, and whether a prediction lies on its label's grid.

Two grids are compared in world space, by the positions of their voxel centres, not by the entries of their affines:
a prediction stored in another orientation (axes flipped or permuted, e.g. RAS against the label's LPS) is the same
grid once its array is reoriented, which is lossless (no resampling). Since the world position of a voxel is an affine
function of its index, the largest distance between corresponding voxel centres of two grids is reached at one of the
eight corner voxels, so comparing the corners is exact.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import nibabel as nib
import numpy as np
from nibabel.orientations import aff2axcodes, apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from pipeline.errors import DatasetError
from pipeline.io.nifti import load_volume, spacing_of

__all__ = [
    "GridMatch",
    "describe_grid",
    "grid_distance_mm",
    "header_warnings",
    "load_volume",
    "match_grids",
    "spacing_of",
    "volume_diagonal_mm",
]

logger = logging.getLogger(__name__)


def volume_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """The diagonal of the volume's field of view in mm, ``|shape * spacing|``: longer than any distance between two
    of its voxels, so the worst value a surface distance can take (Metrics Reloaded's choice for an empty mask)."""
    extent = np.asarray(shape[:3], dtype=np.float64) * np.asarray(spacing[:3], dtype=np.float64)
    return float(np.linalg.norm(extent))


def grid_distance_mm(first: np.ndarray, second: np.ndarray, shape: Sequence[int]) -> float:
    """Largest distance (mm) between the world positions that two affines give to the same voxel of a grid of
    ``shape`` (reached at a corner voxel)."""
    corners = np.array(np.meshgrid(*[(0, max(int(n) - 1, 0)) for n in shape[:3]], indexing="ij")).reshape(3, -1)
    corners = np.vstack([corners, np.ones(corners.shape[1])])
    difference = (np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)) @ corners
    return float(np.linalg.norm(difference[:3], axis=0).max())


def describe_grid(affine: np.ndarray, shape: Sequence[int]) -> str:
    """``"LPS, spacing (0.4, 0.4, 0.6) mm, origin (10, 20, -30) mm, shape (512, 512, 256)"``."""
    codes = "".join(c or "?" for c in aff2axcodes(affine))
    spacing = tuple(round(s, 4) for s in spacing_of(affine))
    origin = tuple(round(float(v), 3) for v in np.asarray(affine)[:3, 3])
    return f"{codes}, spacing {spacing} mm, origin {origin} mm, shape {tuple(int(n) for n in shape[:3])}"


def header_warnings(img: nib.Nifti1Image, path: str, role: str, tolerance_mm: float) -> list[str]:
    """What is doubtful about a file's position in space: no sform nor qform code (nibabel then places the volume
    from its voxel sizes alone), or an sform and a qform that put the voxels in different places (nibabel and this
    tool use the sform, ITK-based tools such as SimpleITK the qform)."""
    header = img.header
    if not hasattr(header, "get_sform"):
        return []
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code == 0 and qform_code == 0:
        return [f"{role} '{path}' has neither an sform nor a qform code: its position in space is unknown (the voxel "
                "sizes alone place it)"]
    if sform_code > 0 and qform_code > 0:
        distance = grid_distance_mm(header.get_sform(), header.get_qform(), img.shape)
        if distance > tolerance_mm:
            return [f"{role} '{path}': its sform and qform place the voxels up to {distance:.4g} mm apart; the sform is "
                    "used (as nibabel does; ITK-based tools use the qform)"]
    return []


@dataclass(frozen=True)
class GridMatch:
    """How a prediction's array maps onto its label's grid.

    Attributes:
        transform: nibabel orientation transform from the prediction's axes to the label's; ``None`` when the axes
            already agree.
        distance_mm: largest distance between corresponding voxel centres after the reorientation.
        note: what was done, e.g. ``"prediction reoriented RAS -> LPS"``; empty when nothing was.
    """

    transform: np.ndarray | None
    distance_mm: float
    note: str = ""

    def apply(self, data: np.ndarray) -> np.ndarray:
        """The prediction's array on the label's axes (a view: flips and transposes only)."""
        return data if self.transform is None else apply_orientation(data, self.transform)


def _round_up(value: float) -> float:
    """``value`` rounded up to two significant digits (a tolerance to suggest that surely accepts it)."""
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / step * (1 - 1e-12)) * step, 12)


def _orientation(affine: np.ndarray) -> np.ndarray | None:
    ornt = io_orientation(affine)
    return None if np.isnan(ornt).any() else ornt


def match_grids(
    prediction: nib.Nifti1Image, label: nib.Nifti1Image, tolerance_mm: float, paths: tuple[str, str]
) -> GridMatch:
    """Check that the prediction lies on the label's grid, in world space, allowing a lossless reorientation.

    Args:
        prediction: the prediction's image (header).
        label: the label's image (header).
        tolerance_mm: largest distance between corresponding voxel centres.
        paths: the two file names, for the messages.

    Returns:
        the reorientation to apply to the prediction's array.

    Raises:
        DatasetError: different shapes or grids, with both geometries and, where it would help, the option that
            relaxes the check.
    """
    pred_path, label_path = paths
    p_affine, l_affine = prediction.affine, label.affine
    p_shape, l_shape = tuple(prediction.shape[:3]), tuple(label.shape[:3])
    p_ornt, l_ornt = _orientation(p_affine), _orientation(l_affine)
    transform, affine, shape = None, p_affine, p_shape
    if p_ornt is not None and l_ornt is not None and not np.array_equal(p_ornt, l_ornt):
        transform = ornt_transform(p_ornt, l_ornt)
        affine = p_affine @ inv_ornt_aff(transform, p_shape)
        shape = tuple(int(p_shape[int(np.flatnonzero(transform[:, 0] == axis)[0])]) for axis in range(3))
    geometries = f"prediction {describe_grid(p_affine, p_shape)}; label {describe_grid(l_affine, l_shape)}"
    if shape != l_shape:
        raise DatasetError(
            f"prediction '{pred_path}' and its label '{label_path}' have different shapes"
            f"{' after reorienting the prediction' if transform is not None else ''} ({shape} vs {l_shape}): "
            f"{geometries}; resample the prediction onto the label's grid first."
        )
    distance = grid_distance_mm(affine, l_affine, l_shape)
    if distance > tolerance_mm:
        raise DatasetError(
            f"prediction '{pred_path}' and its label '{label_path}' are on different grids: voxel centres up to "
            f"{distance:.4g} mm apart (tolerance {tolerance_mm:g} mm): {geometries}; if they are the same voxels, "
            f"--geometry-tolerance-mm {_round_up(distance):g} accepts them (scored on the label's grid)."
        )
    note = ""
    if transform is not None:
        note = f"prediction reoriented {''.join(aff2axcodes(p_affine))} -> {''.join(aff2axcodes(l_affine))}"
        logger.info("%s: %s", pred_path, note)
    return GridMatch(transform=transform, distance_mm=distance, note=note)
