"""Benchmark of the evaluation metrics on a CCTA-sized pair: ours vs. the MONAI-based computation, same run.

Run: ``.venv/bin/python bench/bench_evaluation.py`` (about 3 minutes on 2 cores; most of it is the reference and the
phantom rendering). Prints, as markdown:

1. per-metric values of both computations and their largest absolute difference;
2. seconds per case of each and the ratio;
3. one case read from NIfTI files with the prediction in the label's orientation and in RAS (reoriented on reading);
4. the wall time of 4 cases read from NIfTI files and scored with 1 and 2 worker processes, with the load average
   before, the sum of the per-case times, and a control (pure-Python loops in the same pool): the speed-up is only
   meaningful where the control shows two free cores.

The volume is a 512x512x256 phantom (spacing 0.4x0.4x0.5 mm, four coronary-like trees) from
:func:`pipeline.phantoms.make_phantom`; the prediction is the label shifted by one voxel, eroded in a slab, with one
branch missing and a few false-positive blobs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.evaluation import CasePair, EvaluationSettings, binary_metrics, evaluate_pairs, monai_reference_metrics  # noqa: E402
from pipeline.phantoms import PhantomConfig, TreeConfig, make_phantom, signed_distance_to_tubes  # noqa: E402

SHAPE = (512, 512, 256)
SPACING = (0.4, 0.4, 0.5)
TOLERANCE_MM = 1.0
SPIN_STEPS = 20_000_000
COMPARED = ("Dice", "clDice", "HD95_mm", "ASSD_mm", "NSD", "beta0_pred", "beta0_ref", "beta0_error")


def make_label(seed: int = 0):
    """The reference label and its phantom (for the centerlines)."""
    tree = TreeConfig(root_radius_vox=(4.0, 5.0), segment_length_radii=(10.0, 16.0), max_branches=63)
    phantom = make_phantom(PhantomConfig(shape=SHAPE, spacing=SPACING, n_trees=4, tree=tree), np.random.default_rng(seed))
    label = phantom.label.astype(bool)
    phantom.image = phantom.label = phantom.tree_map = None  # keep the parent small: the workers are forked from it
    return label, phantom


def perturb(label: np.ndarray, phantom, seed: int) -> np.ndarray:
    """A plausible prediction: shifted by one voxel, eroded in a slab, one leaf branch missing, false-positive blobs."""
    rng = np.random.default_rng(seed)
    pred = np.roll(label, 1, axis=int(rng.integers(0, 3)))
    z0 = int(rng.integers(0, SHAPE[2] - 40))
    pred[:, :, z0 : z0 + 40] = ndimage.binary_erosion(pred[:, :, z0 : z0 + 40])
    tree = phantom.trees[int(rng.integers(0, len(phantom.trees)))]
    leaf = max((b for b in tree.branches if b.parent is not None), key=lambda b: len(b.points))
    spacing = np.asarray(SPACING)
    pred[signed_distance_to_tubes(leaf.points, leaf.radii + 0.6, SHAPE, spacing, 1.0) <= 0] = False
    grid_lo = np.zeros(3, int)
    for _ in range(6):
        centre = rng.uniform(grid_lo, np.asarray(SHAPE) - 1)
        radius = rng.uniform(2.0, 4.0)
        lo = np.maximum(np.floor(centre - radius).astype(int), 0)
        hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, SHAPE)
        idx = np.indices(tuple(hi - lo)).transpose(1, 2, 3, 0) + lo
        pred[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= ((idx - centre) ** 2).sum(-1) <= radius**2
    return pred


def timed(fn, repeats: int):
    """The result of ``fn()`` and the median of ``repeats`` wall times."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def compare(pred: np.ndarray, label: np.ndarray, repeats: int) -> None:
    ours, t_ours = timed(lambda: binary_metrics(pred, label, SPACING, TOLERANCE_MM), repeats)
    ref, t_ref = timed(lambda: monai_reference_metrics(pred, label, SPACING, TOLERANCE_MM), 1)
    print("\n| metric | MONAI-based reference | ours | abs diff |\n| --- | ---: | ---: | ---: |")
    worst = 0.0
    for key in COMPARED:
        diff = abs(ours[key] - ref[key])
        worst = max(worst, diff)
        print(f"| {key} | {ref[key]:.9g} | {ours[key]:.9g} | {diff:.2g} |")
    print(f"\nlargest absolute difference: {worst:.2g}")
    print("\n| computation | s per case |\n| --- | ---: |")
    print(f"| MONAI metric functions + skimage skeletonize + scipy label (1 run) | {t_ref:.2f} |")
    print(f"| pipeline.evaluation.binary_metrics (median of {repeats}) | {t_ours:.2f} |")
    print(f"\n**ratio: {t_ref / t_ours:.1f}x faster at identical values (max abs diff {worst:.2g})**")


