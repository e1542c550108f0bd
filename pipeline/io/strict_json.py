"""The one JSON writer of the project: strict JSON (RFC 8259) that any reader parses.

JSON has no NaN or infinity; Python's ``json`` writes them as ``NaN``/``Infinity`` (which strict readers refuse) or,
with ``allow_nan=False``, raises. Here every non-finite number, at any depth, is written as ``null`` ("no finite
value"): a NaN loss, an infinite distance of an empty prediction, a metric never computed all read back as None.
Paths and other objects are written as their text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from pipeline.io.atomic import write_text

__all__ = ["strict_json", "strict_value", "write_json"]


def strict_value(value: Any) -> Any:
    """``value`` as plain JSON data: dicts (keys as text), lists, strings, finite numbers, booleans and None; a NaN or
    infinite float becomes None; tuples become lists; numpy/torch scalars become numbers; other objects their text."""
    if isinstance(value, Mapping):
        return {str(k): strict_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy and one-element torch scalars
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return strict_value(item())
    return str(value)


def strict_json(value: Any) -> str:
    """``value`` as indented strict JSON text (see :func:`strict_value`), ending with a newline."""
    return json.dumps(strict_value(value), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, value: Any, fsync: bool = True) -> Path:
    """Write ``value`` as strict JSON to ``path`` atomically (temp file, fsync, rename); returns the path."""
    return write_text(path, strict_json(value), fsync)
