"""Checks of a bundle training's settings at set-up, before anything is built or written, and each loss preset's own
default loss-weight schedule. ``vessel-pipeline train`` and ``python -m monai.bundle run`` both go through them (the
CLI only turns its options into bundle overrides)."""

from __future__ import annotations

import difflib
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.bundle.location import running_workflow
from pipeline.checkpoint.checkpointer import EXISTING_POLICIES, RESUME_CHOICES
from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore
from pipeline.data.caching import check_cache_settings
from pipeline.errors import SettingsError

__all__ = [
    "MONAI_TRACKING_KEYS",
    "TOPOLOGY_TERMS",
    "check_cache_settings",
    "check_override_keys",
    "check_training_settings",
    "monai_tracking_handlers_off",
    "preset_schedule",
]

logger = logging.getLogger(__name__)

#: keys MONAI's ``--tracking mlflow`` adds to a config (they are the bundle's own tracking keys, see train.json)
MONAI_TRACKING_KEYS = ("output_dir", "tracking_uri", "experiment_name", "run_name", "save_execute_config", "is_not_rank0")
#: loss terms a preset's default schedule fades in (topology terms: weak while the network finds no vessel yet)
TOPOLOGY_TERMS = ("cldice", "skeleton_recall")
#: the names of "no schedule": the loss keeps its preset weights
_CONSTANT = (None, "none", "constant")


def monai_tracking_handlers_off() -> bool:
    """The bundle's ``is_not_rank0``: True, which disables the ``MLFlowHandler`` objects that MONAI's ``--tracking mlflow``
    adds (their ``_disabled_`` is ``@is_not_rank0``), so they are never built and open no store of their own. The
    bundle's :class:`~pipeline.tracking.MLflowTracker` tracks the run instead (on by default, ``mlflow: false`` turns
    it off), with MONAI's ``tracking_uri``, ``experiment_name`` and ``run_name`` keys, and only on rank 0."""
    return True


def check_override_keys() -> None:
    """Refuse top-level keys that no config file of the running bundle defines (a mistyped override such as
    ``--epoch 2`` would otherwise be ignored silently).

    Raises:
        SettingsError: the unknown keys, the closest valid names and every valid key.
    """
    workflow = running_workflow()
    if workflow is None:
        return
    valid = set(MONAI_TRACKING_KEYS) | {"_meta_"}
    for path in Path(workflow.config_root_path).glob("*.json"):
        if path.name != "metadata.json":
            content = json.loads(path.read_text())
            valid |= {key for key in content if "#" not in key} if isinstance(content, dict) else set()
    unknown = sorted(set(workflow.parser.get()) - valid)
    if unknown:
        hints = {key: difflib.get_close_matches(key, sorted(valid), n=1) for key in unknown}
        hint = "; ".join(f"{key!r}: did you mean {m[0]!r}?" for key, m in hints.items() if m)
        raise SettingsError(
            f"unknown bundle key(s) {unknown}{' (' + hint + ')' if hint else ''}; valid keys: {sorted(valid - {'_meta_'})}."
        )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be an integer >= 1, got {value!r}.")
    return value


