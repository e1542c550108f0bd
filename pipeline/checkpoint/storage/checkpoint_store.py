"""The checkpoint store: the only code that touches checkpoint files.

Every save is durable before anything is evicted: the state is written to a hidden temp file in the same folder,
fsynced, renamed into place, the folder fsynced, the manifest rewritten the same way, and only then may older files
go. A kill at any moment therefore leaves at least every checkpoint that was complete before the save began.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import pickle
import re
import shutil
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from pipeline.io.atomic import TEMP_SUFFIX, atomic_write, sha256_of
from pipeline.checkpoint.storage.manifest import CheckpointEntry, clean_metrics, read_manifest, read_manifest_header, write_manifest
from pipeline.checkpoint.strategies import top_by_score
from pipeline.errors import CheckpointError, SettingsError

__all__ = ["CHECKPOINT_FORMAT", "CheckpointStore", "load_checkpoint_file"]

logger = logging.getLogger(__name__)

#: the OS errors that mean the disk (or the user's quota) is full.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: the ``format`` key of every checkpoint this project writes.
CHECKPOINT_FORMAT = "vessel-pipeline-checkpoint/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def tensor_bytes(state: Any) -> int:
    """The bytes of the tensor data in ``state`` (nested dicts, lists and tuples), each storage counted once: about
    the size of its checkpoint file."""
    seen: set[int] = set()
    total = 0
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return total


def _reason(error: BaseException) -> str:
    """The most telling line of a torch loading error (its type when it has no message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.startswith("Check the documentation")]
    return f"{type(error).__name__}: {lines[-1]}" if lines else type(error).__name__


