"""Benchmark of the surface distances (HD95, HD, ASSD, NSD): KD-tree queries only (the code before) against the
cost-based choice per direction (``method="auto"``: KD-tree or exact distance transform), same run, same values.

Run: ``.venv/bin/python bench/bench_surface_distances.py --dataset-dir D5`` (a ``make-phantoms --kind ccta`` folder
of full-size cases; without it one full-size case is generated, about 10 CPU s). Prints, as markdown:

1. per case: the surface sizes and the box, which path ``auto`` takes in each direction, CPU seconds of
   ``surface_distances`` with KD-trees only and with ``auto``, the ratio, and whether the distances are identical;
2. the peak memory (``tracemalloc``) of the distance transform on the largest box;
3. with ``--validation-metrics`` (instead of 1 and 2): CPU seconds of the validation's ``VesselMetric("HD95_mm")`` and
   ``VesselMetric("NSD")`` on ``--prediction``, as before (KD-tree only, each metric on its own) and now;
4. with ``--calibrate``: per direction, CPU seconds of the KD-tree's build and queries and of the distance transform,
   in units of the distance transform's time per box voxel: the constants of
   :func:`pipeline.evaluation.surface.use_distance_transform`.

The cases: a full-size CCTA volume with crude "early network" predictions (everything brighter than 150 HU inside the
body; the same with noise, so the surface is speckled; everything above 0 HU inside the body), and the evaluation
benchmark's typical pair (512x512x256, four trees, a good prediction: shifted by one voxel, eroded in a slab, a
branch missing, a few false-positive blobs). With ``--prediction``, a real prediction of the full-size case (e.g. from
``vessel-pipeline infer`` with an early checkpoint) is one more case.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import KDTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_evaluation import SPACING as TYPICAL_SPACING, make_label, perturb  # noqa: E402
import pipeline.evaluation.ignite_metric as ignite_metric  # noqa: E402
import pipeline.evaluation.surface as surface  # noqa: E402
from pipeline.evaluation import SparseMask, VesselMetric  # noqa: E402
from pipeline.evaluation.surface import _edt_distances, surface_distances, use_distance_transform  # noqa: E402
from pipeline.phantoms import CCTAConfig, make_ccta_phantom  # noqa: E402

QUERY_SAMPLE = 100_000


def cpu(fn):
    """``fn()`` and its CPU seconds (all threads of the process)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def full_size_volume(dataset_dir: str | None, case: int):
    """A full-size CCTA image (HU, float32), its label and spacing: from a ``make-phantoms --kind ccta`` folder, or
    generated."""
    if dataset_dir:
        folder = Path(dataset_dir)
        image = nib.load(sorted(folder.glob("*_image.nii.gz"))[case])
        label = nib.load(sorted(folder.glob("*_label.nii.gz"))[case])
        spacing = tuple(float(s) for s in image.header.get_zooms()[:3])
        return np.asarray(image.dataobj, dtype=np.float32), np.asarray(label.dataobj) > 0, spacing
    phantom = make_ccta_phantom(CCTAConfig(), np.random.default_rng(case))
    spacing = tuple(float(s) for s in np.linalg.norm(phantom.affine[:3, :3], axis=0))
    return phantom.image.astype(np.float32), phantom.label > 0, spacing


