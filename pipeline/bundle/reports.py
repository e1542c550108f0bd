"""Handlers of the bundle's prediction workflows: a log line per file written, and the evaluation tool's per-case
report after an evaluator run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ignite.engine import Engine, Events

from pipeline.errors import SettingsError
from pipeline.evaluation import CasePair, EvaluationSettings, format_results_table, run_evaluation
from pipeline.evaluation.pairing import NIFTI_SUFFIXES

__all__ = ["CaseReportHandler", "PredictionLog", "prediction_path"]

logger = logging.getLogger(__name__)


def _stem(path: str | Path) -> str:
    name = Path(path).name
    return next((name[: -len(s)] for s in NIFTI_SUFFIXES if name.lower().endswith(s)), name)


def prediction_path(image: str | Path, output_dir: str | Path, output_postfix: str = "pred") -> Path:
    """Where the bundle's postprocessing writes the prediction of ``image``:
    ``output_dir/<image name>_<output_postfix>.nii.gz``."""
    return Path(output_dir) / f"{_stem(image)}_{output_postfix}.nii.gz"


class PredictionLog:
    """Log each prediction file the evaluator's postprocessing wrote (``image -> prediction``) and keep the pairs.

    Args:
        output_dir: the postprocessing's output folder.
        output_postfix: its file-name postfix.

    Attributes:
        written: ``(image, prediction)`` paths, in the order predicted.
    """

    def __init__(self, output_dir: str, output_postfix: str = "pred") -> None:
        self.output_dir, self.output_postfix = output_dir, output_postfix
        self.written: list[tuple[str, Path]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        batch = engine.state.batch if isinstance(engine.state.batch, list) else [engine.state.batch]
        for item in batch:
            image = item["image"].meta.get("filename_or_obj") if hasattr(item.get("image"), "meta") else None
            if image is None:
                continue
            path = prediction_path(image, self.output_dir, self.output_postfix)
            self.written.append((str(image), path))
            logger.info("wrote %s (prediction of %s)", path, image)


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
        output_postfix: the predictions' file-name postfix.
    """

    def __init__(
        self,
        items: Sequence[dict[str, str]],
        prediction_dir: str,
        output_dir: str,
        tolerance_mm: float = 1.0,
        workers: int = 1,
        print_table: bool = True,
        output_postfix: str = "pred",
    ) -> None:
        if not items:
            raise SettingsError("CaseReportHandler needs at least one datalist entry to score.")
        self.items = list(items)
        self.prediction_dir = Path(prediction_dir)
        self.output_dir = Path(output_dir)
        self.settings = EvaluationSettings(tolerance_mm=tolerance_mm)
        self.workers = workers
        self.print_table = print_table
        self.output_postfix = output_postfix

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def _pairs(self) -> list[CasePair]:
        return [
            CasePair(_stem(item["image"]), prediction_path(item["image"], self.prediction_dir, self.output_postfix), Path(item["label"]))
            for item in self.items
        ]

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
