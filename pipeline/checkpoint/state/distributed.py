"""Checkpointing under ``torch.distributed`` (DDP): rank 0 decides and writes, the others follow.

Every helper is a no-op in a single process, so the handler runs the same code with or without ``torchrun``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping

import ignite.distributed as idist
import torch.distributed as dist

from pipeline.collective_exit import release_process_groups_at_exit
from pipeline.errors import CheckpointError

__all__ = ["PerRank", "agree", "is_writer", "world_size"]

logger = logging.getLogger(__name__)


def world_size() -> int:
    return idist.get_world_size()


def is_writer() -> bool:
    """True in the process that writes checkpoints (rank 0, or the only process)."""
    return idist.get_rank() == 0


def agree(decide: Callable[[], Any]) -> Any:
    """Run ``decide`` on rank 0 only and return its (JSON-able) result on every rank.

    An exception on rank 0 is re-raised there and raised as :class:`CheckpointError` on the other ranks, so no rank is
    left waiting for a collective the others never enter.
    """
    if world_size() == 1:
        return decide()
    message: str | None = None
    error: BaseException | None = None
    if is_writer():
        try:
            message = json.dumps({"value": decide()})
        except BaseException as e:
            error = e
            message = json.dumps({"error": f"{type(e).__name__}: {e}"})
    release_process_groups_at_exit()
    message = idist.broadcast(message, src=0, safe_mode=True)
    if error is not None:
        raise error
    payload = json.loads(message)
    if "error" in payload:
        raise CheckpointError(f"rank 0 failed while checkpointing: {payload['error']}")
    return payload["value"]


class PerRank:
    """The state of an object that differs from process to process (random generators, a loader's generator), saved
    for every rank.

    ``state_dict()`` gathers every rank's state (a collective: all ranks must call it together) as
    ``{"ranks": [state of rank 0, state of rank 1, ...]}``; ``load_state_dict()`` gives each rank its own. When the
    world size changed since the save, rank ``r`` takes the state of rank ``r mod n`` and continuation is no longer
    exact (a warning says so).

    Args:
        obj: an object with ``state_dict()`` / ``load_state_dict()`` whose state is local to this process.
        gather: False for a state of this process only (a save that only rank 0 makes, e.g. on an exception).
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.gather = True

    def state_dict(self) -> dict[str, Any]:
        local = self.obj.state_dict()
        if world_size() == 1 or not self.gather:
            return {"ranks": [local]}
        release_process_groups_at_exit()
        gathered: list[Any] = [None] * world_size()
        dist.all_gather_object(gathered, local)
        return {"ranks": gathered}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        ranks = list(state.get("ranks", []))
        if not ranks:
            raise CheckpointError("per-rank state without any rank")
        rank, size = idist.get_rank(), world_size()
        if len(ranks) != size:
            logger.warning(
                "checkpoint saved by %d process(es), resumed by %d: %s continues from rank %d's state, not exactly",
                len(ranks),
                size,
                type(self.obj).__name__,
                rank % len(ranks),
            )
        self.obj.load_state_dict(ranks[rank % len(ranks)])
