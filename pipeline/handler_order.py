"""Where a handler runs among the handlers of one Ignite event, for the few places whose order really matters, and
finding a handler object attached to an engine."""

from __future__ import annotations

from typing import Any, Callable

from ignite.engine import Engine

__all__ = ["attached_handler", "run_first", "run_last"]


def _move(engine: Engine, event: Any, handler: Callable, position: int) -> None:
    handlers = getattr(engine, "_event_handlers", {}).get(event)
    if not isinstance(handlers, list):
        return
    for index, entry in enumerate(handlers):
        if entry[0] == handler:
            entry = handlers.pop(index)
            handlers.insert(position if position >= 0 else len(handlers), entry)
            return


def run_first(engine: Engine, event: Any, handler: Callable) -> None:
    """Make ``handler``, already attached to ``event``, the first of that event's handlers (Ignite runs them in the
    order they were added; this reorders the engine's list of them)."""
    _move(engine, event, handler, 0)


def run_last(engine: Engine, event: Any, handler: Callable) -> None:
    """Make ``handler``, already attached to ``event``, the last of that event's handlers (so far)."""
    _move(engine, event, handler, -1)


def attached_handler(engine: Engine, event: Any, cls: type) -> Any:
    """The instance of ``cls`` one of whose methods is attached to ``engine``'s ``event`` (the first such), or None."""
    for entry in getattr(engine, "_event_handlers", {}).get(event, []):
        owner = getattr(entry[0], "__self__", None)
        if isinstance(owner, cls):
            return owner
    return None
