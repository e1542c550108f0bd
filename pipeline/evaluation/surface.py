"""Distances between two voxel surfaces, in mm: per-point KD-tree queries, or one exact distance transform.

Each directed distance (every voxel of one surface to the nearest voxel of the other) is computed one of two ways,
chosen per direction by the estimated cost:

- **KD-tree** (``scipy.spatial.KDTree``): build a tree on the target surface and query each source voxel. Its cost
  follows the number of points, not the volume, so it is what makes a thin vessel tree cheap. A query far from a
  thin target is slow, though (the search visits every leaf near the sphere through the nearest point), and an early
  network that marks much of the bright anatomy as vessel has millions of such surface voxels.
- **Distance transform**: the feature transform of ``scipy.ndimage.distance_transform_edt`` (``sampling`` = the
  spacing) of the complement of the target surface, over the bounding box of both surfaces, gives for every voxel of
  the box the index of its nearest target voxel. Every target voxel lies in the box, so that nearest voxel is the
  nearest of the whole surface: the result is exact, not an approximation. Its cost follows the box's voxel count.

Both paths compute the distance from the same two voxel centres with the same float64 arithmetic (coordinates
relative to the box's corner less one voxel, times the spacing), so they agree to the last bit unless two target
voxels are equally near (then to float32 rounding).

Memory of the distance transform: about 15 bytes per box voxel at its peak (scipy's int64 copy of the input, then the
int32 feature transform, 3 x 4 bytes), 708 MB measured for a 484x417x229 box; scipy's float64 distance map (2.3 GB
at its peak for that box) is never computed, only the distances at the source voxels. One direction's transform is
freed before the other's.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import KDTree

from pipeline.evaluation.sparse import SparseMask

__all__ = ["SURFACE_METHODS", "surface_distances", "use_distance_transform"]

#: the ways :func:`surface_distances` can compute a direction; ``"auto"`` chooses per direction by cost
SURFACE_METHODS = ("auto", "kdtree", "edt")
#: the KD-tree's cost per query and log2 of the target's size, and per target voxel (building) and log2 of its size, in
#: units of the distance transform's cost per box voxel, measured on the 2-core development machine: a query far from
#: a thin vessel tree (the slow kind) costs 2.7-5.2, a near one 0.3-0.6, building 0.11-0.15 (docs/benchmarks.md,
#: "Surface distances on large surfaces")
KD_QUERY_COST = 3.5
KD_BUILD_COST = 0.125


def use_distance_transform(n_source: int, n_target: int, box_voxels: int) -> bool:
    """Whether the distance transform is the cheaper way to one directed surface distance.

    The KD-tree's cost is estimated as ``(KD_QUERY_COST * n_source + KD_BUILD_COST * n_target) * log2(n_target)``,
    the distance transform's as ``box_voxels``.

    Args:
        n_source: voxels of the surface whose distances are wanted.
        n_target: voxels of the surface they are measured to.
        box_voxels: voxels of the bounding box of both surfaces.
    """
    kd_cost = (KD_QUERY_COST * n_source + KD_BUILD_COST * n_target) * np.log2(max(n_target, 2))
    return bool(kd_cost > box_voxels)


def _kdtree_distances(source_mm: np.ndarray, target_mm: np.ndarray) -> np.ndarray:
    return KDTree(target_mm, leafsize=32).query(source_mm, k=1)[0]


def _edt_distances(source: np.ndarray, target: np.ndarray, box: tuple[int, int, int], scale: np.ndarray) -> np.ndarray:
    """Distances (mm, float64) from each ``source`` voxel to the nearest ``target`` voxel, both as indices in a grid
    of shape ``box``, by the feature transform of the target's complement."""
    background = np.ones(box, dtype=bool)
    background[tuple(target.T)] = False
    # (3, n) indices of the nearest target voxel of each source voxel; the box-sized transform is freed at once
    nearest = ndimage.distance_transform_edt(background, sampling=scale, return_distances=False, return_indices=True)[
        (slice(None), *source.T)
    ]
    del background
    # the KD-tree's arithmetic, axis by axis (float64 temporaries of one axis at a time)
    squared = np.zeros(len(source))
    for axis in range(3):
        delta = source[:, axis] * scale[axis] - nearest[axis] * scale[axis]
        squared += delta * delta
    return np.sqrt(squared)


def surface_distances(
    pred_edges: SparseMask,
    ref_edges: SparseMask,
    spacing: Sequence[float],
    method: Literal["auto", "kdtree", "edt"] = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm, float32 as MONAI returns them) from each prediction surface voxel to the reference surface,
    and from each reference surface voxel to the prediction surface.

    The coordinates are taken relative to the corner of the union's bounding box less one voxel, as MONAI's
    ``get_mask_edges(crop=True)`` crops, so that the arithmetic matches ``get_surface_distance`` bit for bit. A
    direction whose target surface is empty gives ``inf`` for every source voxel (MONAI's convention too).

    Args:
        pred_edges: surface voxels of the prediction (``SparseMask.edges``).
        ref_edges: surface voxels of the reference.
        spacing: voxel size in mm along each axis.
        method: ``"kdtree"`` or ``"edt"`` (distance transform) for both directions, or ``"auto"`` to take the cheaper
            one per direction (:func:`use_distance_transform`); all give the same values.

    Returns:
        ``(d_pr, d_rp)``, float32 arrays in the order of ``pred_edges`` and ``ref_edges``.
    """
    if method not in SURFACE_METHODS:
        raise ValueError(f"surface distance method must be one of {list(SURFACE_METHODS)}, got {method!r}.")
    if len(pred_edges) == 0 or len(ref_edges) == 0:
        return (np.full(len(pred_edges), np.inf, dtype=np.float32), np.full(len(ref_edges), np.inf, dtype=np.float32))
    origin = np.minimum(pred_edges.coords.min(0), ref_edges.coords.min(0)) - 1
    p, r = pred_edges.coords - origin, ref_edges.coords - origin
    box = tuple(int(n) + 1 for n in np.maximum(p.max(0), r.max(0)))
    box_voxels = int(np.prod(box, dtype=np.int64))
    scale = np.asarray(spacing, dtype=np.float64)
    out = []
    for source, target in ((p, r), (r, p)):
        if method == "edt" or (method == "auto" and use_distance_transform(len(source), len(target), box_voxels)):
            out.append(_edt_distances(source, target, box, scale).astype(np.float32))
        else:
            out.append(_kdtree_distances(source * scale, target * scale).astype(np.float32))
    return out[0], out[1]
