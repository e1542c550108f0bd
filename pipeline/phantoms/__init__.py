"""Synthetic coronary-like CT phantoms: branching vessel trees written as NIfTI pairs."""

from pipeline.phantoms.dataset import split_counts, write_nifti, write_phantom_dataset
from pipeline.phantoms.tree import Branch, TreeConfig, VesselTree, grow_forest, murray_branch_angles, murray_child_radii
from pipeline.phantoms.volume import Phantom, PhantomConfig, make_phantom, phantom_affine, signed_distance_to_tubes

__all__ = [
    "Branch",
    "Phantom",
    "PhantomConfig",
    "TreeConfig",
    "VesselTree",
    "grow_forest",
    "make_phantom",
    "murray_branch_angles",
    "murray_child_radii",
    "phantom_affine",
    "signed_distance_to_tubes",
    "split_counts",
    "write_nifti",
    "write_phantom_dataset",
]