def check_training_settings(
    patch_size: Sequence[int],
    strides: Sequence[int],
    epochs: int,
    val_interval: int,
    batch_size: int,
    learning_rate: float,
    checkpoint_dir: str | Path,
    model_name: str,
    resume: str | None,
    existing: str,
) -> None:
    """Check a training's settings before anything is built or written.

    - ``patch_size``: three sizes, each divisible by the product of the network's ``strides``;
    - ``epochs``, ``val_interval``, ``batch_size`` >= 1, ``learning_rate`` > 0;
    - ``resume``: None, ``auto``, ``best``, ``last`` or an existing checkpoint file;
    - ``existing``: ``error``, ``replace`` or ``keep``; with ``error`` (the default) a fresh run refuses a folder that
      holds an earlier run's checkpoints; ``replace`` says loudly that they will be deleted.

    Raises:
        SettingsError: the bad key and value, with the valid choices or range.
    """
    for name, value in (("epochs", epochs), ("val_interval", val_interval), ("batch_size", batch_size)):
        _positive_int(name, value)
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0 or not math.isfinite(learning_rate):
        raise SettingsError(f"learning_rate must be a number > 0, got {learning_rate!r}.")
    factor = math.prod(int(s) for s in strides)
    sizes = list(patch_size) if isinstance(patch_size, (list, tuple)) else [patch_size]
    if len(sizes) != 3 or any(_positive_int("patch_size", p) % factor for p in sizes):
        fitting = [max(factor, p // factor * factor) for p in sizes] if len(sizes) == 3 else [4 * factor] * 3
        raise SettingsError(
            f"patch_size {sizes} must be three sizes divisible by {factor} (the product of the network's strides "
            f"{list(strides)}), e.g. {fitting}."
        )
    if resume is not None and resume not in RESUME_CHOICES and not Path(str(resume)).is_file():
        raise SettingsError(f"resume must be one of {list(RESUME_CHOICES)} or a checkpoint file, got {resume!r}.")
    if existing not in EXISTING_POLICIES:
        raise SettingsError(f"existing must be one of {list(EXISTING_POLICIES)}, got {existing!r}.")
    if resume is not None or not (Path(checkpoint_dir) / f"{model_name}.manifest.json").is_file():
        return
    earlier = [e.file for e in CheckpointStore(checkpoint_dir, model_name, recover=False).entries if set(e.reasons) != {"exception"}]
    if earlier and existing == "error":
        raise SettingsError(
            f"{checkpoint_dir} holds {len(earlier)} checkpoint(s) of an earlier run: continue it with resume='auto' "
            "(--resume auto), choose another output folder, or replace it with existing='replace' (--existing replace)."
        )
    if earlier and existing == "replace":
        logger.warning(
            "existing='replace': the %d checkpoint(s) of the earlier run in %s (%s) are DELETED once this run's first "
            "checkpoint is saved", len(earlier), checkpoint_dir, ", ".join(earlier),
        )


def preset_schedule(
    loss: Any, schedule: str | None, params: Mapping[str, Any] | None, epochs: int
) -> tuple[str | None, dict[str, Any]]:
    """The loss-weight schedule of a training: ``schedule`` with ``params``, checked against the loss and the run.

    ``"default"`` is the preset's own schedule: its topology terms (:data:`TOPOLOGY_TERMS`) faded in from 0 by a
    cosine after a warm-up of 3/8 of the run, over 1/4 of it (15 and 10 epochs of a 40-epoch run), ``params``
    overriding these; a preset without a topology term keeps its weights. ``None``/``"none"``/``"constant"``: the
    preset's weights throughout (the ``constant`` schedule, so the same handler publishes them).

    Returns:
        ``(name, params)`` for :class:`~pipeline.schedules.LossScheduleHandler`.

    Raises:
        SettingsError: unknown schedule or parameter, parameters without a schedule, or a schedule that does not fit
            into ``epochs``.
    """
    from pipeline.schedules import create_schedule

    params = dict(params or {})
    if schedule == "default":
        terms = [t for t in getattr(loss, "weights", {}) if t in TOPOLOGY_TERMS]
        if not terms:
            schedule = None
        else:
            schedule = "cosine"
            params = {"start_weights": {t: 0.0 for t in terms}, "warmup_epochs": epochs * 3 // 8, "epochs": max(1, epochs // 4), **params}
    if schedule in _CONSTANT:
        if params:
            raise SettingsError(f"loss_schedule_params {params} are given without a loss_schedule to take them.")
        return "constant", {}
    built = create_schedule(schedule, loss.weights, params)
    if hasattr(built, "set_run_length"):
        built.set_run_length(epochs)  # a warm-up longer than the run fails here, not at epoch 1
    return schedule, params
