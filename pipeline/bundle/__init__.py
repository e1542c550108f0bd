"""What the MONAI bundles (``bundles/*/configs/*.json``) call through ``_target_`` and ``$`` expressions: where the
bundle is, set-up checks, the run's saved config, datalists, network weights, prediction logs and reports, and the
end of a training. ``pipeline.workflows`` runs the same bundles for the command line."""

from pipeline.bundle.data import checked_datalist, dataset_plan, image_files
from pipeline.bundle.location import BUNDLE_NAME, bundle_path, bundle_root, running_workflow, sample_data
from pipeline.bundle.reports import CaseReportHandler, PredictionLog, prediction_path
from pipeline.bundle.run_config import CONFIG_NAME, RUN_KEYS, find_run_config, read_run_config, run_overrides, write_run_config
from pipeline.bundle.settings import check_cache_settings, check_override_keys, check_training_settings, monai_tracking_handlers_off, preset_schedule
from pipeline.bundle.training import finish_training, rank0_logger
from pipeline.bundle.weights import WeightsLoader, export_weights, load_weights, network_weights

__all__ = [
    "BUNDLE_NAME",
    "CONFIG_NAME",
    "CaseReportHandler",
    "PredictionLog",
    "RUN_KEYS",
    "WeightsLoader",
    "bundle_path",
    "bundle_root",
    "check_cache_settings",
    "check_override_keys",
    "check_training_settings",
    "checked_datalist",
    "dataset_plan",
    "export_weights",
    "find_run_config",
    "finish_training",
    "image_files",
    "load_weights",
    "monai_tracking_handlers_off",
    "network_weights",
    "prediction_path",
    "preset_schedule",
    "rank0_logger",
    "read_run_config",
    "run_overrides",
    "running_workflow",
    "sample_data",
    "write_run_config",
]
