"""The original API's front doors, ``CheckpointManager`` and ``AutoCheckpointManager``, for hand-written training loops.

They use the same three layers as :class:`~pipeline.checkpoint.checkpoint_handler.CheckpointHandler` (strategy, store,
checkpointer); only the source of events differs: a call of :meth:`CheckpointManager.save_checkpoint` per epoch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch

from pipeline.checkpoint.checkpointer import RESUME_CHOICES
from pipeline.checkpoint.settings import STRATEGY_DEFAULT, CheckpointSettings
from pipeline.checkpoint.storage.manifest import CheckpointEntry
from pipeline.checkpoint.state.rng import RNGState
from pipeline.checkpoint.storage.checkpoint_store import CheckpointStore
from pipeline.checkpoint.strategies import CheckpointEvent
from pipeline.errors import CheckpointError, SettingsError

__all__ = ["CheckpointManager", "AutoCheckpointManager", "AUTO_STRATEGIES", "STRATEGY_DEFAULT"]

AUTO_STRATEGIES = ("adaptive", "performance_based", "time_based")


class CheckpointManager:
    """Save and load checkpoints from a hand-written loop, by strategy (the original API).

    Example::

        manager = CheckpointManager("./checkpoints", "my_model", save_strategy="best", max_checkpoints=3,
                                    monitor_metric="val_dice", mode="max")
        for epoch in range(1, epochs + 1):
            ...
            path = manager.save_checkpoint(model, optimizer, scheduler, epoch, {"val_dice": dice, "loss": loss})
        manager.load_checkpoint(manager.get_best_checkpoint_path(), model)

    ``save_checkpoint`` returns the path written, or None. With ``save_last=True`` (default) an epoch the strategy
    skips is still written as the ``last`` checkpoint (and the previous ``last`` file is removed), so a crash never
    costs more than the current epoch.

    Args:
        checkpoint_dir: folder of the checkpoints and the manifest.
        model_name: file prefix.
        save_strategy: ``best``, ``epoch``, ``interval``, ``all``, ``adaptive``, ``performance_based``, ``time_based``.
        max_checkpoints: retention of the strategy (None keeps all; ``STRATEGY_DEFAULT`` the strategy's own default).
        monitor_metric: metric of ``metrics`` that scores checkpoints; mode: ``"max"`` or ``"min"``.
        save_optimizer, save_scheduler: include those states.
        save_last: see above; disk_budget: total bytes allowed (optional); fsync: fsync every write.
        existing: at the first save, when nothing was loaded and the folder holds an earlier run's checkpoints:
            ``"error"`` (default) refuses, ``"replace"`` removes them once the first new checkpoint is durable,
            ``"keep"`` keeps them under retention.
        async_save: write on a background thread (the call returns once the state is copied; ``save_checkpoint``
            then returns None, and a failed write is raised at the next save or :meth:`flush`).
        strategy_params: further strategy parameters (e.g. ``every=5`` for ``interval``).

    Every checkpoint also holds the random generators of this process (torch, CUDA, numpy, Python) under ``"rng"``;
    :meth:`load_checkpoint` restores them (``restore_rng=False`` to leave them), so a resumed loop draws the same
    random numbers as the uninterrupted one.
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        model_name: str = "model",
        save_strategy: str = "best",
        max_checkpoints: int | None = 5,
        monitor_metric: str | None = "val_dice",
        mode: str = "max",
        save_optimizer: bool = True,
        save_scheduler: bool = True,
        save_last: bool = True,
        disk_budget: int | None = None,
        fsync: bool = True,
        existing: str = "error",
        async_save: bool = False,
        **strategy_params: Any,
    ) -> None:
        #: the settings, shared with a :class:`~pipeline.checkpoint.CheckpointHandler` built from them
        self.settings = CheckpointSettings(
            strategy=save_strategy, model_name=model_name, monitor=monitor_metric, mode=mode,
            max_checkpoints=max_checkpoints, strategy_params=strategy_params, save_last=save_last,
            save_optimizer=save_optimizer, save_scheduler=save_scheduler, disk_budget=disk_budget, fsync=fsync,
            existing=existing, async_save=async_save,
        ).resolved()
        self.strategy = self.settings.strategy
        if self.strategy.needs_monitor and monitor_metric is None:
            raise SettingsError(f"checkpoint strategy {save_strategy!r} needs monitor_metric")
        self.checkpointer = self.settings.checkpointer(checkpoint_dir)
        self.save_optimizer = save_optimizer
        self.save_scheduler = save_scheduler
        self.monitor_metric = monitor_metric
        self.mode = mode
        self._elapsed = 0.0
        self._last_call = time.perf_counter()  # the clock runs from here, between calls, and across a resume
        self._begun = False

    @property
    def store(self) -> CheckpointStore:
        return self.checkpointer.store

    @property
    def save_strategy(self) -> str:
        return self.strategy.name

    def _tick(self) -> float:
        now = time.perf_counter()
        self._elapsed += now - self._last_call
        self._last_call = now
        return self._elapsed

    def save_checkpoint(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        epoch: int = 0,
        metrics: Mapping[str, Any] | None = None,
        iteration: int | None = None,
        max_epochs: int | None = None,
        extra_state: Mapping[str, Any] | None = None,
    ) -> Path | None:
        """Offer the state after ``epoch`` to the strategy; returns the path written or None.

        ``metrics`` are taken as fresh at this epoch (the monitored one must be among them for the metric-driven
        strategies). The training clock for ``time_based`` runs between calls. ``extra_state`` adds further objects'
        states (tensors and plain data only).
        """
        if not self._begun:
            self.checkpointer.begin()
            self._begun = True
        event = CheckpointEvent(
            epoch=int(epoch),
            iteration=int(epoch if iteration is None else iteration),
            metrics=None if metrics is None else dict(metrics),
            elapsed=self._tick(),
            max_epochs=max_epochs,
        )

        def make_state() -> dict[str, Any]:
            state: dict[str, Any] = {"model": model.state_dict(), "epoch": int(epoch)}
            if optimizer is not None and self.save_optimizer:
                state["optimizer"] = optimizer.state_dict()
            if scheduler is not None and self.save_scheduler:
                state["scheduler"] = scheduler.state_dict()
            state.update(extra_state or {})
            state["rng"] = RNGState().state_dict()
            state["checkpointer"] = self.state_dict()
            return state

        entry = self.checkpointer.step(event, make_state)
        return None if entry is None else self.store.path(entry)

    def load_checkpoint(
        self,
        checkpoint_path: str | Path | None = None,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        map_location: Any = "cpu",
        restore_rng: bool = True,
    ) -> dict[str, Any]:
        """Load a checkpoint (a path, or ``"best"``/``"last"``/``"auto"``/None = auto) into the objects given, and
        the random generators saved with it (unless ``restore_rng=False``).

        Returns:
            ``{"path", "epoch", "iteration", "metrics", "reasons", "state"}`` of the checkpoint loaded (``state``: every
            saved state, e.g. ``extra_state`` given to :meth:`save_checkpoint`).

        Raises:
            CheckpointError: no checkpoint, a damaged or unsafe file, or a state the objects need is missing.
        """
        which = "auto" if checkpoint_path is None else checkpoint_path
        if isinstance(which, str) and which in RESUME_CHOICES:
            entry = self.checkpointer.resolve(which)
            if entry is None:
                raise CheckpointError(f"no checkpoint in {self.store.directory}")
            path = self.store.path(entry)
        else:
            path = Path(which)
            if not path.is_file():
                raise CheckpointError(f"checkpoint_path must be one of {list(RESUME_CHOICES)} or a checkpoint file, got {str(which)!r}")
        payload = self.store.load(path, map_location)
        state, meta = payload.get("state", {}), payload.get("meta", {})
        for name, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
            if obj is None:
                continue
            if name not in state:
                raise CheckpointError(f"checkpoint {path} has no {name} state (it holds {sorted(state)})")
            obj.load_state_dict(state[name])
        if "checkpointer" in state:
            self.load_state_dict(state["checkpointer"])
        if restore_rng and "rng" in state:
            RNGState().load_state_dict(state["rng"])
        self._begun = True  # continuing the loaded run
        return {
            "path": path,
            "epoch": meta.get("epoch", state.get("epoch")),
            "iteration": meta.get("iteration"),
            "metrics": meta.get("metrics", {}),
            "reasons": meta.get("reasons", []),
            "state": state,
        }

    def flush(self) -> None:
        """Wait for a background write in flight (``async_save``) and raise its error, if any."""
        self.checkpointer.flush()

    def list_checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint on disk, oldest first, as dicts with ``path`` and the manifest's fields."""
        return [{"path": self.store.path(e), **e.to_dict()} for e in self.store.entries]

    def get_best_checkpoint_path(self) -> Path | None:
        entry = self.checkpointer.best_entry
        return None if entry is None else self.store.path(entry)

    def get_latest_checkpoint_path(self) -> Path | None:
        entry = self.store.newest()
        return None if entry is None else self.store.path(entry)

    def get_checkpoint_summary(self) -> dict[str, Any]:
        """Strategy, counts, size, best metric and the checkpoints, for logs and the training summary."""
        best: CheckpointEntry | None = self.checkpointer.best_entry
        return {
            "strategy": self.strategy.name,
            "monitor_metric": self.monitor_metric,
            "mode": self.mode,
            "total_checkpoints": len(self.store.entries),
            "total_size_bytes": self.store.total_size(),
            "best_metric": None if best is None else best.score,
            "best_epoch": None if best is None else best.epoch,
            "best_checkpoint": None if best is None else str(self.store.path(best)),
            "latest_checkpoint": None if self.get_latest_checkpoint_path() is None else str(self.get_latest_checkpoint_path()),
            "checkpoints": [e.to_dict() for e in self.store.entries],
        }

    summary = get_checkpoint_summary

    def state_dict(self) -> dict[str, Any]:
        return {**self.checkpointer.state_dict(), "elapsed": self._elapsed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.checkpointer.load_state_dict(state)
        self._elapsed = float(state.get("elapsed", 0.0))
        self._last_call = time.perf_counter()


class AutoCheckpointManager(CheckpointManager):
    """:class:`CheckpointManager` with one of the automatic strategies: ``adaptive``, ``performance_based`` or
    ``time_based`` (the original API's ``AutoCheckpointManager``)."""

    def __init__(
        self, checkpoint_dir: str | Path, model_name: str = "model", auto_strategy: str = "adaptive", **kwargs: Any
    ) -> None:
        if auto_strategy not in AUTO_STRATEGIES:
            raise SettingsError(f"unknown auto_strategy {auto_strategy!r}; valid: {list(AUTO_STRATEGIES)}")
        if "save_strategy" in kwargs:
            raise SettingsError("AutoCheckpointManager takes auto_strategy, not save_strategy")
        kwargs.setdefault("max_checkpoints", STRATEGY_DEFAULT)
        super().__init__(checkpoint_dir, model_name, save_strategy=auto_strategy, **kwargs)
        self.auto_strategy = auto_strategy
