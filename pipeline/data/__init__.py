"""Datalists (MSD-style ``dataset.json``), their checks, datasets cached where they fit, and MONAI loaders."""

from pipeline.data.caching import CACHE_MODES, CachePlan, build_dataset, plan_cache
from pipeline.data.datalist import DatasetError, check_items, check_pair, load_datalist, resolve_datalist
from pipeline.data.loaders import make_loader

__all__ = [
    "CACHE_MODES",
    "CachePlan",
    "DatasetError",
    "build_dataset",
    "check_items",
    "check_pair",
    "load_datalist",
    "make_loader",
    "plan_cache",
    "resolve_datalist",
]
