"""Small functions and one handler that the MONAI bundles (``bundles/*/configs/*.json``) call through ``_target_`` and
``$`` expressions: locating the bundle, checked datalists, network weights for ``ckpt_export`` and inference, and the
per-case report of the evaluation tool after an evaluator run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler, load_training_state, resolve_checkpoint
from pipeline.data import DatasetError, check_items, load_datalist
from pipeline.data.plan import load_plan, plan_overrides
from pipeline.errors import CheckpointError, SettingsError
from pipeline.evaluation import CasePair, EvaluationSettings, format_results_table, run_evaluation
from pipeline.evaluation.pairing import NIFTI_SUFFIXES
from pipeline.history import export_history, strict_json, with_checkpoints

__all__ = [
    "CaseReportHandler",
    "bundle_path",
    "checked_datalist",
    "dataset_plan",
    "export_weights",
    "finish_training",
    "image_files",
    "load_weights",
]

logger = logging.getLogger(__name__)

#: the repository's bundles folder (the project is installed from the repository, editable)
BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def bundle_path(name: str = "coronary_vessel_seg") -> str:
    """Folder of the repository's bundle ``name`` (the default ``bundle_root``; override ``--bundle_root`` for a
    bundle copied elsewhere)."""
    return str(BUNDLES / name)


def checked_datalist(
    dataset_dir: str, split: str, datalist: str | None = None, keys: Sequence[str] = ("image", "label")
) -> list[dict[str, str]]:
    """One list of an MSD-style datalist with absolute paths, every file checked (exists, 3-D NIfTI, label on the
    image's grid and binary), so bad input fails when the bundle initializes, before any training.

    Raises:
        DatasetError: missing folder or datalist, missing or empty list, a missing or broken file.
    """
    items = load_datalist(dataset_dir, split, datalist, keys=tuple(keys))
    check_items(items)
    return items


def dataset_plan(dataset_dir: str) -> dict[str, Any]:
    """The bundle settings of ``dataset_dir/plan.json`` (``vessel-pipeline plan``), ``{}`` when there is none.

    ``train.json`` reads its data-dependent keys through this (``"$@plan.get('pixdim', <default>)"``), so a plan
    replaces the defaults and an explicit override replaces the plan.

    Raises:
        DatasetError: a plan of another schema version or one that cannot be read.
    """
    return plan_overrides(load_plan(dataset_dir))


def image_files(folder: str, pattern: str = "*_image.nii.gz") -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` of the NIfTI files in ``folder`` matching ``pattern``, sorted, headers checked.

    Raises:
        DatasetError: the folder does not exist or holds no matching NIfTI file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"input folder '{root}' does not exist.")
    files = sorted(str(p.resolve()) for p in root.glob(pattern) if p.name.lower().endswith(NIFTI_SUFFIXES))
    if not files:
        raise DatasetError(f"input folder '{root}' holds no NIfTI file matching {pattern!r}.")
    items = [{"image": f} for f in files]
    check_items(items)
    return items


def finish_training(handler: CheckpointHandler, epoch_logger: Any, model_dir: str) -> dict[str, Any]:
    """After training: the best checkpoint's network weights as ``model_dir/model.pt`` (what ``ckpt_export`` and
    ``inference.json`` read) and the per-epoch history with each epoch's checkpoint decisions as
    ``model_dir/history.json`` and ``history.csv``.

    Returns:
        ``{"model", "best_checkpoint", "last_checkpoint", "history"}``.
    """
    best = handler.best_checkpoint or handler.last_checkpoint
    if best is None:
        raise CheckpointError(f"training wrote no checkpoint into {handler.store.directory}.")
    model = export_weights(best, Path(model_dir) / "model.pt")
    records = with_checkpoints(getattr(epoch_logger, "history", []), handler.checkpointer.history)
    export_history(records, model_dir)
    history = json.loads(strict_json(records))
    logger.info("best checkpoint %s, network weights exported to %s", best, model)
    return {"model": model, "best_checkpoint": best, "last_checkpoint": handler.last_checkpoint, "history": history}


def export_weights(checkpoint: str | Path, path: str | Path) -> Path:
    """Write the network weights of a project checkpoint (or a folder of them: its best) as a plain state dict, the
    layout of a model-zoo bundle's ``models/model.pt``; written to a temporary file and renamed."""
    weights = _network_weights(checkpoint)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(weights, tmp)
    tmp.replace(path)
    return path


