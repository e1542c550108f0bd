"""Writing files that a later command reads: atomically (temp file, fsync, rename, fsync the folder), and JSON always
strict (non-finite numbers as null)."""

from pipeline.io.atomic import (
    TEMP_SUFFIX,
    AtomicWriteError,
    atomic_write,
    fsync_dir,
    save_torch,
    sha256_of,
    temp_path,
    write_bytes,
    write_text,
)
from pipeline.io.strict_json import strict_json, strict_value, write_json

__all__ = [
    "TEMP_SUFFIX",
    "AtomicWriteError",
    "atomic_write",
    "fsync_dir",
    "save_torch",
    "sha256_of",
    "strict_json",
    "strict_value",
    "temp_path",
    "write_bytes",
    "write_json",
    "write_text",
]
