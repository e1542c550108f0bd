"""Files a later command reads (``model.pt``, the run's ``config.json``) are written atomically: a reader sees the
old or the new file, never half of one."""

from __future__ import annotations

from pathlib import Path

from pipeline.checkpoint.atomic import atomic_write

__all__ = ["write_bytes", "write_text"]


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename (the checkpoints' atomic write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))
    return path


def write_text(path: str | Path, text: str) -> Path:
    """:func:`write_bytes` of UTF-8 text."""
    return write_bytes(path, text.encode())
