"""The only code that touches checkpoint files: the manifest, the store (durable save, eviction after the new file is
durable, safe loading), reading checkpoints from outside a run, and the background writer."""

from pipeline.checkpoint.storage.background_writer import BackgroundWriter, snapshot
from pipeline.checkpoint.storage.checkpoint_store import CHECKPOINT_FORMAT, CheckpointStore, load_checkpoint_file
from pipeline.checkpoint.storage.manifest import CheckpointEntry, clean_metrics, scalar_metrics
from pipeline.checkpoint.storage.reading import load_training_state, resolve_checkpoint, stores_in

__all__ = [
    "BackgroundWriter",
    "CHECKPOINT_FORMAT",
    "CheckpointEntry",
    "CheckpointStore",
    "clean_metrics",
    "load_checkpoint_file",
    "load_training_state",
    "resolve_checkpoint",
    "scalar_metrics",
    "snapshot",
    "stores_in",
]
