"""Where MLflow keeps a training's runs: the tracking URI, an offline client, the experiment, and the run to use.

By default the store is an embedded SQLite database under the model folder (``sqlite:///<model_dir>/mlflow.db``,
artifacts in ``<model_dir>/mlartifacts``): no server, nothing on the network. ``MLFLOW_TRACKING_URI`` or an explicit
``tracking_uri`` points it elsewhere (e.g. an MLflow server).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

from pipeline.errors import SettingsError

__all__ = [
    "DB_NAME",
    "ARTIFACTS_DIR",
    "PARAM_VALUE_LIMIT",
    "resolve_tracking_uri",
    "import_mlflow",
    "mlflow_client",
    "flatten_params",
    "get_or_create_experiment",
]

#: the embedded store's file and artifact folder, under the model folder
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
#: MLflow refuses longer parameter values
PARAM_VALUE_LIMIT = 6000


def resolve_tracking_uri(model_dir: str | Path, tracking_uri: str | None = None) -> str:
    """The tracking URI to use: ``tracking_uri`` if given, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite
    store ``sqlite:///<model_dir>/mlflow.db`` (an absolute path)."""
    if tracking_uri:
        return str(tracking_uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(model_dir).resolve() / DB_NAME).as_posix()}"


def import_mlflow() -> Any:
    """Import MLflow with its usage telemetry off, so nothing it does reaches the internet by itself (it reports
    usage to mlflow-telemetry.io unless ``MLFLOW_DISABLE_TELEMETRY`` or ``DO_NOT_TRACK`` is set)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    already = "mlflow" in sys.modules
    import mlflow

    if already:  # imported before with telemetry on: drop its client now that the switch is set
        from mlflow.telemetry.client import set_telemetry_client

        set_telemetry_client()
    return mlflow


def mlflow_client(tracking_uri: str) -> Any:
    """An :class:`mlflow.MlflowClient` for ``tracking_uri`` (for the SQLite default, the database and its folder are
    created on first use)."""
    mlflow = import_mlflow()
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def get_or_create_experiment(client: Any, name: str, artifact_root: Path | None) -> str:
    """The id of the experiment called ``name``, created (with its artifacts under ``artifact_root`` when given)
    if it does not exist.

    Raises:
        SettingsError: the experiment exists but was deleted (MLflow will not log into it).
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None if artifact_root is None else artifact_root.resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)
    if experiment.lifecycle_stage != "active":
        raise SettingsError(f"MLflow experiment {name!r} is deleted in this store; restore it or choose another experiment_name.")
    return experiment.experiment_id


def flatten_params(params: Mapping[str, Any] | None, prefix: str = "") -> dict[str, str]:
    """Nested configuration dicts as flat MLflow parameters: ``{"loss": {"dice_weight": 0.7}}`` ->
    ``{"loss.dice_weight": "0.7"}`` (values as text, cut at MLflow's length limit)."""
    flat: dict[str, str] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat
