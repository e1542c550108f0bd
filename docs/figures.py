"""Regenerate the README's pictures: ``python docs/figures.py [RUN_DIR]``.

Writes ``docs/images/phantoms.png`` (MIPs of four sample volumes) and, when a training run folder is given (default
``runs/demo``), copies its ``training_curves.png`` to ``docs/images/demo_training_curves.png``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.plots import plot_volume_previews

ROOT = Path(__file__).resolve().parent.parent


def main(run_dir: str = "runs/demo") -> None:
    images, labels, names = [], [], []
    for i in range(4):
        name = f"coronary_{i:03d}"
        images.append(np.asarray(nib.load(ROOT / "data_samples" / f"{name}_image.nii.gz").dataobj))
        labels.append(np.asarray(nib.load(ROOT / "data_samples" / f"{name}_label.nii.gz").dataobj))
        names.append(name)
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    print(plot_volume_previews(images, labels, names, out / "phantoms.png"))
    curves = Path(run_dir) / "training_curves.png"
    if curves.is_file():
        print(shutil.copy(curves, out / "demo_training_curves.png"))


if __name__ == "__main__":
    main(*sys.argv[1:])
