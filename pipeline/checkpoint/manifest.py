"""The manifest: one JSON file listing every checkpoint of a store, written atomically."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.checkpoint.atomic import atomic_write
from pipeline.checkpoint.strategies import KeptCheckpoint

__all__ = ["MANIFEST_FORMAT", "CheckpointEntry", "read_manifest", "read_manifest_scoring", "write_manifest", "clean_metrics"]

MANIFEST_FORMAT = "vessel-pipeline-checkpoints/1"


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The scalar entries of ``metrics`` as floats (NaN/inf as None, so the JSON stays strict); others are dropped."""
    out: dict[str, float | None] = {}
    for name, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):  # lists, strings, tensors with more than one element
            continue
        out[str(name)] = number if math.isfinite(number) else None
    return out


@dataclass
class CheckpointEntry:
    """One checkpoint file as the manifest records it.

    Attributes:
        file: file name inside the store folder.
        epoch, iteration: the training position the state belongs to.
        reasons: why it was saved (``best``, ``epoch``, ``interval``, ``last``, ``final``, ``exception``, ...).
        metrics: the scalar metrics at save time.
        score: the monitored metric at save time (None when none).
        size: bytes; sha256: hex digest of the file; time: UTC ISO-8601 time of the save.
    """

    file: str
    epoch: int
    iteration: int
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None
    size: int = 0
    sha256: str = ""
    time: str = ""

    def kept(self) -> KeptCheckpoint:
        """This entry as the strategies see it."""
        return KeptCheckpoint(self.file, self.epoch, self.iteration, self.score, frozenset(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CheckpointEntry":
        return cls(
            file=str(data["file"]),
            epoch=int(data["epoch"]),
            iteration=int(data["iteration"]),
            reasons=[str(r) for r in data.get("reasons", [])],
            metrics=clean_metrics(data.get("metrics")),
            score=None if data.get("score") is None else float(data["score"]),
            size=int(data.get("size", 0)),
            sha256=str(data.get("sha256", "")),
            time=str(data.get("time", "")),
        )


def read_manifest(path: Path) -> list[CheckpointEntry] | None:
    """The entries of the manifest at ``path``; None when it is missing or unreadable (the store then rebuilds it)."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != MANIFEST_FORMAT:
            return None
        return [CheckpointEntry.from_dict(item) for item in data["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read_manifest_scoring(path: Path) -> tuple[str | None, str]:
    """``(monitor, mode)`` recorded in the manifest at ``path`` (``(None, "max")`` when absent)."""
    try:
        data = json.loads(Path(path).read_text())
        return data.get("monitor"), data.get("mode", "max")
    except (OSError, ValueError, AttributeError):
        return None, "max"


def write_manifest(
    path: Path,
    model_name: str,
    entries: list[CheckpointEntry],
    fsync: bool = True,
    monitor: str | None = None,
    mode: str = "max",
) -> None:
    """Write the manifest atomically (temp file, fsync, rename, fsync folder).

    ``monitor`` and ``mode`` record what ``score`` means, so a reader can pick the best checkpoint.
    """
    document = {
        "format": MANIFEST_FORMAT,
        "model_name": model_name,
        "monitor": monitor,
        "mode": mode,
        "checkpoints": [e.to_dict() for e in entries],
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()), fsync=fsync)
