"""Background saving: copy the training state on the training thread, write it on a worker thread."""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any, Callable

import torch

__all__ = ["BackgroundWriter", "snapshot"]

logger = logging.getLogger(__name__)


def snapshot(state: Any) -> Any:
    """A copy of ``state`` that training can no longer change: every tensor is copied to CPU memory (model weights and
    optimizer moments are updated in place by the next step), containers are rebuilt, other values are shared
    (numbers and strings cannot change)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        copied = copy.copy(state)  # keeps the type and attributes (a module's state_dict carries ``_metadata``)
        for key, value in state.items():
            copied[key] = snapshot(value)
        return copied
    if isinstance(state, list):
        return [snapshot(v) for v in state]
    if isinstance(state, tuple):
        items = [snapshot(v) for v in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


class BackgroundWriter:
    """Run one write at a time on a worker thread.

    :meth:`submit` first waits for the write in flight (so at most one is in flight and writes land in order), raises
    its error if it failed, then starts the new one and returns at once. :meth:`wait` waits for the write in flight and
    raises its error. An error is raised once, at the first :meth:`submit` or :meth:`wait` after it happened.
    """

    def __init__(self, name: str = "checkpoint-writer") -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()

        def run() -> None:
            try:
                job()
            except BaseException as e:  # kept for the training thread: a worker cannot raise into it
                logger.error("background checkpoint write failed: %s", e)
                self._error = e

        self._thread = threading.Thread(target=run, name=self.name, daemon=False)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error
