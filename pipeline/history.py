"""The per-epoch training history as files: JSON (strict: NaN and infinity as null) and CSV (empty cells), with the
checkpoint decisions; both written atomically."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pipeline.io import strict_json, write_json, write_text

__all__ = ["CHECKPOINT_KEYS", "strict_json", "with_checkpoints", "write_history_json", "write_history_csv", "export_history"]

#: the columns :func:`with_checkpoints` adds: files saved at the epoch, their reasons, files retention removed
CHECKPOINT_KEYS = ("checkpoint", "checkpoint_reasons", "checkpoint_evicted")


def with_checkpoints(records: Sequence[Mapping[str, Any]], saves: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the epoch ``records`` with the checkpoint decisions of their epoch.

    Args:
        records: one dict per epoch with an ``epoch`` entry.
        saves: the checkpointer's history (dicts with ``epoch``, ``file``, ``reasons``, ``evicted``).

    Returns:
        the records with ``checkpoint`` (file names), ``checkpoint_reasons`` (e.g. ``"best+last"``) and
        ``checkpoint_evicted`` (file names), each ``;``-separated and empty when nothing happened at that epoch.
    """
    by_epoch: dict[int, list[Mapping[str, Any]]] = {}
    for save in saves:
        by_epoch.setdefault(int(save["epoch"]), []).append(save)
    merged = []
    for record in records:
        found = by_epoch.get(int(record["epoch"]), [])
        merged.append({
            **record,
            "checkpoint": ";".join(str(s["file"]) for s in found),
            "checkpoint_reasons": ";".join("+".join(s.get("reasons", [])) for s in found),
            "checkpoint_evicted": ";".join(f for s in found for f in s.get("evicted", [])),
        })
    return merged


def _finite_or_empty(value: Any) -> Any:
    return "" if isinstance(value, float) and not math.isfinite(value) else value


def write_history_json(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """``records`` as a JSON list (NaN and infinity written as null, :func:`pipeline.io.write_json`); returns the
    path."""
    return write_json(path, list(records))


def write_history_csv(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """``records`` as CSV, one row per epoch, the columns in order of first appearance (``epoch`` first); a value an
    epoch lacks, NaN and infinity are left empty. Written atomically; returns the path."""
    columns = list(dict.fromkeys(["epoch", *(k for record in records for k in record)]))
    stream = io.StringIO(newline="")
    writer = csv.DictWriter(stream, fieldnames=columns, restval="")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _finite_or_empty(v) for k, v in record.items()})
    return write_text(path, stream.getvalue())


def export_history(records: Sequence[Mapping[str, Any]], directory: str | Path, name: str = "history") -> tuple[Path, Path]:
    """Write ``<directory>/<name>.json`` and ``<directory>/<name>.csv``; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_history_json(records, directory / f"{name}.json"), write_history_csv(records, directory / f"{name}.csv")
