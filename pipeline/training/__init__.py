"""The seed's ``TrainingManager`` front door: set-up helpers, the manager, and the step functions it shares with Ignite.
See ``docs/training_manager.md``."""

from pipeline.training.factory import create_training_manager, quick_training_setup
from pipeline.training.loss_terms import LossTermsHandler
from pipeline.training.manager import TrainingManager
from pipeline.training.steps import VAL_METRIC, process_function, train_step, validate

__all__ = [
    "LossTermsHandler",
    "TrainingManager",
    "VAL_METRIC",
    "create_training_manager",
    "process_function",
    "quick_training_setup",
    "train_step",
    "validate",
]
