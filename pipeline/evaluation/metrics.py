"""Segmentation metrics of a binary 3-D prediction against its reference, in millimetres (pure numpy functions).

Every metric is defined as the reference named in its docstring computes it, and is tested against that reference:

- overlap (Dice, IoU, precision, recall): ``monai.metrics.DiceMetric`` / ``compute_iou`` on the binary masks;
- surface distances (HD95, HD, ASSD, NSD): MONAI 1.6's ``compute_hausdorff_distance(percentile=95)``,
  ``compute_average_surface_distance(symmetric=True)`` and ``compute_surface_dice(use_subvoxels=False)``: the surface
  of a mask is ``mask ^ binary_erosion(mask)`` (6-neighbour erosion, the volume border counts as background), and
  each surface voxel's distance is the Euclidean distance in mm between its centre and the nearest surface voxel
  centre of the other mask;
- clDice: Shit et al., CVPR 2021, with ``skimage.morphology.skeletonize`` (Lee's 3-D thinning) as the skeleton;
- topology: 26-connected components (``scipy.ndimage.label`` with a 3x3x3 structure); optionally the first Betti
  number from the Euler characteristic (``skimage.measure.euler_number(connectivity=3)``).

The work is shared: each mask's voxels, surface and components are found once (on its voxel list, see
:class:`~pipeline.evaluation.sparse.SparseMask`), the skeleton is computed per connected component on that
component's bounding box, and the surface distances of both directions feed HD95, HD, ASSD and NSD (KD-tree queries for
small surfaces, an exact distance transform for large ones: :mod:`pipeline.evaluation.surface`).

Empty masks: both empty -> overlap scores, clDice and NSD 1, distances 0; one empty -> overlap scores, clDice and NSD
0, distances ``inf`` (the case is flagged by :func:`empty_flag`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage
from skimage.measure import euler_number
from skimage.morphology import skeletonize

from pipeline.evaluation.sparse import SparseMask
from pipeline.evaluation.surface import surface_distances

__all__ = [
    "METRIC_GROUPS",
    "METRICS",
    "binary_metrics",
    "empty_flag",
    "overlap_metrics",
    "surface_distances",
    "surface_metrics",
    "skeleton",
    "cldice",
    "betti_numbers",
]

#: the metrics of each group; a group is computed only if one of its metrics is asked for
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "overlap": ("Dice", "IoU", "Precision", "Recall", "TP", "FP", "FN", "TN", "n_pred", "n_ref", "VolumeDiff_ml"),
    "surface": ("HD95_mm", "HD_mm", "ASSD_mm", "NSD"),
    "skeleton": ("clDice",),
    "topology": ("beta0_pred", "beta0_ref", "beta0_error"),
    "betti1": ("beta1_pred", "beta1_ref", "beta1_error"),
}
#: every metric name :func:`binary_metrics` can return
METRICS: tuple[str, ...] = tuple(m for group in METRIC_GROUPS.values() for m in group)


def empty_flag(n_pred: float, n_ref: float) -> str:
    """``"both"``, ``"pred"`` or ``"label"`` for the empty mask(s) of a pair, ``""`` when neither is empty."""
    if n_pred == 0 and n_ref == 0:
        return "both"
    return "pred" if n_pred == 0 else ("label" if n_ref == 0 else "")


def _ratio(num: float, den: float, both_empty: bool) -> float:
    """``num / den``; 1 when both masks are empty, 0 when only ``den`` is 0 (the one-empty convention)."""
    if both_empty:
        return 1.0
    return float(num) / float(den) if den > 0 else 0.0


def overlap_metrics(pred: SparseMask, ref: SparseMask, spacing: Sequence[float]) -> dict[str, float]:
    """Voxel counts and overlap scores.

    ``Dice = 2 TP / (n_pred + n_ref)`` (``monai.metrics.DiceMetric(include_background=True, ignore_empty=False)``),
    ``IoU = TP / (TP + FP + FN)`` (Jaccard), ``Precision = TP / n_pred``, ``Recall = TP / n_ref``,
    ``VolumeDiff_ml = (n_pred - n_ref) * voxel volume`` (signed, in ml).
    """
    tp = int(np.count_nonzero(ref.contains(pred.keys))) if len(pred) and len(ref) else 0
    n_pred, n_ref = len(pred), len(ref)
    fp, fn = n_pred - tp, n_ref - tp
    both = n_pred == 0 and n_ref == 0
    voxel_ml = float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0
    return {
        "Dice": _ratio(2 * tp, n_pred + n_ref, both),
        "IoU": _ratio(tp, tp + fp + fn, both),
        "Precision": _ratio(tp, n_pred, both),
        "Recall": _ratio(tp, n_ref, both),
        "TP": float(tp),
        "FP": float(fp),
        "FN": float(fn),
        "TN": float(int(np.prod(pred.shape)) - tp - fp - fn),
        "n_pred": float(n_pred),
        "n_ref": float(n_ref),
        "VolumeDiff_ml": (n_pred - n_ref) * voxel_ml,
    }


def _quantile_like_torch(values: np.ndarray, q: float) -> float:
    """``torch.quantile(values, q)`` (linear interpolation) on a float32 array, with torch's float32 arithmetic."""
    n = len(values)
    rank = np.float32(q) * np.float32(n - 1)
    lo, hi = int(np.floor(rank)), int(np.ceil(rank))
    part = np.partition(values, (lo, hi)) if n > 1 else values
    a, b, w = part[lo], part[hi], np.float32(rank - np.float32(lo))
    return float(a + w * (b - a)) if w < 0.5 else float(b - (b - a) * (np.float32(1.0) - w))


