"""Writing files that a later command reads: atomically (temp file, fsync, rename, fsync the folder)."""

from pipeline.io.atomic import TEMP_SUFFIX, atomic_write, fsync_dir, sha256_of, temp_path

__all__ = ["TEMP_SUFFIX", "atomic_write", "fsync_dir", "sha256_of", "temp_path"]
