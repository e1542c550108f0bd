"""Evaluation of vessel segmentations: metrics in millimetres, NIfTI pairing, geometry checks, honest means, reports
and the Ignite metric.

The metric definitions and the references they match are in ``docs/evaluation.md``. Names are imported on first use,
so the command line's ``evaluate --help`` does not pay for numpy, scipy or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["VesselMetric", "spacing_from_tensor"], "pipeline.evaluation.ignite_metric"),
    **dict.fromkeys(["LoadedPair", "load_pair"], "pipeline.evaluation.loading"),
    **dict.fromkeys(["GridMatch", "match_grids", "spacing_of", "volume_diagonal_mm"], "pipeline.evaluation.geometry"),
    **dict.fromkeys(["METRIC_GROUPS", "METRICS", "binary_metrics", "empty_flag"], "pipeline.evaluation.metrics"),
    **dict.fromkeys(["CasePair", "case_id", "pair_by_name", "read_pairs_file"], "pipeline.evaluation.pairing"),
    "monai_reference_metrics": "pipeline.evaluation.reference",
    **dict.fromkeys(["format_means", "format_results_table", "summarize", "write_reports"], "pipeline.evaluation.report"),
    **dict.fromkeys(["Aggregate", "aggregate"], "pipeline.evaluation.aggregation"),
    **dict.fromkeys(["CaseResult", "evaluate_case", "evaluate_pairs", "failed"], "pipeline.evaluation.runner"),
    **dict.fromkeys(["AGGREGATIONS", "EvaluationSettings"], "pipeline.evaluation.settings"),
    "SparseMask": "pipeline.evaluation.sparse",
    **dict.fromkeys(["EvaluationReport", "run_evaluation"], "pipeline.evaluation.tool"),
    **dict.fromkeys(["bounded_value", "worst_value"], "pipeline.evaluation.worst"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipeline.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
