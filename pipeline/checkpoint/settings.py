"""One settings object for checkpointing, whoever drives it: the Ignite :class:`CheckpointHandler` and the original
API's :class:`CheckpointManager` both build their strategy, store and checkpointer from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.checkpoint.checkpointer import Checkpointer
from pipeline.checkpoint.storage import CheckpointStore
from pipeline.checkpoint.strategies import CheckpointStrategy, create_strategy

__all__ = ["CheckpointSettings", "STRATEGY_DEFAULT"]

#: ``max_checkpoints`` not given: the strategy's own default.
STRATEGY_DEFAULT: Any = object()


@dataclass
class CheckpointSettings:
    """How a training is checkpointed: which strategy decides, what a file holds, how it is written and what happens
    to an earlier run's files.

    Args:
        strategy: a strategy name (``best``, ``epoch``, ``interval``, ``all``, ``adaptive``, ``performance_based``,
            ``time_based``) or a built :class:`~pipeline.checkpoint.strategies.CheckpointStrategy`.
        model_name: file prefix.
        monitor: metric that scores checkpoints (None: the strategy's default, or the evaluator's key metric).
        mode: ``"max"`` or ``"min"`` (None: the strategy's default).
        max_checkpoints: retention of the strategy (None keeps all; :data:`STRATEGY_DEFAULT` the strategy's own).
        strategy_params: further parameters of the named strategy (e.g. ``{"every": 5}`` for ``interval``).
        save_last: write a ``last`` checkpoint at every epoch end the strategy skips.
        save_optimizer, save_scheduler: include optimizers and LR schedulers.
        disk_budget: optional limit in bytes on the total size of the checkpoints.
        fsync: fsync every write (leave on unless the run is disposable).
        existing: what a run started from scratch does with an earlier run's checkpoints: ``"error"``, ``"replace"``
            or ``"keep"``.
        async_save: copy the state on the training thread and write it on a background thread.
    """

    strategy: str | CheckpointStrategy = "best"
    model_name: str = "model"
    monitor: str | None = None
    mode: str | None = None
    max_checkpoints: Any = STRATEGY_DEFAULT
    strategy_params: dict[str, Any] = field(default_factory=dict)
    save_last: bool = True
    save_optimizer: bool = True
    save_scheduler: bool = True
    disk_budget: int | None = None
    fsync: bool = True
    existing: str = "error"
    async_save: bool = False

    def resolved(self) -> "CheckpointSettings":
        """These settings with the strategy built (``monitor``, ``mode``, ``max_checkpoints`` and ``strategy_params``
        then live in it), so that two users of the settings share one strategy object.

        Raises:
            SettingsError: unknown strategy or parameter (the valid ones are listed).
        """
        if isinstance(self.strategy, CheckpointStrategy) and not self.strategy_params and self.monitor is None \
                and self.mode is None and self.max_checkpoints is STRATEGY_DEFAULT:
            return self
        params = dict(self.strategy_params)
        for key, value, unset in (("monitor", self.monitor, None), ("mode", self.mode, None),
                                  ("max_checkpoints", self.max_checkpoints, STRATEGY_DEFAULT)):
            if value is not unset:
                params[key] = value
        strategy = create_strategy(self.strategy, **params)
        return dataclasses.replace(self, strategy=strategy, monitor=None, mode=None, max_checkpoints=STRATEGY_DEFAULT,
                                   strategy_params={})

    def checkpointer(self, directory: str | Path, writer: bool = True) -> Checkpointer:
        """The checkpointer of ``directory`` with these settings (their strategy must be built: :meth:`resolved`).

        Args:
            directory: the checkpoint folder.
            writer: whether this process writes (under ``torch.distributed`` only rank 0 sweeps the folder, writes,
                and saves in the background).
        """
        if not isinstance(self.strategy, CheckpointStrategy):
            raise TypeError("CheckpointSettings.checkpointer needs resolved settings (call resolved() first)")
        store = CheckpointStore(directory, self.model_name, self.fsync, recover=writer)
        return Checkpointer(store, self.strategy, self.save_last, self.disk_budget, self.existing, self.async_save and writer)
