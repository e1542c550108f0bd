"""Write synthetic phantoms as NIfTI pairs with an MSD-style ``dataset.json``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from pipeline.errors import SettingsError
from pipeline.io import write_json
from pipeline.phantoms.volume import PhantomConfig, make_phantom

__all__ = ["write_nifti", "write_phantom_dataset", "split_counts"]

logger = logging.getLogger(__name__)


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Save ``array`` with ``affine`` (sform and qform, scanner space, millimetres) and return the path."""
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, str(path))
    return Path(path)


def split_counts(n_cases: int, fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> tuple[int, int, int]:
    """Number of training/validation/test cases for ``n_cases``.

    Largest-remainder rounding of ``n_cases * fraction``; then, when there are at least three cases, a list with a
    non-zero fraction that got none takes one case from the largest list. Counts are never negative and sum to
    ``n_cases``.
    """
    if n_cases < 1:
        raise SettingsError(f"n_cases must be >= 1, got {n_cases}.")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise SettingsError(f"fractions must be three non-negative numbers (train, validation, test), got {fractions}.")
    raw = [n_cases * f / float(sum(fractions)) for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    by_remainder = sorted(range(3), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[: n_cases - sum(counts)]:
        counts[i] += 1
    if n_cases >= 3:
        for i in range(3):
            if fractions[i] > 0 and counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] += 1
    return counts[0], counts[1], counts[2]


def write_phantom_dataset(
    out_dir: str | Path,
    n_cases: int = 10,
    config: PhantomConfig | None = None,
    seed: int = 0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    prefix: str = "coronary",
) -> Path:
    """Generate ``n_cases`` phantoms into ``out_dir`` and describe them in ``dataset.json``.

    Case ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a case does not depend on how many others are
    made. Files are ``{prefix}_{i:03d}_image.nii.gz`` (int16 HU) and ``{prefix}_{i:03d}_label.nii.gz`` (uint8).

    Args:
        out_dir: folder to write into (created if needed).
        n_cases: number of image/label pairs.
        config: phantom parameters (default :class:`PhantomConfig`).
        seed: base seed.
        fractions: relative sizes of the training, validation and test lists.
        prefix: file-name prefix of each case.

    Returns:
        path of the written ``dataset.json``.
    """
    config = config or PhantomConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_val, _ = split_counts(n_cases, fractions)
    entries = []
    for i in range(n_cases):
        phantom = make_phantom(config, np.random.default_rng([seed, i]))
        name = f"{prefix}_{i:03d}"
        write_nifti(phantom.image, phantom.affine, out / f"{name}_image.nii.gz")
        write_nifti(phantom.label, phantom.affine, out / f"{name}_label.nii.gz")
        entries.append({"image": f"./{name}_image.nii.gz", "label": f"./{name}_label.nii.gz"})
        logger.info("wrote %s (%d vessel voxels, %d trees)", name, int(phantom.label.sum()), len(phantom.trees))
    description = {
        "name": "SyntheticCoronary",
        "description": "Synthetic coronary-like vessel trees in CT-like volumes (pipeline.phantoms)",
        "reference": "generated",
        "licence": "CC0-1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "vessel"},
        "generator": {
            "seed": seed,
            "shape": list(config.shape),
            "spacing": list(config.spacing),
            "n_trees": config.n_trees,
        },
        "numTraining": n_train + n_val,
        "numTest": n_cases - n_train - n_val,
        "training": entries[:n_train],
        "validation": entries[n_train : n_train + n_val],
        "test": entries[n_train + n_val :],
    }
    return write_json(out / "dataset.json", description)