def surface_metrics(d_pr: np.ndarray, d_rp: np.ndarray, tolerance_mm: float) -> dict[str, float]:
    """HD95, HD, ASSD and NSD from the two directed surface distance arrays of :func:`surface_distances`.

    - ``HD95_mm = max(q95(d_pr), q95(d_rp))``, ``q95`` the linearly interpolated 95th percentile
      (``compute_hausdorff_distance(percentile=95, directed=False)``);
    - ``HD_mm = max(max(d_pr), max(d_rp))``;
    - ``ASSD_mm = mean(concat(d_pr, d_rp))``, the mean over all surface voxels of both masks, not the mean of the two
      directed means (``compute_average_surface_distance(symmetric=True)``);
    - ``NSD = (#{d_pr <= tol} + #{d_rp <= tol}) / (len(d_pr) + len(d_rp))``, surface voxels counted, the comparison in
      float32 (``compute_surface_dice(class_thresholds=[tol], use_subvoxels=False)``).

    Empty conventions: both surfaces empty -> distances 0 and NSD 1; one empty -> distances ``inf`` and NSD 0.
    """
    if len(d_pr) == 0 and len(d_rp) == 0:
        return {"HD95_mm": 0.0, "HD_mm": 0.0, "ASSD_mm": 0.0, "NSD": 1.0}
    if len(d_pr) == 0 or len(d_rp) == 0:
        return {"HD95_mm": np.inf, "HD_mm": np.inf, "ASSD_mm": np.inf, "NSD": 0.0}
    tol = np.float32(tolerance_mm)
    within = np.count_nonzero(d_pr <= tol) + np.count_nonzero(d_rp <= tol)
    return {
        "HD95_mm": max(_quantile_like_torch(d_pr, 0.95), _quantile_like_torch(d_rp, 0.95)),
        "HD_mm": float(max(d_pr.max(), d_rp.max())),
        "ASSD_mm": float((d_pr.sum(dtype=np.float64) + d_rp.sum(dtype=np.float64)) / (len(d_pr) + len(d_rp))),
        "NSD": within / (len(d_pr) + len(d_rp)),
    }


def skeleton(mask: SparseMask, components: tuple[int, np.ndarray] | None = None) -> SparseMask:
    """``skimage.morphology.skeletonize`` of the mask (Lee's 3-D thinning), computed per 26-connected component on
    the component's bounding box plus one voxel.

    Lee's thinning only looks at the 3x3x3 neighbourhood of a voxel and visits voxels in C order, so components that
    are not 26-adjacent thin independently: the union of the per-component skeletons is the skeleton of the whole
    volume, voxel for voxel, at a fraction of the cost for a sparse tree. (A volume one voxel deep along its first
    axis, which skimage thins as a 2-D image, keeps that depth in the boxes.)

    Args:
        mask: the mask.
        components: ``mask.components()`` if already computed.
    """
    n, labels = components if components is not None else mask.components()
    # skimage thins a volume of depth 1 along axis 0 as a 2-D image; the boxes must keep that depth to match it
    margin = np.array([0 if mask.shape[0] == 1 else 1, 1, 1])
    found = []
    for coords in mask.split(labels, n):
        lo = coords.min(0) - margin
        box = np.zeros(tuple(coords.max(0) - lo + 1 + margin), dtype=bool)
        box[tuple((coords - lo).T)] = True
        found.append(np.argwhere(skeletonize(box)) + lo)
    return SparseMask.from_coords(mask.shape, np.concatenate(found) if found else np.zeros((0, 3), dtype=np.int64))


