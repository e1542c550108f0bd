"""Where MLflow keeps a training's runs: the tracking URI, an offline client, the experiment, and the run to use.

By default the store is an embedded SQLite database under the model folder (``sqlite:///<model_dir>/mlflow.db``,
artifacts in ``<model_dir>/mlartifacts``): no server, nothing on the network. ``MLFLOW_TRACKING_URI`` or an explicit
``tracking_uri`` points it elsewhere (e.g. an MLflow server).

A new SQLite store is a copy of an empty one (:func:`empty_store_template`): MLflow builds a fresh database by running
its whole chain of schema migrations, which takes seconds; that is done once per MLflow version and machine, in the
user's cache folder (``$VESSEL_PIPELINE_CACHE``, else ``$XDG_CACHE_HOME/vessel-pipeline``, else
``~/.cache/vessel-pipeline``), and every later store starts from the copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import sys
import tempfile
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
    "empty_store_template",
]

logger = logging.getLogger(__name__)

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
        db = Path(tracking_uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        if not db.exists():
            try:
                _copy_new(empty_store_template(), db)
            except OSError as error:  # e.g. a read-only home: MLflow builds the store itself
                logger.warning("no empty MLflow store template (%s); MLflow builds %s itself", error, db)
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def _cache_dir() -> Path:
    if os.environ.get("VESSEL_PIPELINE_CACHE"):
        return Path(os.environ["VESSEL_PIPELINE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vessel-pipeline"


def _copy_new(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file in ``dst``'s folder, so no half-copied database is seen; a
    ``dst`` another process made in the meantime is kept."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        try:
            os.link(tmp, dst)
        except FileExistsError:
            pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def empty_store_template() -> Path:
    """An MLflow SQLite database with the installed MLflow's full schema and no experiment, built on first use in the
    cache folder (see the module's docstring). MLflow adds its ``Default`` experiment itself when it opens a copy, as
    it does for a database it builds, with the artifact location and time of that moment.

    Returns:
        the template's path (one per MLflow version).
    """
    mlflow = import_mlflow()
    template = _cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    if template.is_file():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    logger.info("building an empty MLflow %s store once (schema migrations), kept as %s", mlflow.__version__, template)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        db = Path(tmp) / "mlflow.db"
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db.as_posix()}")
        client.search_experiments()  # opening the store runs the migrations and adds the Default experiment
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM experiments")
        con.close()
        os.replace(db, template)
    return template


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
