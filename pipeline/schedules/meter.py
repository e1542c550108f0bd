"""The epoch's mean loss of each term of a CombinedLoss, gathered from its training forward calls."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Mapping

import ignite.distributed as idist
import torch

from pipeline.collective_exit import release_process_groups_at_exit
from pipeline.losses.combined import CombinedLoss, component_key

__all__ = ["TermLossMeter"]


class TermLossMeter:
    """Average every term of ``loss`` over the forward calls made with gradients enabled.

    A forward hook on the loss adds the detached term values (tensors on the loss's device: no wait for a GPU per
    iteration; summed in float64, so bf16/fp16 terms keep their precision) after each training call; calls under
    ``torch.no_grad()`` / ``inference_mode`` (validation) are not counted. So the meter sees every training forward whoever makes it: an Ignite trainer, MONAI's
    ``SupervisedTrainer`` or a hand-written loop, including several forwards per iteration (gradient accumulation).
    Under ``ignite.distributed`` the sums are all-reduced, so every process gets the same means. The hook holds the
    meter weakly: a meter that is closed or no longer referenced stops counting and removes its hook.

    Args:
        loss: the loss to follow.
    """

    def __init__(self, loss: CombinedLoss) -> None:
        self.loss = loss
        self.terms = list(loss.weights)
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._hook = loss.register_forward_hook(_weak_hook(self))
        weakref.finalize(self, self._hook.remove)

    def _record(self) -> None:
        if not torch.is_grad_enabled():
            return
        for name in self.terms:
            value = self.loss.last_component_tensors.get(component_key(name))
            if value is not None:
                self._sums[name] = self._sums.get(name, 0.0) + value.to(torch.float64)
                self._counts[name] = self._counts.get(name, 0) + 1

    def reset(self) -> None:
        """Start a new epoch."""
        self._sums, self._counts = {}, {}

    def means(self) -> dict[str, float]:
        """term name -> mean value over the recorded calls (terms never computed are left out)."""
        sums = torch.tensor([float(self._sums.get(t, 0.0)) for t in self.terms], dtype=torch.float64)
        counts = torch.tensor([self._counts.get(t, 0) for t in self.terms], dtype=torch.float64)
        if idist.get_world_size() > 1:
            release_process_groups_at_exit()
            sums, counts = idist.all_reduce(sums), idist.all_reduce(counts)
        return {t: float(s / c) for t, s, c in zip(self.terms, sums, counts) if c > 0}

    def close(self) -> None:
        """Stop following the loss."""
        self._hook.remove()

    def state_dict(self) -> dict[str, Any]:
        """The sums and counts of the epoch so far (plain numbers: a mid-epoch checkpoint keeps them)."""
        return {"sums": {t: float(v) for t, v in self._sums.items()}, "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the partial sums. Under ``ignite.distributed`` only process 0 takes them (the others start the
        epoch's rest from 0), so the all-reduce does not count them once per process; the other processes' own
        partial sums are not in the state, so a mid-epoch resume of several processes is approximate."""
        if idist.get_rank() > 0:
            self.reset()
            return
        self._sums = {t: float(v) for t, v in state.get("sums", {}).items()}
        self._counts = {t: int(v) for t, v in state.get("counts", {}).items()}


def _weak_hook(meter: TermLossMeter) -> Callable:
    reference = weakref.ref(meter)

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        alive = reference()
        if alive is not None:
            alive._record()

    return hook

