"""Write synthetic phantoms (kind ``tubes`` or ``ccta``) as NIfTI pairs with an MSD-style ``dataset.json``."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from pipeline.errors import SettingsError
from pipeline.io import write_json
from pipeline.phantoms.ccta import SEGMENTS, CCTAConfig, make_ccta_phantom
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
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise SettingsError(f"n_cases must be an integer >= 1, got {n_cases}.")
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


def _render(config: PhantomConfig | CCTAConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """(image, label, affine, segments or None, description) of one case of either kind."""
    if isinstance(config, CCTAConfig):
        p = make_ccta_phantom(config, rng)
        return p.image, p.label, p.affine, p.segments, p.meta
    p = make_phantom(config, rng)
    return p.image, p.label, p.affine, None, {"trees": len(p.trees)}


def _generator_description(config: PhantomConfig | CCTAConfig, seed: int) -> dict:
    if isinstance(config, CCTAConfig):
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
        return {"kind": "ccta", "seed": seed, "settings": settings}
    return {"seed": seed, "shape": list(config.shape), "spacing": list(config.spacing), "n_trees": config.n_trees}


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished files of ``tmp`` into ``out``: one rename when ``out`` is new, else file by file with
    ``dataset.json`` last (each rename is atomic); ``tmp`` is removed."""
    if not out.exists():
        os.replace(tmp, out)
        return
    names = sorted(p.name for p in tmp.iterdir())
    for name in [n for n in names if n != "dataset.json"] + ["dataset.json"]:
        os.replace(tmp / name, out / name)
    tmp.rmdir()


def write_phantom_dataset(
    out_dir: str | Path,
    n_cases: int = 10,
    config: PhantomConfig | CCTAConfig | None = None,
    seed: int = 0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    prefix: str = "coronary",
    segments: bool = False,
) -> Path:
    """Generate ``n_cases`` phantoms into ``out_dir`` and describe them in ``dataset.json``.

    The kind follows the configuration: :class:`PhantomConfig` gives ``tubes`` (bright trees in a tissue box),
    :class:`~pipeline.phantoms.ccta.CCTAConfig` gives ``ccta`` (chest, heart, coronary trees and confounders). Case
    ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a case does not depend on how many others are
    made. Files are ``{prefix}_{i:03d}_image.nii.gz`` (int16 HU) and ``{prefix}_{i:03d}_label.nii.gz`` (uint8);
    with ``segments`` (``ccta`` only) also ``{prefix}_{i:03d}_segments.nii.gz`` (uint8 segment ids, named in
    ``dataset.json`` under ``"segments"``).

    Everything is written into a temporary sibling folder first and moved into ``out_dir`` only when complete, so a
    failure (or a kill) never leaves a partly written dataset behind.

    Args:
        out_dir: folder to write into (created if needed).
        n_cases: number of image/label pairs (>= 1).
        config: phantom parameters (default :class:`PhantomConfig`).
        seed: base seed.
        fractions: relative sizes of the training, validation and test lists.
        prefix: file-name prefix of each case.
        segments: also write the named-segment label of each ``ccta`` case.

    Returns:
        path of the written ``dataset.json``.
    """
    config = config or PhantomConfig()
    if segments and not isinstance(config, CCTAConfig):
        raise SettingsError("segments=True needs kind 'ccta' (a CCTAConfig); kind 'tubes' has no named segments.")
    n_train, n_val, _ = split_counts(n_cases, fractions)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the published folder gets the usual permissions
    try:
        entries, cases = [], {}
        for i in range(n_cases):
            image, label, affine, seg, info = _render(config, np.random.default_rng([seed, i]))
            name = f"{prefix}_{i:03d}"
            write_nifti(image, affine, tmp / f"{name}_image.nii.gz")
            write_nifti(label, affine, tmp / f"{name}_label.nii.gz")
            if segments:
                write_nifti(seg, affine, tmp / f"{name}_segments.nii.gz")
            entries.append({"image": f"./{name}_image.nii.gz", "label": f"./{name}_label.nii.gz"})
            cases[name] = info
            logger.info("wrote %s (%d vessel voxels)", name, int(label.sum()))
        description = {
            "name": "SyntheticCoronary",
            "description": "Synthetic coronary CT phantoms (pipeline.phantoms); label: coronary artery lumen",
            "reference": "generated",
            "licence": "CC0-1.0",
            "tensorImageSize": "3D",
            "modality": {"0": "CT"},
            "labels": {"0": "background", "1": "vessel"},
            "generator": _generator_description(config, seed),
            "numTraining": n_train + n_val,
            "numTest": n_cases - n_train - n_val,
            "training": entries[:n_train],
            "validation": entries[n_train : n_train + n_val],
            "test": entries[n_train + n_val :],
        }
        if isinstance(config, CCTAConfig):
            description["generator"]["cases"] = cases
        if segments:
            description["segments"] = {"files": "{case}_segments.nii.gz", "labels": {"0": "background", **{str(k): v for k, v in SEGMENTS.items()}}}
        write_json(tmp / "dataset.json", description, fsync=False)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "dataset.json"
