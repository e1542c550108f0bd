"""Vessel-segmentation training pipeline on MONAI and PyTorch Ignite."""

from pipeline.data import DatasetError, check_items, check_pair, load_datalist, make_loader
from pipeline.errors import CheckpointError, InputError, SettingsError
from pipeline.engines import VAL_KEY_METRIC, create_evaluator, create_trainer
from pipeline.handlers import EpochSummaryLogger
from pipeline.networks import create_unet
from pipeline.phantoms import PhantomConfig, TreeConfig, make_phantom, write_phantom_dataset
from pipeline.workflows import (
    CaseScore,
    TrainingConfig,
    TrainingResult,
    format_case_table,
    load_network,
    predict_and_score,
    run_training,
)

__version__ = "0.1.0"

__all__ = [
    "CaseScore",
    "CheckpointError",
    "InputError",
    "SettingsError",
    "DatasetError",
    "EpochSummaryLogger",
    "PhantomConfig",
    "TrainingConfig",
    "TrainingResult",
    "TreeConfig",
    "VAL_KEY_METRIC",
    "check_items",
    "check_pair",
    "create_evaluator",
    "create_trainer",
    "create_unet",
    "format_case_table",
    "load_datalist",
    "load_network",
    "make_loader",
    "make_phantom",
    "predict_and_score",
    "run_training",
    "write_phantom_dataset",
]
