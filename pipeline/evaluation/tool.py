"""The evaluation tool in one call: pair the files, score every case, write the reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pipeline.evaluation.pairing import CasePair
from pipeline.evaluation.report import summarize, write_reports
from pipeline.evaluation.runner import CaseResult, evaluate_pairs
from pipeline.evaluation.settings import EvaluationSettings

__all__ = ["EvaluationReport", "run_evaluation"]


@dataclass
class EvaluationReport:
    """What :func:`run_evaluation` produced.

    Attributes:
        results: one result per case, failed ones included.
        summary: the ``summary.json`` content.
        files: ``{"csv", "summary", "plot"}`` paths when an output folder was given.
    """

    results: list[CaseResult]
    summary: dict
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return sum(not r.ok for r in self.results)


def run_evaluation(
    pairs: Sequence[CasePair],
    out_dir: str | os.PathLike | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
    workers: int = 1,
) -> EvaluationReport:
    """Score ``pairs`` and, with ``out_dir``, write ``cases.csv``, ``summary.json`` and ``evaluation.png`` there.

    Args:
        pairs: from :func:`~pipeline.evaluation.pair_by_name` or :func:`~pipeline.evaluation.read_pairs_file`.
        out_dir: output folder (created if needed); ``None`` to write nothing.
        settings: how cases are scored and averaged.
        workers: worker processes.
    """
    results = evaluate_pairs(pairs, settings, workers)
    files = write_reports(results, settings, out_dir) if out_dir is not None else {}
    return EvaluationReport(results=results, summary=summarize(results, settings), files=files)