def cldice(pred: SparseMask, ref: SparseMask, pred_skeleton: SparseMask, ref_skeleton: SparseMask) -> float:
    """Centerline Dice (Shit et al., CVPR 2021): the harmonic mean of topology precision
    ``Tprec = |S(P) & L| / |S(P)|`` and topology sensitivity ``Tsens = |S(L) & P| / |S(L)|``, ``S`` the skeleton.

    Both masks empty -> 1; one empty, or both ratios 0 -> 0.
    """
    if len(pred) == 0 and len(ref) == 0:
        return 1.0
    if len(pred_skeleton) == 0 or len(ref_skeleton) == 0:
        return 0.0
    tprec = np.count_nonzero(ref.contains(pred_skeleton.keys)) / len(pred_skeleton)
    tsens = np.count_nonzero(pred.contains(ref_skeleton.keys)) / len(ref_skeleton)
    return 0.0 if tprec + tsens == 0 else float(2.0 * tprec * tsens / (tprec + tsens))


def betti_numbers(mask: SparseMask, beta0: int | None = None) -> tuple[int, int, int]:
    """Betti numbers ``(b0, b1, b2)`` of the mask: components (26-connectivity), tunnels and cavities.

    ``b2`` counts the background components (6-connectivity) that do not reach the border of the mask's padded
    bounding box, and ``b1 = b0 + b2 - chi`` with the Euler characteristic ``chi`` of
    ``skimage.measure.euler_number(connectivity=3)``.
    """
    if len(mask) == 0:
        return 0, 0, 0
    b0 = mask.components()[0] if beta0 is None else beta0
    lo = mask.coords.min(0) - 1
    box = np.zeros(tuple(mask.coords.max(0) - lo + 2), dtype=bool)
    box[tuple((mask.coords - lo).T)] = True
    chi = int(euler_number(box, connectivity=3))
    b2 = int(ndimage.label(~box)[1]) - 1
    return int(b0), int(b0 + b2 - chi), b2


def _groups_for(metrics: Iterable[str] | None, betti1: bool) -> set[str]:
    if metrics is None:
        return {g for g in METRIC_GROUPS if g != "betti1" or betti1}
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; valid choices: {list(METRICS)}.")
    return {g for g, names in METRIC_GROUPS.items() if set(names) & set(metrics)}


def binary_metrics(
    pred: np.ndarray | SparseMask,
    ref: np.ndarray | SparseMask,
    spacing: Sequence[float],
    tolerance_mm: float = 1.0,
    metrics: Iterable[str] | None = None,
    betti1: bool = False,
) -> dict[str, float]:
    """All metrics of a binary prediction against its reference, sharing the work between them.

    Args:
        pred: prediction mask (non-zero is foreground), 3-D.
        ref: reference mask, same shape.
        spacing: voxel size in mm along each array axis.
        tolerance_mm: NSD tolerance in mm.
        metrics: names from :data:`METRICS` to compute (their whole group is returned); ``None`` for all groups
            (the ``beta1_*`` group only with ``betti1``).
        betti1: also compute the first Betti numbers when ``metrics`` is ``None``.

    Returns:
        metric name -> value (float; ``inf`` for distances when exactly one mask is empty).
    """
    p = pred if isinstance(pred, SparseMask) else SparseMask.from_dense(np.asarray(pred))
    r = ref if isinstance(ref, SparseMask) else SparseMask.from_dense(np.asarray(ref))
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference must have the same shape, got {p.shape} and {r.shape}.")
    if len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive sizes in mm, got {tuple(spacing)}.")
    groups = _groups_for(metrics, betti1)
    out: dict[str, float] = {}
    if "overlap" in groups:
        out.update(overlap_metrics(p, r, spacing))
    if "surface" in groups:
        out.update(surface_metrics(*surface_distances(p.edges(), r.edges(), spacing), tolerance_mm))
    components = (p.components(), r.components()) if groups & {"skeleton", "topology", "betti1"} else None
    if "skeleton" in groups:
        out["clDice"] = cldice(p, r, skeleton(p, components[0]), skeleton(r, components[1]))
    if "topology" in groups:
        out.update(beta0_pred=float(components[0][0]), beta0_ref=float(components[1][0]))
        out["beta0_error"] = abs(out["beta0_pred"] - out["beta0_ref"])
    if "betti1" in groups:
        b1p, b1r = betti_numbers(p, components[0][0])[1], betti_numbers(r, components[1][0])[1]
        out.update(beta1_pred=float(b1p), beta1_ref=float(b1r), beta1_error=float(abs(b1p - b1r)))
    return out
