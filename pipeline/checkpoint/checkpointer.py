"""The engine-free core shared by the Ignite handler and the original API's managers: strategy -> store -> retention."""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from typing import Any, Callable, Mapping

from pipeline.checkpoint.storage.manifest import CheckpointEntry
from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore
from pipeline.checkpoint.strategies import CheckpointEvent, CheckpointStrategy, newest
from pipeline.checkpoint.storage.background_writer import BackgroundWriter, snapshot
from pipeline.errors import CheckpointError, SettingsError

__all__ = ["Checkpointer", "PROTECTED_REASONS", "EXISTING_POLICIES", "RESUME_CHOICES"]

logger = logging.getLogger(__name__)

#: checkpoints with one of these reasons are never evicted by retention (``exception``: only the newest one is kept).
PROTECTED_REASONS = ("final",)
#: the named checkpoints a run can resume from (or a path).
RESUME_CHOICES = ("auto", "best", "last")
#: what a run that starts from scratch does with checkpoints an earlier run left in the folder.
EXISTING_POLICIES = ("error", "replace", "keep")


def _only_exception(reasons) -> bool:
    return set(reasons) == {"exception"}


class Checkpointer:
    """Decide, write and retain checkpoints.

    At each event the strategy decides; when it does not save and ``save_last`` is on, an epoch-end event still
    writes a ``last`` checkpoint, so there is always one from the newest epoch to resume from (one file per epoch at
    most: when the strategy saves, that file is the newest). After a save is durable, retention evicts what no reason
    keeps any more:

    - the strategy keeps what it wants among the files saved for its reasons (:meth:`CheckpointStrategy.retain`);
    - the newest checkpoint a run can resume from (any but an ``exception``-only one) and the best-scored one (the
      highest or lowest recorded ``monitor`` value, whatever ``min_delta`` says) are always kept;
    - ``final`` checkpoints are always kept, and the newest ``exception`` checkpoint;
    - with ``disk_budget`` (bytes), the oldest files no rule above protects go until the total fits.

    If a write fails the strategy's state is rolled back, so the decision is taken again at the next event.

    :attr:`history` lists every save with its reasons and what retention evicted after it; it is part of
    :meth:`state_dict`, so a resumed run's history continues.

    Args:
        store: where the files go.
        strategy: the decision object.
        save_last: write a ``last`` checkpoint at epoch ends the strategy does not save.
        disk_budget: optional limit on the total bytes of checkpoints.
        existing: what :meth:`begin` does with an earlier run's checkpoints (``"error"``, ``"replace"``, ``"keep"``).
        async_save: write on a background thread
            (:class:`~pipeline.checkpoint.storage.background_writer.BackgroundWriter`): a save blocks training only
            while the state is copied; at most one write is in flight; eviction follows only a
            durable write; a failed write is raised at the next save or :meth:`flush`.
    """

    def __init__(
        self,
        store: CheckpointStore,
        strategy: CheckpointStrategy,
        save_last: bool = True,
        disk_budget: int | None = None,
        existing: str = "error",
        async_save: bool = False,
    ) -> None:
        if existing not in EXISTING_POLICIES:
            raise SettingsError(f"existing must be one of {list(EXISTING_POLICIES)}, got {existing!r}")
        if disk_budget is not None and (isinstance(disk_budget, bool) or not isinstance(disk_budget, int) or disk_budget <= 0):
            raise SettingsError(f"disk_budget must be a number of bytes > 0 or None, got {disk_budget!r}")
        self.store = store
        self.strategy = strategy
        self.save_last = save_last
        self.disk_budget = disk_budget
        self.existing = existing
        self.history: list[dict[str, Any]] = []
        self._stale: list[str] = []
        self._before: dict[str, Any] | None = None
        self.writer = BackgroundWriter() if async_save else None
        self._in_flight: tuple[dict[str, Any], dict[str, Any] | None] | None = None  # (record, strategy state before)
        #: the newest checkpoint written (with ``async_save``: once its write completed)
        self.last_saved: CheckpointEntry | None = None

    def begin(self) -> None:
        """Start a run from scratch in a folder that may hold an earlier run's checkpoints, by :attr:`existing`:
        ``"error"`` refuses (resume from them instead, or choose another policy); ``"replace"`` removes them once this
        run's first checkpoint is durable (so a crash before that still leaves them); ``"keep"`` leaves them under
        retention like this run's own. A folder that holds only ``exception`` checkpoints (a run that failed before
        its first checkpoint, which ``resume='auto'`` does not use) is not refused: they are replaced (or kept).

        Raises:
            SettingsError: ``existing="error"`` and the folder holds checkpoints a run can resume from.
        """
        entries = self.store.entries
        if not entries or self.existing == "keep":
            return
        resumable = [e for e in entries if not _only_exception(e.reasons)]
        if resumable and self.existing == "error":
            raise SettingsError(
                f"{self.store.directory} already holds {len(resumable)} checkpoint(s) of {self.store.model_name!r} "
                "from an earlier run: resume from them (resume='auto'), or pass existing='replace' to replace them once "
                "this run's first checkpoint is saved, or existing='keep'"
            )
        if not resumable:
            logger.warning(
                "%s holds only the exception checkpoint(s) %s of a run that failed before its first checkpoint; they "
                "are replaced once this run's first checkpoint is saved (resume from one by its path to continue it)",
                self.store.directory,
                [e.file for e in entries],
            )
        self._stale = [e.file for e in entries]

    @property
    def best_entry(self) -> CheckpointEntry | None:
        """The kept checkpoint with the best monitored score (None without scores)."""
        return self.store.best(self.strategy.mode)

    def step(self, event: CheckpointEvent, make_state: Callable[[], Mapping[str, Any]], extra_reasons: tuple[str, ...] = ()) -> CheckpointEntry | None:
        """Ask the strategy about ``event`` and save ``make_state()`` if it (or ``save_last``) says so
        (:meth:`decide`, then :meth:`save`).

        Args:
            event: the training position and the metrics that came with it.
            make_state: builds the state to save; called only when saving, after the strategy decided (so the saved
                strategy state already includes this decision).
            extra_reasons: reasons to save regardless of the strategy (e.g. ``("exception",)``).

        Returns:
            the new entry (with ``async_save``: None, the entry appears in the store once written), or None when
            nothing was saved.
        """
        reasons = self.decide(event, extra_reasons)
        return self.save(event, reasons, make_state) if reasons else None

    def decide(self, event: CheckpointEvent, extra_reasons: tuple[str, ...] = ()) -> list[str]:
        """The reasons to save at ``event`` (empty: no save). The strategy's state moves on; :meth:`save` rolls it back
        if the write fails. A background write in flight goes on meanwhile (deciding touches the strategy only)."""
        self._before = copy.deepcopy(self.strategy.state_dict())
        reasons = list(extra_reasons)
        # an epoch end is also the end of its last iteration: strategies that work per iteration are asked here
        # (the handler skips that iteration), so the state saved includes the epoch-end handlers' work
        levels = ("iteration", "epoch") if event.level == "epoch" else (event.level,)
        for level in levels:
            if level in self.strategy.levels:
                reasons += self.strategy.decide(replace(event, level=level)).reasons
        if not reasons and self.save_last and event.level == "epoch":
            reasons = ["last"]
        return sorted(set(reasons))

    def save(self, event: CheckpointEvent, reasons: list[str], make_state: Callable[[], Mapping[str, Any]]) -> CheckpointEntry | None:
        """Write ``make_state()`` for ``reasons`` at ``event`` (:meth:`prepare`, then :meth:`write`)."""
        record = self.prepare(event, reasons)
        try:
            state = make_state()
        except BaseException:
            self.rollback(record)
            raise
        return self.write(event, record, state)

    def prepare(self, event: CheckpointEvent, reasons: list[str]) -> dict[str, Any]:
        """Record the save about to happen in :attr:`history` (before the state is built, so the checkpoint's own
        history includes it; its evictions, known once it is durable, appear in the next checkpoint's copy)."""
        self.flush()
        record: dict[str, Any] = {
            "epoch": event.epoch,
            "iteration": event.iteration,
            "file": self.store.file_name(event.epoch, event.iteration, reasons),
            "reasons": sorted(set(reasons)),
            "evicted": [],
        }
        self.history.append(record)
        self.store.monitor, self.store.mode = self.strategy.monitor, self.strategy.mode
        return record

    def write(self, event: CheckpointEvent, record: dict[str, Any], state: Mapping[str, Any]) -> CheckpointEntry | None:
        """Write ``state`` as the save :meth:`prepare` recorded, then evict what retention no longer keeps. A failed
        write rolls the strategy and the history back, so the decision is taken again at the next event.

        With ``async_save`` the state is copied (:func:`~pipeline.checkpoint.storage.background_writer.snapshot`) and
        written by the background writer; None is returned. (:meth:`prepare` already waited for the write in flight and raised its
        error.)

        Raises:
            CheckpointError: the write failed (synchronously).
        """
        try:
            score = self.strategy.score(event)
            if self.writer is not None:
                state = snapshot(state)
            # retention after this save follows this save's decision: with a background write the training thread's
            # next decision changes the strategy meanwhile, so the write takes a copy of it, made here
            policy = copy.deepcopy(self.strategy) if self.writer is not None else self.strategy
        except BaseException:
            self.rollback(record)
            raise
        stale: list[str] = []
        if not _only_exception(record["reasons"]):  # a crash before a real checkpoint leaves the earlier run's files
            stale, self._stale = self._stale, []

        def write() -> CheckpointEntry:
            try:
                entry = self.store.save(state, event.epoch, event.iteration, record["reasons"], event.metrics, score)
            except BaseException:
                self._stale = stale + self._stale  # still to go once a checkpoint is durable
                if self.writer is None:
                    self.rollback(record)
                raise  # in the background: rolled back on the training thread, in flush()
            record["evicted"] = self.store.evict(stale) + self.retain(policy)
            self.last_saved = entry
            return entry

        if self.writer is None:
            return write()
        self._in_flight = (record, self._before)
        self.writer.submit(write)
        return None

    def rollback(self, record: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> None:
        """Undo the decision (back to ``before``, by default the state before the latest decision) and the history
        record of a save that failed."""
        before = self._before if before is None else before
        if before is not None:
            self.strategy.load_state_dict(before)
        self.history = [h for h in self.history if h is not record]

    def flush(self) -> None:
        """Wait for the background write in flight, if any, and raise its error (after rolling its decision back)."""
        if self.writer is None:
            return
        in_flight, self._in_flight = self._in_flight, None
        try:
            self.writer.wait()
        except BaseException:
            if in_flight is not None:
                self.rollback(*in_flight)
            raise

    def evictions(self, strategy: CheckpointStrategy | None = None) -> list[str]:
        """The files retention would remove now (pure: nothing is touched), by ``strategy`` (default: the current
        one; a background write passes the copy taken with its decision)."""
        strategy = self.strategy if strategy is None else strategy
        entries = self.store.entries
        if not entries:
            return []
        kept_view = [e.kept() for e in entries]
        mine = [c for c in kept_view if set(c.reasons) & set(strategy.reasons)]
        keep = set(strategy.retain(mine))
        # never evicted: the newest checkpoint to resume from, the best one, final ones, the newest exception one
        protected = {c.key for c in newest([c for c in kept_view if not _only_exception(c.reasons)], 1)}
        best = self.store.best(strategy.mode)
        if best is not None:
            protected.add(best.file)
        keep |= protected
        keep |= {c.key for c in kept_view if set(c.reasons) & set(PROTECTED_REASONS)}
        keep |= {c.key for c in newest([c for c in kept_view if "exception" in c.reasons], 1)}
        evict = [e.file for e in entries if e.file not in keep]
        if self.disk_budget is not None:
            total = sum(e.size for e in entries if e.file in keep)
            for entry in entries:  # oldest first
                if total <= self.disk_budget:
                    break
                if entry.file in keep and entry.file not in protected and not set(entry.reasons) & set(PROTECTED_REASONS):
                    keep.discard(entry.file)
                    evict.append(entry.file)
                    total -= entry.size
            if total > self.disk_budget:
                logger.warning(
                    "checkpoints take %d bytes, over the disk budget of %d, but the rest are protected (newest, best, final)",
                    total,
                    self.disk_budget,
                )
        return evict

    def retain(self, strategy: CheckpointStrategy | None = None) -> list[str]:
        """Evict what :meth:`evictions` names; returns the files removed."""
        gone = self.store.evict(self.evictions(strategy))
        if gone:
            logger.debug("evicted checkpoints %s", gone)
        return gone

    def state_dict(self) -> dict[str, Any]:
        """The strategy's state and the save history (plain data: loads with ``weights_only=True``)."""
        return {"strategy": self.strategy.state_dict(), "history": copy.deepcopy(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.strategy.load_state_dict(state.get("strategy", {}))
        self.history = copy.deepcopy(list(state.get("history", [])))

    def mark(self, entry: CheckpointEntry, *reasons: str) -> None:
        """Add reasons to a saved checkpoint (e.g. ``final`` on the checkpoint of the last epoch)."""
        self.flush()
        self.store.add_reasons(entry, reasons)

    def resolve(self, which: str = "auto") -> CheckpointEntry | None:
        """The checkpoint to resume from: ``"auto"`` the newest one saved at a clean boundary that verifies (an
        ``exception`` checkpoint is only used when named), ``"best"`` the best-scored, ``"last"`` the newest.

        Returns:
            the entry, or None when the store is empty (for ``"auto"``).

        Raises:
            CheckpointError: ``"best"``/``"last"`` asked of an empty store or every candidate fails verification.
        """
        self.flush()
        if which == "auto":
            candidates = [e for e in self.store.entries if not _only_exception(e.reasons)]
            for entry in sorted(candidates, key=lambda e: (e.seq, e.iteration, e.epoch), reverse=True):
                try:
                    self.store.verify(entry)
                    return entry
                except CheckpointError as err:
                    logger.error("skipping checkpoint that fails verification: %s", err)
            if candidates:
                raise CheckpointError(f"no checkpoint in {self.store.directory} passes verification")
            return None
        if which not in RESUME_CHOICES:
            raise SettingsError(f"resume must be one of {list(RESUME_CHOICES)} or a checkpoint path, got {which!r}")
        entry = {"best": self.best_entry, "last": self.store.newest()}.get(which)
        if entry is None:
            raise CheckpointError(f"no {which!r} checkpoint in {self.store.directory}")
        return entry
