"""Growth of branching, non-fusing vessel centerline trees (coronary-like).

All coordinates are in millimetres in the *array frame*: ``x_mm = index * spacing`` along each array axis. The NIfTI
affine (see :mod:`pipeline.phantoms.volume`) maps this frame to scanner space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TreeConfig", "Branch", "VesselTree", "grow_forest", "murray_child_radii", "murray_branch_angles"]


@dataclass(frozen=True)
class TreeConfig:
    """Parameters of the centerline growth.

    Args:
        root_radius_vox: range of the root radius, in voxels of the finest spacing.
        min_radius_vox: branches thinner than this are not created (vessels stay 1-4 voxels in radius). On strongly
            anisotropic grids the floor is raised to ``0.55`` coarsest voxels, the thinnest tube whose voxel centres
            stay 26-connected, so that each tree remains one connected component in the label.
        segment_length_radii: range of a segment's length between bifurcations, in multiples of its radius.
        asymmetry: range of the child radius ratio ``r_small / r_large`` at a bifurcation.
        murray_exponent: exponent of Murray's law ``r_parent^k = r_1^k + r_2^k`` (3 for laminar flow).
        taper: fraction of radius lost along one segment (before it bifurcates).
        curvature_per_mm: standard deviation of the direction change per millimetre (radians), an Ornstein-Uhlenbeck
            turning rate so centerlines bend smoothly.
        gap_vox: minimal free space between the walls of two vessels that are not parent and child, in voxels of the
            coarsest spacing, so that vessels never fuse in the label.
        max_branches: cap on the number of branches of one tree.
    """

    root_radius_vox: tuple[float, float] = (3.0, 4.0)
    min_radius_vox: float = 1.0
    segment_length_radii: tuple[float, float] = (5.0, 9.0)
    asymmetry: tuple[float, float] = (0.55, 0.95)
    murray_exponent: float = 3.0
    taper: float = 0.08
    curvature_per_mm: float = 0.12
    gap_vox: float = 1.5
    max_branches: int = 31


@dataclass
class Branch:
    """One vessel segment: centerline points (mm, array frame) and the radius (mm) at each point.

    ``parent`` is the index of the parent segment in its tree's ``branches`` (``None`` for the root); a child starts at
    its parent's last point.
    """

    tree: int
    parent: int | None
    points: np.ndarray
    radii: np.ndarray


@dataclass
class VesselTree:
    """A tree of branches grown from one root; ``branches[0]`` is the root segment."""

    index: int
    branches: list[Branch] = field(default_factory=list)

    @property
    def points(self) -> np.ndarray:
        return np.concatenate([b.points for b in self.branches])

    @property
    def radii(self) -> np.ndarray:
        return np.concatenate([b.radii for b in self.branches])


def murray_child_radii(radius: float, asymmetry: float, exponent: float = 3.0) -> tuple[float, float]:
    """Radii of the two children so that ``r^k = r1^k + r2^k`` with ``r2 = asymmetry * r1`` (Murray's law)."""
    r1 = radius / (1.0 + asymmetry**exponent) ** (1.0 / exponent)
    return r1, asymmetry * r1


def murray_branch_angles(r0: float, r1: float, r2: float) -> tuple[float, float]:
    """Angles (radians) of the children to the parent direction that minimise the work of flow (Murray, 1926).

    ``cos(theta_1) = (r0^4 + r1^4 - r2^4) / (2 r0^2 r1^2)`` and symmetrically for ``theta_2``.
    """

    def angle(a: float, b: float) -> float:
        return float(np.arccos(np.clip((r0**4 + a**4 - b**4) / (2 * r0**2 * a**2), -1.0, 1.0)))

    return angle(r1, r2), angle(r2, r1)


#: thinnest radius, in coarsest voxels, that keeps a tube's voxel centres 26-connected: measured on 90 forests with
#: slices up to 4x thicker than the in-plane spacing, 0.45 split some trees and 0.55 split none
CONNECTED_RADIUS_VOX = 0.55


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _random_perpendicular(direction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return _unit(v - v.dot(direction) * direction)


class _Occupancy:
    """Centerline points already placed, to keep new vessels from touching existing ones."""

    def __init__(self) -> None:
        self.points = np.zeros((0, 3))
        self.radii = np.zeros(0)
        self.owner = np.zeros(0, dtype=np.int64)

    def add(self, points: np.ndarray, radii: np.ndarray, owner: int) -> None:
        self.points = np.concatenate([self.points, points])
        self.radii = np.concatenate([self.radii, radii])
        self.owner = np.concatenate([self.owner, np.full(len(points), owner, dtype=np.int64)])

    def collides(self, point: np.ndarray, radius: float, gap: float, ignore: set[int]) -> bool:
        if not len(self.points):
            return False
        keep = ~np.isin(self.owner, list(ignore)) if ignore else slice(None)
        d = np.linalg.norm(self.points[keep] - point, axis=1)
        return bool(np.any(d < self.radii[keep] + radius + gap))


def _inside(point: np.ndarray, radius: float, extent: np.ndarray) -> bool:
    return bool(np.all(point - radius >= 0.0) and np.all(point + radius <= extent))


def _grow_segment(
    start: np.ndarray,
    direction: np.ndarray,
    radius: float,
    length: float,
    cfg: TreeConfig,
    extent: np.ndarray,
    occupancy: _Occupancy,
    near_start: set[int],
    grace: float,
    gap: float,
    step: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """March a curved centerline; stops at ``length``, at the volume border or before touching another vessel.

    Within ``grace`` mm of the start, the vessels in ``near_start`` (parent and sibling, which share the bifurcation
    point) are not counted as obstacles.
    """
    points, radii = [start.copy()], [radius]
    pos, d = start.copy(), direction.copy()
    turn = np.zeros(3)
    n_steps = int(length / step)
    for i in range(1, n_steps + 1):
        # Ornstein-Uhlenbeck turning rate: smooth, persistent bending.
        turn = 0.9 * turn + cfg.curvature_per_mm * np.sqrt(step) * _random_perpendicular(d, rng)
        turn -= turn.dot(d) * d
        d = _unit(d + turn * step)
        pos = pos + d * step
        r = radius * (1.0 - cfg.taper * i / n_steps)
        if not _inside(pos, r, extent):
            break
        if occupancy.collides(pos, r, gap, near_start if i * step <= grace else set()):
            break
        points.append(pos.copy())
        radii.append(r)
    return np.asarray(points), np.asarray(radii), d


def _root(
    t: int, extent: np.ndarray, cfg: TreeConfig, fine: float, step: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, None, float]:
    radius = rng.uniform(*cfg.root_radius_vox) * fine
    axis, side = t % 2, (t // 2) % 2
    start = rng.uniform(0.3, 0.7, size=3) * extent
    start[axis] = radius + step if side == 0 else extent[axis] - radius - step
    inward = np.zeros(3)
    inward[axis] = 1.0 if side == 0 else -1.0
    return start, _unit(inward + 0.35 * rng.normal(size=3)), radius, None, 0.0


def grow_forest(
    n_trees: int, extent_mm: np.ndarray, voxel_mm: tuple[float, float], cfg: TreeConfig, rng: np.random.Generator
) -> list[VesselTree]:
    """Grow ``n_trees`` coronary-like trees entering the box from its lateral faces.

    Each segment bends smoothly, tapers, and bifurcates into two children whose radii follow Murray's law and whose
    angles minimise flow work; children thinner than ``cfg.min_radius_vox`` are not grown. A segment stops at the
    border or before it would come closer than ``cfg.gap_vox`` to another vessel (no fusion in the label).

    Args:
        n_trees: number of separate trees (e.g. left and right coronary systems).
        extent_mm: size of the box (mm) along each array axis.
        voxel_mm: (finest, coarsest) voxel spacing in mm; radii are in voxels of the finest, gaps of the coarsest.
        cfg: growth parameters.
        rng: random generator (the only source of randomness, so a seed reproduces the forest).

    Returns:
        the trees, each with at least its root segment.
    """
    fine, coarse = voxel_mm
    step = 0.5 * fine
    gap = cfg.gap_vox * coarse
    min_radius = max(cfg.min_radius_vox * fine, CONNECTED_RADIUS_VOX * coarse)
    occupancy = _Occupancy()
    trees: list[VesselTree] = []
    owner = 0
    for t in range(n_trees):
        tree = VesselTree(index=t)
        # pending segments: (start, direction, radius, parent owner id, parent radius)
        queue: list[tuple[np.ndarray, np.ndarray, float, int | None, float]] = []
        grown_children: dict[int, list[int]] = {}
        index_in_tree: dict[int, int] = {}
        root_attempts = 0
        while (queue or not tree.branches) and len(tree.branches) < cfg.max_branches:
            if not queue:  # (re)place the root: through a lateral face, a different one for each tree
                root_attempts += 1
                if root_attempts > 50:
                    raise RuntimeError(f"could not place the root of tree {t} in a box of {extent_mm} mm")
                queue.append(_root(t, extent_mm, cfg, fine, step, rng))
            start, direction, radius, parent, parent_radius = queue.pop(0)
            if parent is None and occupancy.collides(start, radius, gap, set()):
                continue  # the root would touch an earlier tree: place it again
            length = rng.uniform(*cfg.segment_length_radii) * radius
            near_start = set() if parent is None else {parent, *grown_children.get(parent, [])}
            grace = parent_radius + radius + gap + step
            pts, rad, end_dir = _grow_segment(
                start, direction, radius, length, cfg, extent_mm, occupancy, near_start, grace, gap, step, rng
            )
            if (len(pts) - 1) * step <= grace:
                continue  # blocked right at the bifurcation: drop it rather than leave a stub
            occupancy.add(pts, rad, owner)
            index_in_tree[owner] = len(tree.branches)
            parent_index = None if parent is None else index_in_tree[parent]
            tree.branches.append(Branch(tree=t, parent=parent_index, points=pts, radii=rad))
            if parent is not None:
                grown_children.setdefault(parent, []).append(owner)
            me, owner = owner, owner + 1
            if (len(pts) - 1) * step < 0.9 * length:  # stopped early at the border or a neighbour: a terminal branch
                continue
            r_end = float(rad[-1])
            r1, r2 = murray_child_radii(r_end, rng.uniform(*cfg.asymmetry), cfg.murray_exponent)
            a1, a2 = murray_branch_angles(r_end, r1, r2)
            normal = _random_perpendicular(end_dir, rng)
            for r, d in ((r1, np.cos(a1) * end_dir + np.sin(a1) * normal), (r2, np.cos(a2) * end_dir - np.sin(a2) * normal)):
                if r * (1.0 - cfg.taper) >= min_radius:  # stays >= the minimal radius after tapering
                    queue.append((pts[-1].copy(), _unit(d), r, me, r_end))
        trees.append(tree)
    return trees
