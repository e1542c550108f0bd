"""Where the bundle is: its root folder (from the config file that is running), the project's sample data, and the
MONAI ``ConfigWorkflow`` that evaluates the bundle's expressions."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_NAME", "bundle_path", "bundle_root", "running_workflow", "sample_data"]

logger = logging.getLogger(__name__)

#: the bundle this project ships
BUNDLE_NAME = "coronary_vessel_seg"
#: the repository's bundles folder (the project is installed from the repository, editable)
_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def bundle_path(name: str = BUNDLE_NAME) -> str:
    """Folder of the repository's bundle ``name`` (what ``vessel-pipeline train`` runs)."""
    return str(_BUNDLES / name)


def sample_data() -> str:
    """The project's sample data set (``data_samples/`` of the installed project): the bundle's default
    ``dataset_dir``, wherever the bundle itself lies."""
    return str(_BUNDLES.parent / "data_samples")


def running_workflow() -> Any:
    """The MONAI ``ConfigWorkflow`` whose expression is being evaluated, or None (a bare ``ConfigParser``, as
    ``ckpt_export`` and ``verify_net_in_out`` use).

    MONAI gives a config's expressions no handle on their parser; the workflow is the caller up the stack that
    initialises or runs the config. The bundle uses it for its root folder, its override check and the config it
    saves with the run.
    """
    from monai.bundle import ConfigWorkflow

    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, ConfigWorkflow):
            return owner
        frame = frame.f_back
    return None


def bundle_root() -> str:
    """The bundle's root folder: the parent of the ``configs/`` folder of the running config file, so a bundle copied
    anywhere runs from where it lies (the current folder when no workflow is running). Override ``bundle_root`` to
    write the run elsewhere."""
    workflow = running_workflow()
    if workflow is None:
        return str(Path.cwd())
    configs = Path(workflow.config_root_path).resolve()
    return str(configs.parent if configs.name == "configs" else configs)
