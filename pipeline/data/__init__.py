"""Datalists (MSD-style ``dataset.json``), their checks, datasets cached where they fit, MONAI loaders, and a dataset's
fingerprint and plan."""

from pipeline.data.caching import CACHE_MODES, CachePlan, build_dataset, plan_cache
from pipeline.data.datalist import DatasetError, check_items, check_pair, load_datalist, resolve_datalist
from pipeline.data.fingerprint import DatasetFingerprint, compute_fingerprint
from pipeline.data.loaders import make_loader
from pipeline.data.plan import Plan, PlanSettings, load_plan, make_plan, plan_dataset, plan_overrides, write_plan
from pipeline.data.vessel_radius import vessel_radii

__all__ = [
    "CACHE_MODES",
    "CachePlan",
    "DatasetError",
    "DatasetFingerprint",
    "Plan",
    "PlanSettings",
    "build_dataset",
    "check_items",
    "check_pair",
    "compute_fingerprint",
    "load_datalist",
    "load_plan",
    "make_loader",
    "make_plan",
    "plan_cache",
    "plan_dataset",
    "plan_overrides",
    "resolve_datalist",
    "vessel_radii",
    "write_plan",
]
