"""A clean process exit after collectives of ``torch.distributed`` (gloo).

A gloo process group runs each collective on a worker thread, and that thread releases the collective's tensors
after the caller has already got the result; releasing a tensor made in Python takes the GIL. The process group
lives as long as something holds it: a ``DistributedDataParallel`` network held by the trainer's handlers (a
reference cycle) keeps it past ``destroy_process_group`` (``ignite.distributed.Parallel``'s exit) until the
interpreter's final garbage collection. A worker still releasing the run's last collective (the checkpoint handler's
broadcast, the epoch loss's all-reduce) when the interpreter starts finalizing is ended while it asks for the GIL,
inside a C++ destructor: ``terminate called without an active exception`` and SIGABRT (most often on a busy machine,
where the worker gets a CPU late).

:func:`release_process_groups_at_exit` makes the interpreter collect that garbage at exit, *before* it starts
finalizing: the process group's destructor then waits for its workers, which can still take the GIL, and joins them.
"""

from __future__ import annotations

import atexit
import gc
import time

__all__ = ["release_process_groups_at_exit"]

_registered = False


#: how long the exit hook lets a worker that waits for the GIL have it before collecting (seconds)
_YIELD_S = 0.05


def _collect() -> None:
    # A worker still waiting for the GIL gets it while this thread sleeps; the collection below may then destroy the
    # process group from a C++ destructor that holds the GIL and waits for the workers.
    time.sleep(_YIELD_S)
    gc.collect()


def release_process_groups_at_exit() -> None:
    """Collect the garbage cycles at interpreter exit (before finalization), so a destroyed process group still held
    by them is freed and its worker threads joined while they can finish. Call it wherever a collective runs; it
    registers the exit hook once per process."""
    global _registered
    if not _registered:
        atexit.register(_collect)
        _registered = True
