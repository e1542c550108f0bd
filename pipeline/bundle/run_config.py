"""The config a training run ran with, kept in its folder (``config.json``), so ``infer`` and ``evaluate
--checkpoint`` rebuild the same network and preprocessing from it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from pipeline.bundle.location import running_workflow
from pipeline.io import write_json
from pipeline.errors import CheckpointError

__all__ = ["CONFIG_NAME", "RUN_KEYS", "find_run_config", "read_run_config", "run_overrides", "write_run_config"]

logger = logging.getLogger(__name__)

#: the run's config file, next to ``checkpoints/`` and ``model.pt``
CONFIG_NAME = "config.json"
#: the keys that must be the same for prediction as for training: the network and the preprocessing
RUN_KEYS = ("network_def", "patch_size", "pixdim", "hu_window")
#: keys saved with their resolved values (plain data, possibly computed from the data set's plan)
RESOLVED_KEYS = ("plan", "patch_size", "pixdim", "hu_window")


def write_run_config(ckpt_dir: str | Path, rank0: bool = True) -> Path | None:
    """Save the config the running bundle workflow executes (its files merged, with every override) as
    ``ckpt_dir/config.json``, written atomically; only on rank 0. The preprocessing keys of :data:`RUN_KEYS` (and
    the dataset's ``plan``) are kept as the values the run used, not as the expressions that found them (a plan read
    from the training data set), so prediction on other data rebuilds the same preprocessing.

    Returns:
        the file, or None (not rank 0, or no ``ConfigWorkflow`` is running).
    """
    workflow = running_workflow()
    if not rank0 or workflow is None:
        return None
    config = {k: v for k, v in workflow.parser.get().items() if k != "_meta_"}
    for key in RESOLVED_KEYS:
        if key in config:
            config[key] = workflow.parser.get_parsed_content(key)
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    return write_json(Path(ckpt_dir) / CONFIG_NAME, config)


def find_run_config(checkpoint: str | Path) -> Path | None:
    """The ``config.json`` of the run a checkpoint belongs to: next to it (``model.pt``, a run folder) or one folder
    up (``checkpoints/<file>.pt``, the ``checkpoints/`` folder); None when there is none."""
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / CONFIG_NAME, folder.parent / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def read_run_config(path: str | Path) -> dict[str, Any]:
    """The saved config of a run.

    Raises:
        CheckpointError: not readable JSON, or not a bundle config.
    """
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"run config '{path}' cannot be read: {error}.") from None
    if not isinstance(config, Mapping) or "network_def" not in config:
        raise CheckpointError(f"'{path}' is not the config of a bundle training run (no network_def).")
    return dict(config)


def run_overrides(checkpoint: str | Path) -> dict[str, Any]:
    """The overrides that make ``inference.json`` / ``evaluate.json`` rebuild a run's network and preprocessing
    (:data:`RUN_KEYS` of its ``config.json``); none for a checkpoint without a run config (the bundle's defaults)."""
    found = find_run_config(checkpoint)
    if found is None:
        if Path(checkpoint).exists():
            logger.warning(
                "no %s next to '%s': predicting with the bundle's default network and preprocessing", CONFIG_NAME, checkpoint
            )
        return {}
    config = read_run_config(found)
    return {key: config[key] for key in RUN_KEYS if key in config}
