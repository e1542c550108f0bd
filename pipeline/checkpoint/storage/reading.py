"""Reading checkpoints from outside a training run: a file or a folder, verified against its manifest when it has one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore, load_checkpoint_file
from pipeline.errors import CheckpointError

__all__ = ["MANIFEST_SUFFIX", "stores_in", "resolve_checkpoint", "load_training_state"]

MANIFEST_SUFFIX = ".manifest.json"


def stores_in(directory: Path) -> list[CheckpointStore]:
    """Read-only views of every checkpoint store in ``directory`` (one per manifest; nothing is swept)."""
    return [
        CheckpointStore(directory, path.name[: -len(MANIFEST_SUFFIX)], recover=False)
        for path in sorted(Path(directory).glob(f"*{MANIFEST_SUFFIX}"))
    ]


def resolve_checkpoint(path: str | Path, which: str = "best") -> Path:
    """The checkpoint file ``path`` means: a file is itself; a folder gives its ``"best"`` checkpoint (by the scores
    and the ``mode`` recorded in its manifest; the newest when nothing was scored) or its ``"last"`` one.

    Raises:
        CheckpointError: the path does not exist, or the folder holds no (or more than one) checkpoint manifest.
    """
    if which not in ("best", "last"):
        raise CheckpointError(f"which must be 'best' or 'last', got {which!r}")
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' does not exist.")
    stores = stores_in(path)
    if len(stores) != 1:
        found = [s.manifest_path.name for s in stores]
        raise CheckpointError(f"checkpoint folder '{path}' must hold exactly one *{MANIFEST_SUFFIX}, found {found}; name the file instead.")
    store = stores[0]
    entry = store.best() if which == "best" else None
    entry = entry or store.newest()
    if entry is None:
        raise CheckpointError(f"checkpoint folder '{path}' holds no checkpoint.")
    return store.path(entry)


def load_training_state(path: str | Path, which: str = "best", map_location: Any = "cpu") -> dict[str, Any]:
    """The saved states (``{"network": ..., "optimizer": ..., ...}``) of a checkpoint file or folder.

    A file listed in a manifest next to it is checked against its recorded size and SHA-256 first; every file is
    loaded with ``torch.load(weights_only=True)``. A plain state dict (e.g. written by MONAI's ``CheckpointSaver``)
    is returned as it is.
    """
    file = resolve_checkpoint(path, which)
    for store in stores_in(file.parent):
        entry = store.find(file.name)
        if entry is not None:
            payload = store.load(entry, map_location)
            break
    else:
        payload = load_checkpoint_file(file, map_location)
    state = payload.get("state", payload)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{file}' holds no dict of states (found {type(state).__name__}).")
    return state
