"""The manifest: one JSON file listing every checkpoint of a store, written atomically."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.io import write_json
from pipeline.checkpoint.strategies import KeptCheckpoint

__all__ = [
    "MANIFEST_FORMAT",
    "CheckpointEntry",
    "read_manifest",
    "read_manifest_header",
    "write_manifest",
    "clean_metrics",
    "scalar_metrics",
]

MANIFEST_FORMAT = "vessel-pipeline-checkpoints/1"


def scalar_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """The scalar entries of ``metrics`` as floats (NaN kept); lists, strings and larger tensors are dropped."""
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    """:func:`scalar_metrics` for JSON: NaN and inf become None, so the manifest stays strict JSON."""
    return {k: v if math.isfinite(v) else None for k, v in scalar_metrics(metrics).items()}


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
        seq: place in the order of saves of this store (1, 2, ...).
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
    seq: int = 0

    def kept(self) -> KeptCheckpoint:
        """This entry as the strategies see it."""
        return KeptCheckpoint(self.file, self.epoch, self.iteration, self.score, frozenset(self.reasons), self.seq)

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
            seq=int(data.get("seq", 0)),
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


def read_manifest_header(path: Path) -> dict[str, Any]:
    """The manifest's fields other than the entries: ``monitor`` and ``mode`` (what ``score`` means) and
    ``last_seq`` (the highest save number ever given; -1 when unknown)."""
    try:
        data = json.loads(Path(path).read_text())
        return {"monitor": data.get("monitor"), "mode": data.get("mode", "max"), "last_seq": int(data.get("last_seq", -1))}
    except (OSError, ValueError, AttributeError, TypeError):
        return {"monitor": None, "mode": "max", "last_seq": -1}


def write_manifest(
    path: Path,
    model_name: str,
    entries: list[CheckpointEntry],
    fsync: bool = True,
    monitor: str | None = None,
    mode: str = "max",
    last_seq: int = 0,
) -> None:
    """Write the manifest atomically (temp file, fsync, rename, fsync folder).

    ``monitor`` and ``mode`` record what ``score`` means, so a reader can pick the best checkpoint; ``last_seq`` the
    highest save number given, so a file evicted but not yet deleted (a kill in between) is not taken back.
    """
    document = {
        "format": MANIFEST_FORMAT,
        "model_name": model_name,
        "monitor": monitor,
        "mode": mode,
        "last_seq": last_seq,
        "checkpoints": [e.to_dict() for e in entries],
    }
    write_json(path, document, fsync=fsync)