def crude_predictions(image: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """What an early network predicts: bright anatomy inside the body (the body: the largest component of the
    opened > -300 HU mask)."""
    body, _ = ndimage.label(ndimage.binary_opening(image > -300, iterations=2))
    sizes = np.bincount(body.ravel())
    sizes[0] = 0
    body = body == sizes.argmax()
    noise = np.random.default_rng(seed).normal(0.0, 60.0, image.shape).astype(np.float32)
    return {
        "> 150 HU in the body": (image > 150) & body,
        "> 120 HU + noise (sd 60) in the body": ((image + noise) > 120) & body,
        "> 0 HU in the body": (image > 0) & body,
    }


def box_of(pred: SparseMask, ref: SparseMask) -> tuple[int, ...]:
    lo = np.minimum(pred.coords.min(0), ref.coords.min(0))
    hi = np.maximum(pred.coords.max(0), ref.coords.max(0))
    return tuple(int(n) for n in hi - lo + 2)


def compare(name: str, pred: SparseMask, ref: SparseMask, spacing) -> tuple[float, float]:
    box = box_of(pred, ref)
    voxels = int(np.prod(box))
    paths = ["EDT" if use_distance_transform(a, b, voxels) else "KD" for a, b in ((len(pred), len(ref)), (len(ref), len(pred)))]
    before, t_before = cpu(lambda: surface_distances(pred, ref, spacing, method="kdtree"))
    after, t_after = cpu(lambda: surface_distances(pred, ref, spacing, method="auto"))
    same = all(np.array_equal(a, b) for a, b in zip(before, after))
    print(f"| {name} | {len(pred):,} / {len(ref):,} | {'x'.join(map(str, box))} | {paths[0]} / {paths[1]} | "
          f"{t_before:.2f} | {t_after:.2f} | {t_before / t_after:.2f}x | {'yes' if same else 'NO'} |", flush=True)
    return t_before, t_after


def calibrate(name: str, pred: SparseMask, ref: SparseMask, spacing) -> None:
    """Per direction: the KD-tree's build and query CPU seconds and the distance transform's, in units of the
    distance transform's seconds per box voxel (queries timed on an even sample of at most QUERY_SAMPLE points)."""
    origin = np.minimum(pred.coords.min(0), ref.coords.min(0)) - 1
    p, r = pred.coords - origin, ref.coords - origin
    box = tuple(int(n) + 1 for n in np.maximum(p.max(0), r.max(0)))
    voxels = int(np.prod(box))
    scale = np.asarray(spacing, dtype=np.float64)
    for direction, (source, target) in (("pred -> ref", (p, r)), ("ref -> pred", (r, p))):
        _, t_edt = cpu(lambda: _edt_distances(source, target, box, scale))
        tree, t_build = cpu(lambda: KDTree(target * scale, leafsize=32))
        sample = source[:: max(1, len(source) // QUERY_SAMPLE)]
        _, t_query = cpu(lambda: tree.query(sample * scale, k=1))
        t_query *= len(source) / len(sample)
        unit = t_edt / voxels
        log_n = np.log2(max(len(target), 2))
        print(f"| {name}, {direction} | {len(source):,} / {len(target):,} | {voxels / 1e6:.1f} M | {t_edt:.2f} | "
              f"{t_build:.2f} | {t_query:.2f} | {t_build / unit / (len(target) * log_n):.3f} | "
              f"{t_query / unit / (len(source) * log_n):.2f} | {'EDT' if t_edt < t_build + t_query else 'KD'} |", flush=True)


def edt_peak_mb(pred: SparseMask, ref: SparseMask, spacing) -> float:
    tracemalloc.start()
    surface_distances(pred, ref, spacing, method="edt")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def validation_metrics(prediction: str, label: np.ndarray, spacing) -> None:
    """CPU seconds of the validation's extra metrics (``VesselMetric("HD95_mm")`` then ``VesselMetric("NSD")``, as
    ``train.json`` attaches them) on one case: as before (KD-tree only: the rule's costs set to 0; each metric computes
    its own surface group) and now (``auto``; NSD reuses the surface group HD95 computed)."""
    import torch

    pred = torch.from_numpy(np.asarray(nib.load(prediction).dataobj) > 0).float()[None, None]
    ref = torch.from_numpy(label).float()[None, None]
    costs = surface.KD_QUERY_COST, surface.KD_BUILD_COST
    print("\n| validation metrics | HD95_mm, CPU s | NSD, CPU s | both, CPU s | HD95_mm | NSD |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |")
    for setting, (query, build), share in (("before: KD-tree only, no sharing", (0.0, 0.0), False),
                                          ("now: auto, NSD reuses HD95's surface group", costs, True)):
        surface.KD_QUERY_COST, surface.KD_BUILD_COST = query, build
        ignite_metric._LAST_PAIR.clear()
        values, seconds = [], []
        for name in ("HD95_mm", "NSD"):
            if not share:
                ignite_metric._LAST_PAIR.clear()
            metric = VesselMetric(name, tolerance_mm=1.0, spacing=spacing)
            value, t = cpu(lambda: (metric.update((pred, ref)), metric.compute())[1])
            values.append(value)
            seconds.append(t)
        print(f"| {setting} | {seconds[0]:.2f} | {seconds[1]:.2f} | {sum(seconds):.2f} | {values[0]:.9g} | "
              f"{values[1]:.9g} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", help="a make-phantoms --kind ccta folder of full-size cases")
    parser.add_argument("--case", type=int, default=4, help="which case of the folder (or the generator's seed)")
    parser.add_argument("--prediction", help="also a real prediction of the case (NIfTI on the case's grid), e.g. from "
                        "`vessel-pipeline infer` with an early checkpoint")
    parser.add_argument("--calibrate", action="store_true", help="also time each path per direction")
    parser.add_argument("--validation-metrics", action="store_true",
                        help="only time the validation's HD95 and NSD metrics on --prediction, before and now")
    args = parser.parse_args()

    image, label, spacing = full_size_volume(args.dataset_dir, args.case)
    print(f"full-size case: {image.shape} voxels of {tuple(round(s, 3) for s in spacing)} mm, "
          f"label {int(label.sum()):,} voxels")
    if args.validation_metrics:
        validation_metrics(args.prediction, label, spacing)
        return
    ref = SparseMask.from_dense(label).edges()
    preds = {name: SparseMask.from_dense(mask).edges() for name, mask in crude_predictions(image).items()}
    if args.prediction:
        preds[f"of {Path(args.prediction).name}"] = SparseMask.from_dense(np.asarray(nib.load(args.prediction).dataobj) > 0).edges()
    del image
    typical_label, phantom = make_label()
    typical_pred = SparseMask.from_dense(perturb(typical_label, phantom, seed=1)).edges()
    typical_ref = SparseMask.from_dense(typical_label).edges()
    del typical_label, phantom

    print("\n| case | surface voxels pred / ref | box | auto: pred->ref / ref->pred | KD-tree only, CPU s | auto, "
          "CPU s | speed-up | identical |\n| --- | ---: | --- | --- | ---: | ---: | ---: | --- |")
    compare("typical: good prediction (bench_evaluation pair)", typical_pred, typical_ref, TYPICAL_SPACING)
    for name, pred in preds.items():
        compare(f"full-size, prediction {name}", pred, ref, spacing)
    largest = max(preds.values(), key=lambda p: np.prod(box_of(p, ref)))
    print(f"\npeak memory of the distance transform path on a {'x'.join(map(str, box_of(largest, ref)))} box "
          f"(tracemalloc): {edt_peak_mb(largest, ref, spacing):.0f} MB")
    if args.calibrate:
        print("\n| case, direction | source / target voxels | box | EDT s | KD build s | KD queries s | build units "
              "per n log2 n | query units per log2 n | cheaper |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        calibrate("typical", typical_pred, typical_ref, TYPICAL_SPACING)
        for name, pred in preds.items():
            calibrate(name, pred, ref, spacing)


if __name__ == "__main__":
    main()
