"""Datalists (MSD-style ``dataset.json``), their checks, and MONAI loaders."""

from pipeline.data.datalist import DatasetError, check_items, check_pair, load_datalist, resolve_datalist
from pipeline.data.loaders import make_loader

__all__ = ["DatasetError", "check_items", "check_pair", "load_datalist", "make_loader", "resolve_datalist"]
