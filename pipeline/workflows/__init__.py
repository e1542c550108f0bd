"""The command line's workflows: training, inference and checkpoint evaluation, each a run of the bundle's configs."""

from pipeline.workflows.bundle import TrainingResult, evaluate_bundle, infer_bundle, train_bundle
from pipeline.workflows.device import resolve_device

__all__ = ["TrainingResult", "evaluate_bundle", "infer_bundle", "resolve_device", "train_bundle"]
