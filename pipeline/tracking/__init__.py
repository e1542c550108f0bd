"""MLflow tracking: one run per training (continued on resume), in an embedded SQLite store under the model folder
by default. See ``docs/tracking.md``."""

from pipeline.tracking.mlflow_store import ARTIFACTS_DIR, DB_NAME, flatten_params, import_mlflow, mlflow_client, resolve_tracking_uri
from pipeline.tracking.mlflow_tracker import MODEL_DIR_TAG, RESUMES_TAG, MLflowTracker

__all__ = [
    "ARTIFACTS_DIR",
    "DB_NAME",
    "MLflowTracker",
    "MODEL_DIR_TAG",
    "RESUMES_TAG",
    "flatten_params",
    "import_mlflow",
    "mlflow_client",
    "resolve_tracking_uri",
]
