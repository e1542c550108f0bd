"""Evaluation of vessel segmentations: metrics in millimetres, NIfTI pairing, reports and the Ignite metric.

The metric definitions and the references they match are in ``docs/evaluation.md``.
"""

from pipeline.evaluation.ignite_metric import VesselMetric, spacing_from_tensor
from pipeline.evaluation.loading import LoadedPair, load_pair, spacing_of
from pipeline.evaluation.metrics import METRIC_GROUPS, METRICS, binary_metrics, empty_flag
from pipeline.evaluation.pairing import CasePair, case_id, pair_by_name, read_pairs_file
from pipeline.evaluation.reference import monai_reference_metrics
from pipeline.evaluation.report import format_results_table, summarize, write_reports
from pipeline.evaluation.runner import CaseResult, EvaluationSettings, evaluate_case, evaluate_pairs, failed
from pipeline.evaluation.sparse import SparseMask
from pipeline.evaluation.tool import EvaluationReport, run_evaluation

__all__ = [
    "METRICS",
    "METRIC_GROUPS",
    "CasePair",
    "CaseResult",
    "EvaluationReport",
    "EvaluationSettings",
    "LoadedPair",
    "SparseMask",
    "VesselMetric",
    "binary_metrics",
    "case_id",
    "empty_flag",
    "evaluate_case",
    "evaluate_pairs",
    "failed",
    "format_results_table",
    "load_pair",
    "monai_reference_metrics",
    "pair_by_name",
    "read_pairs_file",
    "run_evaluation",
    "spacing_from_tensor",
    "spacing_of",
    "summarize",
    "write_reports",
]
