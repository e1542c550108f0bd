"""Synthetic coronary CT phantoms written as NIfTI pairs: kind ``tubes`` (bright vessel trees in a tissue box) and
kind ``ccta`` (chest, heart, coronary trees, veins, plaque and a scanner model; :mod:`pipeline.phantoms.ccta`)."""

from pipeline.phantoms.ccta import CCTAConfig, CCTAPhantom, make_ccta_phantom
from pipeline.phantoms.dataset import split_counts, write_nifti, write_phantom_dataset
from pipeline.phantoms.kinds import PHANTOM_KINDS, phantom_config
from pipeline.phantoms.measures import best_threshold_dice
from pipeline.phantoms.tree import Branch, TreeConfig, VesselTree, grow_forest, murray_branch_angles, murray_child_radii
from pipeline.phantoms.volume import Phantom, PhantomConfig, make_phantom, phantom_affine, signed_distance_to_tubes

__all__ = [
    "PHANTOM_KINDS",
    "Branch",
    "CCTAConfig",
    "CCTAPhantom",
    "best_threshold_dice",
    "make_ccta_phantom",
    "phantom_config",
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