def read_verified(path: Path, size: int | None = None, sha256: str | None = None) -> bytes:
    """The bytes of ``path``, checked against the recorded ``size`` and ``sha256`` when given (an empty recorded
    checksum fails: a manifest entry always has one).

    Raises:
        CheckpointError: unreadable, truncated or altered; the message names the file and the reason.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read: {e.strerror or e}") from e
    if size is not None and len(data) != size:
        raise CheckpointError(f"checkpoint {path} is {len(data)} bytes but was written with {size} (truncated or altered)")
    if sha256 is not None and sha256_of(data) != sha256:
        raise CheckpointError(f"checkpoint {path} fails its SHA-256 check: the file was altered or damaged after saving")
    return data


def load_checkpoint_file(
    path: str | Path, map_location: Any = "cpu", size: int | None = None, sha256: str | None = None
) -> dict[str, Any]:
    """Load a checkpoint safely: check its size and SHA-256 when known, then ``torch.load(weights_only=True)``.

    Only tensors, numbers, strings and containers of them load; a pickle that would construct any other object (and
    so run code) is refused before anything of it runs.

    Raises:
        CheckpointError: the file is missing, truncated, altered (checksum), not a checkpoint, or unsafe; the message
            names the file and the reason.
    """
    path = Path(path)
    data = read_verified(path, size, sha256)
    try:
        with warnings.catch_warnings():
            # an older pickle protocol is only worth a note; what the file holds is checked all the same
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if unsafe:
            raise CheckpointError(
                f"checkpoint {path} was refused: it holds objects other than tensors and plain data, which could run "
                f"code when loaded ({unsafe[0]})"
            ) from e
        raise CheckpointError(f"checkpoint {path} is not a readable torch checkpoint ({_reason(e)})") from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError, OSError) as e:
        raise CheckpointError(f"checkpoint {path} is not a readable torch checkpoint ({_reason(e)})") from e
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not a dict of states")
    return payload


class CheckpointStore:
    """A folder of checkpoints of one model and its manifest ``<model_name>.manifest.json``.

    Files are named ``<model_name>_e<epoch>_i<iteration>.pt``; each holds ``{"format", "meta", "state"}`` where
    ``meta`` repeats the manifest entry, so a lost manifest can be rebuilt from the files. Opening a store sweeps the
    debris of an interrupted save: its temp files are deleted, a complete checkpoint the manifest does not know yet (a
    kill between rename and manifest update) is adopted, a file already evicted from the manifest but not yet deleted
    (a kill during eviction) is deleted, entries whose file is gone are dropped, and a file that is not a loadable
    checkpoint is renamed ``*.corrupt`` and left for inspection. Other files, and other models' files, are not touched.

    Args:
        directory: the folder (created if missing).
        model_name: the file prefix, letters, digits, ``_``, ``-`` and ``.``.
        fsync: fsync files and folder on every write (turn off only for throw-away runs).
        recover: sweep the folder on opening (the writer does this; a reader of a folder that a running training
            may be writing into passes ``False`` and only reads the manifest).
    """

    def __init__(self, directory: str | Path, model_name: str = "model", fsync: bool = True, recover: bool = True) -> None:
        if not isinstance(model_name, str) or not _NAME.match(model_name):
            raise SettingsError(
                f"model_name must start with a letter or digit and hold only letters, digits, '_', '-', '.': {model_name!r}"
            )
        self.directory = Path(directory)
        self.model_name = model_name
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.directory / f"{model_name}.manifest.json"
        name = re.escape(model_name)
        self._file_pattern = re.compile(rf"^{name}_e\d+_i\d+(-\d+)?\.pt$")
        self._temp_pattern = re.compile(rf"^\.{name}(_e\d+_i\d+(-\d+)?\.pt|\.manifest\.json)\.\d+{re.escape(TEMP_SUFFIX)}$")
        self._entries: list[CheckpointEntry] = []
        header = read_manifest_header(self.manifest_path)
        #: what the entries' ``score`` means (recorded in the manifest; the checkpointer sets them)
        self.monitor, self.mode = header["monitor"], header["mode"]
        self._last_seq = header["last_seq"]
        if recover:
            self.sweep()
        else:
            self._entries = read_manifest(self.manifest_path) or []

    # ----------------------------------------------------------------------------------------------------- reading
    def reload(self) -> None:
        """Read the manifest again (a reader of a folder another process writes into, e.g. ranks > 0 under DDP)."""
        header = read_manifest_header(self.manifest_path)
        self.monitor, self.mode, self._last_seq = header["monitor"], header["mode"], header["last_seq"]
        self._entries = read_manifest(self.manifest_path) or []

    @property
    def entries(self) -> list[CheckpointEntry]:
        """The checkpoints in the manifest, oldest first."""
        return list(self._entries)

    def path(self, entry: CheckpointEntry | str) -> Path:
        return self.directory / (entry.file if isinstance(entry, CheckpointEntry) else entry)

    def find(self, file: str | Path) -> CheckpointEntry | None:
        """The entry of ``file`` (a name or a path inside this folder), or None."""
        path = Path(file)
        if path.parent not in (Path("."), self.directory) and path.resolve().parent != self.directory.resolve():
            return None
        return next((e for e in self._entries if e.file == path.name), None)

    def newest(self, exclude: Iterable[str] = ()) -> CheckpointEntry | None:
        """The most recently saved entry whose reasons are not all in ``exclude``."""
        skip = set(exclude)
        candidates = [e for e in self._entries if not set(e.reasons) <= skip or not e.reasons]
        return max(candidates, key=lambda e: (e.seq, e.iteration, e.epoch), default=None)

    def best(self, mode: str | None = None) -> CheckpointEntry | None:
        """The kept checkpoint with the best finite score in direction ``mode`` (default: the manifest's), the older
        one among equals; None when nothing was scored."""
        scored = [e for e in self._entries if e.score is not None and math.isfinite(e.score)]
        if not scored:
            return None
        best = top_by_score([e.kept() for e in scored], 1, mode or self.mode or "max")[0]
        return next(e for e in scored if e.file == best.key)

    def total_size(self) -> int:
        return sum(e.size for e in self._entries)

    def load(self, entry: CheckpointEntry | str | Path, map_location: Any = "cpu") -> dict[str, Any]:
        """Load ``entry`` (an entry, a file name of this store, or any path), verifying size and SHA-256 when the
        manifest knows the file.

        Returns:
            the checkpoint payload ``{"format", "meta", "state"}``.
        """
        if not isinstance(entry, CheckpointEntry):
            found = self.find(entry)
            if found is None:
                return load_checkpoint_file(entry, map_location)
            entry = found
        return load_checkpoint_file(self.path(entry), map_location, size=entry.size, sha256=entry.sha256)

    def verify(self, entry: CheckpointEntry) -> None:
        """Raise :class:`CheckpointError` unless ``entry``'s file has its recorded size and SHA-256."""
        read_verified(self.path(entry), entry.size, entry.sha256)

    # ----------------------------------------------------------------------------------------------------- writing
    def file_name(self, epoch: int, iteration: int, reasons: Iterable[str] = ()) -> str:
        """The name the next checkpoint at this position gets: ``<model>_e<epoch>_i<iteration>.pt``, with
        ``_exception`` for one saved only because the run failed or was interrupted (so the resumed run's own
        checkpoint of that position keeps the plain name), and a suffix ``-N`` when the name is taken."""
        base = f"{self.model_name}_e{epoch:04d}_i{iteration:08d}"
        if set(reasons) == {"exception"}:
            base += "_exception"
        taken = {e.file for e in self._entries}
        name, n = f"{base}.pt", 0
        while name in taken or (self.directory / name).exists():
            n += 1
            name = f"{base}-{n}.pt"
        return name

    def save(
        self,
        state: Mapping[str, Any],
        epoch: int,
        iteration: int,
        reasons: Iterable[str],
        metrics: Mapping[str, Any] | None = None,
        score: float | None = None,
    ) -> CheckpointEntry:
        """Write ``state`` durably as a new checkpoint and record it in the manifest.

        Raises:
            CheckpointError: the write failed; the message names the file and the OS error, and for a full disk the
                checkpoint's size, the bytes written and the free space. The earlier checkpoints and the manifest are
                untouched and no temp file is left.
        """
        entry = CheckpointEntry(
            file=self.file_name(epoch, iteration, reasons),
            epoch=int(epoch),
            iteration=int(iteration),
            reasons=sorted(set(reasons)),
            metrics=clean_metrics(metrics),
            score=float(score) if score is not None and math.isfinite(score) else None,
            time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            seq=max(self._last_seq, max((e.seq for e in self._entries), default=0)) + 1,
        )
        meta = {k: v for k, v in entry.to_dict().items() if k not in ("size", "sha256")}
        payload = {"format": CHECKPOINT_FORMAT, "meta": meta, "state": dict(state)}
        path = self.path(entry)
        try:
            entry.size, entry.sha256 = atomic_write(path, lambda f: torch.save(payload, f), fsync=self.fsync)
        except OSError as e:
            kept = ", ".join(e.file for e in self._entries) or "none"
            problem = e.strerror or str(e)
            if e.errno in DISK_FULL:
                written = getattr(e, "written", 0)
                problem += (
                    f": the disk is full; the checkpoint needs about {tensor_bytes(payload):,} bytes (tensor data), "
                    f"{written:,} were written before the disk ran out, {shutil.disk_usage(self.directory).free:,} "
                    f"bytes are free in {self.directory}"
                )
            raise CheckpointError(
                f"could not write checkpoint {path}: {problem}; earlier checkpoints and the manifest are intact ({kept})"
            ) from e
        self._entries.append(entry)
        previous_seq, self._last_seq = self._last_seq, entry.seq
        try:
            self._write_manifest()
        except OSError as e:  # the manifest is unchanged; the new file goes, so the folder agrees with it again
            self._entries.remove(entry)
            self._last_seq = previous_seq
            path.unlink(missing_ok=True)
            raise CheckpointError(
                f"checkpoint {path} was written but the manifest could not be updated ({e.strerror or e}); "
                "earlier checkpoints are intact"
            ) from e
        return entry

    def add_reasons(self, entry: CheckpointEntry, reasons: Iterable[str]) -> None:
        """Record more reasons for an existing checkpoint (e.g. ``final``); only the manifest changes."""
        entry.reasons = sorted(set(entry.reasons) | set(reasons))
        self._write_manifest()

    def evict(self, files: Iterable[str]) -> list[str]:
        """Remove checkpoints: first from the manifest (durably), then from the disk. Returns the names removed."""
        names = set(files)
        gone = [e.file for e in self._entries if e.file in names]
        if not gone:
            return []
        self._entries = [e for e in self._entries if e.file not in names]
        self._write_manifest()
        for name in gone:
            (self.directory / name).unlink(missing_ok=True)
        return gone

    def _write_manifest(self) -> None:
        write_manifest(self.manifest_path, self.model_name, self._entries, self.fsync, self.monitor, self.mode, self._last_seq)

    # ----------------------------------------------------------------------------------------------------- recovery
    def sweep(self) -> None:
        """Bring the folder and the manifest back into agreement after an interrupted save (see the class doc)."""
        recorded = read_manifest(self.manifest_path)
        changed = recorded is None and self.manifest_path.exists()
        if changed:
            logger.warning("checkpoint manifest %s is unreadable; rebuilding it from the files", self.manifest_path)
        entries = []
        for entry in recorded or []:
            path = self.path(entry)
            if not path.is_file():
                logger.warning("checkpoint %s listed in the manifest is missing; dropping it", path)
                changed = True
            elif path.stat().st_size != entry.size:
                self._quarantine(path, f"{path.stat().st_size} bytes instead of {entry.size}")
                changed = True
            else:
                entries.append(entry)
        known = {e.file for e in entries}
        last_seq = self._last_seq if recorded is not None else -1  # rebuilding: every file is taken back
        for path in sorted(self.directory.iterdir()):
            if self._temp_pattern.match(path.name):
                logger.info("removing the temp file of an interrupted save: %s", path)
                path.unlink(missing_ok=True)
            elif self._file_pattern.match(path.name) and path.name not in known:
                adopted = self._adopt(path)
                changed = True
                if adopted is None:
                    continue
                if adopted.seq <= last_seq:
                    logger.info("removing %s, evicted before an interrupted deletion", path)
                    path.unlink(missing_ok=True)
                    continue
                logger.warning("adopting checkpoint %s, complete but not yet in the manifest (interrupted save)", path)
                entries.append(adopted)
        self._entries = sorted(entries, key=lambda e: (e.seq, e.iteration, e.epoch))
        self._last_seq = max([self._last_seq] + [e.seq for e in self._entries])
        if changed:
            self._write_manifest()

    def _adopt(self, path: Path) -> CheckpointEntry | None:
        try:
            payload = load_checkpoint_file(path)
            meta = payload["meta"]
            entry = CheckpointEntry.from_dict({**meta, "file": path.name})
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            self._quarantine(path, str(e))
            return None
        data = path.read_bytes()
        entry.size, entry.sha256 = len(data), sha256_of(data)
        return entry

    @staticmethod
    def _quarantine(path: Path, reason: str) -> None:
        target = path.with_name(path.name + ".corrupt")
        logger.error("checkpoint %s is not usable (%s); renamed to %s", path, reason, target.name)
        path.replace(target)