def _network_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    state = load_training_state(resolve_checkpoint(checkpoint))
    weights = state.get("network", state)
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"checkpoint '{checkpoint}' holds no network weights (keys {sorted(state)[:8]}).")
    if all(k.startswith("module.") for k in weights):  # a DistributedDataParallel wrapper given to save explicitly
        weights = {k[len("module."):]: v for k, v in weights.items()}
    return weights


def load_weights(network: torch.nn.Module, checkpoint: str | Path) -> torch.nn.Module:
    """Load ``checkpoint`` into ``network`` and return it: ``models/model.pt``, a project checkpoint file or a
    checkpoint folder (its best, checksum verified); always ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: missing, damaged or unsafe file, or weights made for another network.
    """
    weights = _network_weights(checkpoint)
    try:
        network.load_state_dict(weights)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise CheckpointError(
            f"checkpoint '{checkpoint}' does not fit the bundle's network_def: {(lines[1] if len(lines) > 1 else lines[0]).strip()}"
        ) from None
    return network


class CaseReportHandler:
    """At the end of an evaluator's run, score the predictions its postprocessing wrote (``<image name>_pred.nii.gz``)
    against the label files with the evaluation tool (:func:`~pipeline.evaluation.run_evaluation`, spacing from each
    header), write ``cases.csv``, ``summary.json`` and ``evaluation.png`` and print the per-case table.

    The mean of each metric goes to ``evaluator.state.metrics`` (``Dice``, ``clDice``, ``HD95_mm``, ``NSD``, ...) and
    the report to ``evaluator.state.report``.

    Args:
        items: the datalist entries scored (``image`` and ``label`` paths).
        prediction_dir: where the predictions are written.
        output_dir: where the reports go.
        tolerance_mm: NSD tolerance in mm.
        workers: worker processes of the evaluation tool.
        print_table: print the per-case table to stdout.
    """

    def __init__(
        self,
        items: Sequence[dict[str, str]],
        prediction_dir: str,
        output_dir: str,
        tolerance_mm: float = 1.0,
        workers: int = 1,
        print_table: bool = True,
    ) -> None:
        if not items:
            raise SettingsError("CaseReportHandler needs at least one datalist entry to score.")
        self.items = list(items)
        self.prediction_dir = Path(prediction_dir)
        self.output_dir = Path(output_dir)
        self.settings = EvaluationSettings(tolerance_mm=tolerance_mm)
        self.workers = workers
        self.print_table = print_table

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def _pairs(self) -> list[CasePair]:
        pairs = []
        for item in self.items:
            name = Path(item["image"]).name
            stem = next((name[: -len(s)] for s in NIFTI_SUFFIXES if name.lower().endswith(s)), name)
            pairs.append(CasePair(stem, self.prediction_dir / f"{stem}_pred.nii.gz", Path(item["label"])))
        return pairs

    def __call__(self, engine: Engine) -> None:
        report = run_evaluation(self._pairs(), self.output_dir, self.settings, self.workers)
        means = report.summary.get("mean", {}).get("1", {})
        engine.state.metrics.update({k: float(v) for k, v in means.items() if isinstance(v, (int, float))})
        engine.state.report = report
        if self.print_table:
            print(f"\nevaluation tool (mm, NSD tolerance {self.settings.tolerance_mm:g} mm):\n")
            print(format_results_table(report.results))
            print(f"\nwrote {', '.join(str(p) for p in report.files.values())}")
        if report.n_failed:
            logger.error("%d of %d cases could not be scored (see %s)", report.n_failed, len(report.results), report.files.get("csv"))
