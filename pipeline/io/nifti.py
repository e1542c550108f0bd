"""NIfTI geometry at the ground: reading a volume's header and voxel size (the datalist checks and the evaluation tool
both need it) and the scanner-like affine the phantom generators write."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from pipeline.errors import DatasetError

__all__ = ["load_volume", "phantom_affine", "spacing_of"]


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """A scanner affine as a DICOM-to-NIfTI conversion gives it: LPS axes (i and j flipped in RAS), centred origin."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [0.5 * (shape[0] - 1) * spacing[0], 0.5 * (shape[1] - 1) * spacing[1], -120.0]
    return affine


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along each array axis of a 4x4 affine (the norms of its first three columns)."""
    return tuple(float(s) for s in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))


def load_volume(path: str, role: str = "") -> nib.Nifti1Image:
    """The NIfTI image (header read, voxels not yet), checked to be a 3-D volume (a 4-D file with one volume is
    accepted). ``role`` (e.g. ``"label"``) starts the messages.

    Raises:
        DatasetError: unreadable file, or not a 3-D volume.
    """
    try:
        img = nib.load(path)
    except Exception as e:  # nibabel raises several types for unreadable files
        raise DatasetError(f"{role} '{path}' is not a readable NIfTI file: {type(e).__name__}: {e}.".lstrip()) from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
        raise DatasetError(f"{role} '{path}' has shape {shape}; a 3-D volume is expected.".lstrip())
    return img
