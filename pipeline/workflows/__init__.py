"""End-to-end workflows: training and checkpoint evaluation."""

from pipeline.workflows.config import DEFAULT_DATA, TrainingConfig, resolve_device
from pipeline.workflows.prediction import CaseScore, format_case_table, load_network, predict_and_score, predict_volumes
from pipeline.workflows.training import TrainingResult, run_training

__all__ = [
    "CaseScore",
    "DEFAULT_DATA",
    "TrainingConfig",
    "TrainingResult",
    "format_case_table",
    "load_network",
    "predict_and_score",
    "predict_volumes",
    "resolve_device",
    "run_training",
]
