"""Draw the pictures of the ``ccta`` phantoms in docs/images/ (run: ``python docs/phantom_figures.py``).

- ``ccta_full.png``: three full-size cases: an axial slice through the aortic root and coronary ostia, a maximum
  intensity projection along z (both with the label outlined in red) and a 3-D surface of the label (marching cubes)
  with the aorta and the cardiac veins around it;
- ``ccta_crops.png``: the four first cases of ``data_samples/`` (axial slice and MIP, label outlined), next to a
  ``tubes`` case, the kind the samples were before.

``phantoms.png`` (the MIP previews of ``data_samples/``) is drawn by ``docs/figures.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402
from skimage.measure import marching_cubes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.phantoms import CCTAConfig, PhantomConfig, make_ccta_phantom, make_phantom  # noqa: E402
from pipeline.phantoms.ccta import Tissue  # noqa: E402

IMAGES = ROOT / "docs" / "images"
WINDOW = dict(cmap="gray", vmin=-250, vmax=750)


def _axial(ax, image, label, z, title):
    ax.imshow(image[:, :, z].T, **WINDOW)
    if label[:, :, z].any():
        ax.contour(label[:, :, z].T, [0.5], colors="r", linewidths=0.7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _mip(ax, image, label, title):
    ax.imshow(image.max(axis=2).T, cmap="gray", vmin=-250, vmax=1000)
    ax.contour(label.max(axis=2).T, [0.5], colors="r", linewidths=0.5)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _surface(ax, masks, spacing, step=2):
    for mask, colour, alpha in masks:
        if mask.sum() < 10:
            continue
        verts, faces, _, _ = marching_cubes(mask[::step, ::step, ::step].astype(np.float32), 0.5, spacing=tuple(step * s for s in spacing))
        ax.add_collection3d(Poly3DCollection(verts[faces], facecolor=colour, edgecolor="none", alpha=alpha))
    lab = masks[0][0]
    idx = np.argwhere(lab) * np.asarray(spacing)
    lo, hi = idx.min(0) - 10, idx.max(0) + 10
    ax.set_xlim(lo[0], hi[0]), ax.set_ylim(hi[1], lo[1]), ax.set_zlim(lo[2], hi[2])
    ax.view_init(elev=20, azim=-60)
    ax.set_axis_off()


def full_cases() -> None:
    fig = plt.figure(figsize=(13, 13))
    for row in range(3):
        p = make_ccta_phantom(CCTAConfig(), np.random.default_rng([2026, row]))
        spacing = p.window.spacing
        ostium = p.case.info["left_ostium"]
        z = int(round(ostium[2] / spacing[2]))
        title = f"case {row}: {p.image.shape}, {spacing[0]:.2f}x{spacing[1]:.2f}x{spacing[2]:.2f} mm, noise {p.meta['noise_hu']} HU"
        _axial(fig.add_subplot(3, 3, 3 * row + 1), p.image, p.label, z, f"{title}\naxial slice at the left ostium")
        _mip(fig.add_subplot(3, 3, 3 * row + 2), p.image, p.label, "MIP along z (lumen outlined)")
        ax = fig.add_subplot(3, 3, 3 * row + 3, projection="3d")
        _surface(ax, [(p.label > 0, "crimson", 1.0), (p.tissue == Tissue.VEIN, "royalblue", 0.5),
                      (p.tissue == Tissue.AORTA, "gold", 0.15)], spacing)
        ax.set_title(f"lumen (red), veins (blue), aorta (yellow); {p.meta['dominance']}-dominant", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "ccta_full.png", dpi=80)
    plt.close(fig)


def crops() -> None:
    fig, axes = plt.subplots(2, 5, figsize=(16, 7))
    for col in range(4):
        img = nib.load(ROOT / "data_samples" / f"coronary_{col:03d}_image.nii.gz")
        image, label = np.asarray(img.dataobj), np.asarray(nib.load(ROOT / "data_samples" / f"coronary_{col:03d}_label.nii.gz").dataobj)
        z = int(np.argmax(label.sum(axis=(0, 1))))
        _axial(axes[0, col], image, label, z, f"data_samples case {col}, slice {z}")
        _mip(axes[1, col], image, label, "MIP along z")
    t = make_phantom(PhantomConfig(), np.random.default_rng([0, 0]))
    z = int(np.argmax(t.label.sum(axis=(0, 1))))
    _axial(axes[0, 4], t.image, t.label, z, "kind 'tubes' (the old samples)")
    _mip(axes[1, 4], t.image, t.label, "MIP along z")
    fig.tight_layout()
    fig.savefig(IMAGES / "ccta_crops.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    crops()
    full_cases()
