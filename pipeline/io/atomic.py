"""Durable file writes: temp file in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, IO

__all__ = ["TEMP_SUFFIX", "temp_path", "fsync_dir", "atomic_write", "sha256_of"]

#: every temp file ends with this suffix and starts with a dot, so a sweep can find the debris of a killed write.
TEMP_SUFFIX = ".tmp"


def temp_path(final: Path) -> Path:
    """The temp file that :func:`atomic_write` uses for ``final`` (hidden, same folder, pid in the name)."""
    return final.with_name(f".{final.name}.{os.getpid()}{TEMP_SUFFIX}")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingFile:
    """A write-only file object that feeds a SHA-256 as bytes go by, so the checksum costs no second read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += view.nbytes
        return self.raw.write(view)

    def flush(self) -> None:
        self.raw.flush()


def atomic_write(final: Path, write: Callable[[IO[bytes]], None], fsync: bool = True) -> tuple[int, str]:
    """Write ``final`` so that it is either absent/unchanged or complete, never partial.

    ``write`` receives a binary file object. The data go to :func:`temp_path`, are flushed and fsynced, the temp
    file is renamed over ``final`` and the folder is fsynced. On any error the temp file is removed and the error
    raised; ``final`` is untouched.

    Returns:
        ``(size in bytes, SHA-256 hex digest)`` of what was written.
    """
    final = Path(final)
    tmp = temp_path(final)
    try:
        with open(tmp, "wb") as raw:
            hashing = _HashingFile(raw)
            write(hashing)
            raw.flush()
            if fsync:
                os.fsync(raw.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(final.parent)
    return hashing.size, hashing.digest.hexdigest()


def sha256_of(data: bytes | memoryview) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
