"""Putting the project's handlers on a trainer (:func:`attach_training_handlers`, used by the bundle, by
``TrainingManager.attach`` and by users' own Ignite code) and the original API's ``TrainingManager`` front door:
set-up helpers, the manager, and the step functions it shares with Ignite. See ``docs/training_manager.md``."""

from pipeline.training.attach import TrainingHandlers, attach_training_handlers
from pipeline.training.factory import create_training_manager, quick_training_setup
from pipeline.training.manager import TrainingManager
from pipeline.training.steps import VAL_METRIC, process_function, train_step, validate

__all__ = [
    "TrainingHandlers",
    "TrainingManager",
    "VAL_METRIC",
    "attach_training_handlers",
    "create_training_manager",
    "process_function",
    "quick_training_setup",
    "train_step",
    "validate",
]