def scaling(label: np.ndarray, phantom, n_cases: int, folder: Path) -> None:
    affine = phantom.affine
    pairs = []
    for i in range(n_cases):
        pred_path, label_path = folder / f"case_{i}_pred.nii.gz", folder / f"case_{i}_label.nii.gz"
        nib.save(nib.Nifti1Image(perturb(label, phantom, seed=10 + i).astype(np.uint8), affine), pred_path)
        nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), label_path)
        pairs.append(CasePair(f"case_{i}", pred_path, label_path))
    settings = EvaluationSettings(tolerance_mm=TOLERANCE_MM)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nworker scaling on {os.cpu_count()} cores, load average before: {load} (other jobs share the machine)")
    print(f"\n| {n_cases} cases from .nii.gz (read + check + score) | wall s | sum of per-case s | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    base = None
    for workers in (1, 2):
        results, seconds = timed(lambda: evaluate_pairs(pairs, settings, workers=workers), 1)
        assert all(r.ok for r in results), [r.error for r in results]
        base = base or seconds
        busy = sum(r.seconds for r in results)
        print(f"| {workers} worker{'s' if workers > 1 else ''} | {seconds:.2f} | {busy:.2f} | {base / seconds:.2f}x |")
    base = None
    for workers in (1, 2):
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            start = time.perf_counter()
            busy = sum(pool.map(spin, [SPIN_STEPS] * n_cases))
            seconds = time.perf_counter() - start
        base = base or seconds
        print(f"| control: {n_cases} pure-Python loops, {workers} worker{'s' if workers > 1 else ''} | {seconds:.2f} | "
              f"{busy:.2f} | {base / seconds:.2f}x |")


def reorientation(label: np.ndarray, phantom, folder: Path) -> None:
    """One case read from .nii.gz and scored, with the prediction stored in the label's orientation and in RAS (as
    MONAI's ``Orientation("RAS")`` + ``SaveImage`` write it): the reorientation is a view, and the values agree."""
    pred_img = nib.Nifti1Image(perturb(label, phantom, seed=10).astype(np.uint8), phantom.affine)
    same, ras, label_path = folder / "same.nii.gz", folder / "ras.nii.gz", folder / "label.nii.gz"
    nib.save(pred_img, same)
    nib.save(nib.as_closest_canonical(pred_img), ras)
    nib.save(nib.Nifti1Image(label.astype(np.uint8), phantom.affine), label_path)
    codes = ["".join(nib.aff2axcodes(nib.load(p).affine)) for p in (same, ras)]
    print("\n| 1 case from .nii.gz (read + check + score) | wall s | Dice | HD95 mm |\n| --- | ---: | ---: | ---: |")
    for path, code in zip((same, ras), codes):
        (result,), seconds = timed(lambda: evaluate_pairs([CasePair("case", path, label_path)]), 1)
        assert result.ok, result.error
        scores = result.metrics[1]
        print(f"| prediction stored {code} (label {codes[0]}) | {seconds:.2f} | {scores['Dice']:.9g} | {scores['HD95_mm']:.9g} |")


def spin(steps: int) -> float:
    """A pure-Python busy loop: the speed-up two processes get on it is what the machine offers at the moment."""
    start = time.perf_counter()
    total = 0
    for i in range(steps):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of our computation")
    parser.add_argument("--cases", type=int, default=4, help="cases for the worker scaling")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{platform.processor() or platform.machine()}")
    start = time.perf_counter()
    label, phantom = make_label()
    pred = perturb(label, phantom, seed=1)
    print(f"pair: {SHAPE} voxels of {SPACING} mm; label {int(label.sum())} voxels, prediction {int(pred.sum())} "
          f"(built in {time.perf_counter() - start:.0f} s)")
    compare(pred, label, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        reorientation(label, phantom, Path(tmp))
        scaling(label, phantom, args.cases, Path(tmp))


if __name__ == "__main__":
    main()
