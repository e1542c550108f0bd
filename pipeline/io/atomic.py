"""Durable file writes: temp file in the same folder, fsync, rename, fsync the folder. Every file a later command
reads (checkpoints, manifests, exported weights, the run's config, histories, plots) is written this way."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, IO

__all__ = [
    "TEMP_SUFFIX",
    "AtomicWriteError",
    "atomic_write",
    "fsync_dir",
    "save_torch",
    "sha256_of",
    "temp_path",
    "write_bytes",
    "write_text",
]

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


class AtomicWriteError(OSError):
    """A write of :func:`atomic_write` that failed with an OS error (``errno`` kept, e.g. ``ENOSPC`` for a full disk);
    ``filename`` is the file that was being written, ``written`` the bytes that had gone to its temp file."""

    written: int = 0


class _HashingFile:
    """A write-only file object that feeds a SHA-256 as bytes go by, so the checksum costs no second read. It keeps
    the first OS error of the file below: a writer that catches it (``torch.save`` reports a failed write as
    ``RuntimeError: ... unexpected pos``) does not hide it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += view.nbytes
        try:
            return self.raw.write(view)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        self.raw.flush()


def atomic_write(final: Path, write: Callable[[IO[bytes]], None], fsync: bool = True) -> tuple[int, str]:
    """Write ``final`` so that it is either absent/unchanged or complete, never partial.

    ``write`` receives a binary file object. The data go to :func:`temp_path`, are flushed and fsynced, the temp
    file is renamed over ``final`` and the folder is fsynced. On any error the temp file is removed and the error
    raised; ``final`` is untouched.

    Returns:
        ``(size in bytes, SHA-256 hex digest)`` of what was written.

    Raises:
        AtomicWriteError: the OS refused a write, a flush, the fsync or the rename (also when ``write`` reported the
            failed write as another error, as ``torch.save`` does); its ``errno`` is the OS's.
    """
    final = Path(final)
    tmp = temp_path(final)
    hashing: _HashingFile | None = None
    try:
        with open(tmp, "wb") as raw:
            hashing = _HashingFile(raw)
            write(hashing)
            raw.flush()
            if fsync:
                os.fsync(raw.fileno())
        os.replace(tmp, final)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        cause = hashing.error if hashing is not None and hashing.error is not None else error
        if not isinstance(cause, OSError) or isinstance(error, AtomicWriteError):
            raise
        failed = AtomicWriteError(cause.errno, cause.strerror or str(cause), str(final))
        failed.written = 0 if hashing is None else hashing.size
        raise failed from error
    if fsync:
        fsync_dir(final.parent)
    return hashing.size, hashing.digest.hexdigest()


def write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`); returns the path."""
    atomic_write(Path(path), lambda f: f.write(data), fsync=fsync)
    return Path(path)


def write_text(path: str | Path, text: str, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"), fsync)


def save_torch(obj: Any, path: str | Path, fsync: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the path."""
    import torch

    atomic_write(Path(path), lambda f: torch.save(obj, f), fsync=fsync)
    return Path(path)


def sha256_of(data: bytes | memoryview) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
