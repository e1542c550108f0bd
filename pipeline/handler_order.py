"""Reordering Ignite's handler lists: the one place that touches an engine's ``_event_handlers``.

Ignite runs an event's handlers in the order they were added. A few handlers must see an event before or after all
others (a checkpoint after every handler that changes the state it saves; a loss-weight schedule's new weights before
any handler of the epoch reads them); they move themselves with :func:`run_first` / :func:`run_last`. Use them only
where the order is part of the result.
"""

from __future__ import annotations

from typing import Any, Callable

from ignite.engine import Engine

__all__ = ["attached_handler", "run_first", "run_last"]


def _handlers(engine: Engine, event: Any) -> list:
    handlers = getattr(engine, "_event_handlers", {}).get(event)
    return handlers if isinstance(handlers, list) else []


def _move(engine: Engine, event: Any, handler: Callable, position: int) -> None:
    handlers = _handlers(engine, event)
    for index, entry in enumerate(handlers):
        if entry[0] == handler:
            entry = handlers.pop(index)
            handlers.insert(position if position >= 0 else len(handlers), entry)
            return


def run_first(engine: Engine, event: Any, handler: Callable) -> None:
    """Make ``handler``, already attached to ``event``, the first of that event's handlers."""
    _move(engine, event, handler, 0)


def run_last(engine: Engine, event: Any, handler: Callable) -> None:
    """Make ``handler``, already attached to ``event``, the last of that event's handlers (so far)."""
    _move(engine, event, handler, -1)


def attached_handler(engine: Engine, event: Any, cls: type) -> Any:
    """The instance of ``cls`` one of whose methods is attached to ``engine``'s ``event`` (the first such), or None."""
    for entry in _handlers(engine, event):
        owner = getattr(entry[0], "__self__", None)
        if isinstance(owner, cls):
            return owner
    return None
