"""The per-epoch training history as files: JSON (strict, NaN as null) and CSV, with the checkpoint decisions."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

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


def _strict(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def strict_json(value: Any) -> str:
    """``value`` as indented strict JSON: NaN and infinity become null (at any depth), paths and other objects text."""

    def clean(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        if item is None or isinstance(item, (bool, int, str)):
            return item
        return _strict(item) if isinstance(item, float) else str(item)

    return json.dumps(clean(value), indent=2, allow_nan=False) + "\n"


def write_history_json(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """``records`` as a JSON list (NaN and infinity written as null); returns the path."""
    path = Path(path)
    path.write_text(strict_json(list(records)))
    return path


def write_history_csv(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """``records`` as CSV, one row per epoch, the columns in order of first appearance (``epoch`` first); a value an
    epoch lacks is left empty. Returns the path."""
    path = Path(path)
    columns = list(dict.fromkeys(["epoch", *(k for record in records for k in record)]))
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if _strict(v) is None else v) for k, v in record.items()})
    return path


def export_history(records: Sequence[Mapping[str, Any]], directory: str | Path, name: str = "history") -> tuple[Path, Path]:
    """Write ``<directory>/<name>.json`` and ``<directory>/<name>.csv``; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_history_json(records, directory / f"{name}.json"), write_history_csv(records, directory / f"{name}.csv")
