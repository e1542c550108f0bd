"""The random state a DataLoader carries from one epoch to the next, so a resumed training shuffles and augments as
the uninterrupted one would.

Three things are not in the global generators: the loader's own shuffling generator (``DataLoader(generator=...)``,
also used by its ``RandomSampler``), a ``DistributedSampler``'s epoch, and the ``R`` generator of each MONAI random
transform of its dataset (with ``num_workers=0`` MONAI seeds them once, when the loader is built, and they advance
from epoch to epoch in this process; with workers they are re-seeded from the loader's generator every epoch).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from pipeline.checkpoint.state.rng import RNGState, generator_state, load_generator_state, load_numpy_state, numpy_state
from pipeline.errors import CheckpointError

__all__ = ["LoaderState", "finish_epoch_iterator", "random_states"]

logger = logging.getLogger(__name__)

_LEAVES = (str, bytes, int, float, bool, type(None), torch.Tensor, np.ndarray, torch.nn.Module)


def random_states(obj: Any) -> Iterator[np.random.RandomState]:
    """Every :class:`numpy.random.RandomState` reachable from ``obj`` through attributes, lists and tuples (as MONAI's
    ``set_rnd`` walks a dataset), each once, in a fixed order."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, _LEAVES) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.random.RandomState):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(reversed([v for k, v in vars(item).items() if not k.startswith("__")]))


def finish_epoch_iterator(engine: Any) -> None:
    """Let the engine's data iterator of the epoch that just ended see its end now, if it yielded all its batches.

    Ignite stops an epoch after ``epoch_length`` batches and only asks the iterator for one more (and gets
    ``StopIteration``) at the start of the next epoch. That last request still draws from the loader's generator
    (torch's ``RandomSampler`` draws its next permutation), after a checkpoint taken at the epoch end; a resumed run,
    which starts with a new iterator, would not draw it. Asking now puts the draw before the checkpoint, in every run,
    without changing which numbers any epoch gets. An iterator with batches left is not touched.
    """
    iterator = getattr(engine, "_dataloader_iter", None)
    yielded = getattr(iterator, "_num_yielded", None)
    try:
        length = len(iterator)  # type: ignore[arg-type]
    except TypeError:
        return
    if yielded is None or yielded < length:
        return
    try:
        next(iterator)  # type: ignore[call-overload]
    except StopIteration:
        pass
    else:  # a loader longer than it said: nothing is lost, the engine sees this batch next
        raise RuntimeError("the data loader yielded more batches than its length")


def _generators(loader: Any) -> list[torch.Generator]:
    found: list[torch.Generator] = []
    sampler = getattr(loader, "sampler", None)
    for candidate in (getattr(loader, "generator", None), getattr(sampler, "generator", None)):
        if isinstance(candidate, torch.Generator) and all(candidate is not g for g in found):
            found.append(candidate)
    return found


class LoaderState:
    """``state_dict()`` / ``load_state_dict()`` for the random state of a DataLoader (see the module doc).

    Given the ``engine`` that iterates the loader, it also makes a resume from the middle of an epoch exact: the
    handler calls :meth:`start_epoch` last among the handlers of every ``EPOCH_STARTED``, right before Ignite makes
    the epoch's iterator, and the state is remembered there. A checkpoint taken after ``k`` batches of an epoch holds
    that epoch-start state and ``k``; resuming from it, :meth:`start_epoch` makes the iterator from the epoch-start
    state, draws the ``k`` batches already trained on (running their random transforms again, so every generator ends
    where it was) and hands Ignite the iterator positioned at batch ``k + 1``.

    Continuation is exact when an epoch is one pass over the loader (``epoch_length == len(loader)``, Ignite's and
    MONAI's default) and workers do not persist; otherwise a warning says why not, and a resume from the middle of an
    epoch continues as Ignite does (with the batches of a new pass).

    Args:
        loader: a :class:`torch.utils.data.DataLoader` (MONAI's or torch's).
        engine: the engine that iterates it (optional: without it only epoch-end states are saved).
    """

    def __init__(self, loader: Any, engine: Any = None) -> None:
        self.loader = loader
        self.engine = engine
        self._epoch_start: dict[str, Any] | None = None
        self._forward: tuple[int, torch.Tensor] | None = None  # (batches to skip, torch state at the epoch start)
        self._warned = False

    def exactness_warning(self) -> str | None:
        """Why a resumed run cannot draw exactly the numbers the uninterrupted one would, or None."""
        if getattr(self.loader, "persistent_workers", False) and getattr(self.loader, "num_workers", 0) > 0:
            return "its worker processes persist (persistent_workers=True), and their generators are not in a checkpoint"
        length = getattr(getattr(self.engine, "state", None), "epoch_length", None)
        try:
            batches = len(self.loader)
        except TypeError:
            return "it has no length, so an epoch is not one pass over it"
        if length is not None and length != batches:
            return f"an epoch is {length} iterations but the loader has {batches} batches, so epochs do not start with a new pass"
        return None

    def _exact(self) -> bool:
        reason = self.exactness_warning()
        if reason is not None and not self._warned:
            logger.warning("a resumed run will not continue exactly like an uninterrupted one: %s", reason)
            self._warned = True
        return reason is None

    def _transform_states(self) -> list[np.random.RandomState]:
        return list(random_states(getattr(self.loader, "dataset", None)))

    def _current(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "generators": [generator_state(g) for g in _generators(self.loader)],
            "transforms": [numpy_state(r) for r in self._transform_states()],
        }
        epoch = getattr(getattr(self.loader, "sampler", None), "epoch", None)
        if isinstance(epoch, int):
            state["sampler_epoch"] = epoch
        return state

    def _position(self) -> int:
        """Batches of the current epoch done (0 at an epoch end)."""
        state = getattr(self.engine, "state", None)
        length = getattr(state, "epoch_length", None)
        return int(state.iteration % length) if length else 0

    def start_epoch(self) -> None:
        """Remember the state the epoch's iterator starts from; after a resume from the middle of an epoch, make that
        iterator and skip the batches done (see the class doc)."""
        if self._forward is None:
            if self._exact():
                self._epoch_start = {**self._current(), "torch": torch.get_rng_state()}
            return
        skip, torch_at_start = self._forward
        self._forward = None
        resumed = RNGState().state_dict()  # what the skipped batches draw from the global generators is not kept
        torch.set_rng_state(torch_at_start)  # a loader without its own generator shuffles with torch's
        self._epoch_start = {**self._current(), "torch": torch_at_start}
        iterator = iter(self.loader)
        for _ in range(skip):
            next(iterator)
        RNGState().load_state_dict(resumed)
        # Ignite uses an iterator it already has and counts the epoch's batches from `_init_iter`
        self.engine._dataloader_iter = iterator
        self.engine._init_iter = skip

    def state_dict(self) -> dict[str, Any]:
        position = self._position()
        if position and self._epoch_start is not None and self._exact():
            return {**self._epoch_start, "batches_done": position}
        return self._current()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        generators, transforms = _generators(self.loader), self._transform_states()
        saved_generators, saved_transforms = list(state.get("generators", [])), list(state.get("transforms", []))
        if len(saved_generators) != len(generators) or len(saved_transforms) != len(transforms):
            raise CheckpointError(
                f"the data loader does not match the checkpoint: it has {len(generators)} shuffling generator(s) and "
                f"{len(transforms)} random transform(s), the checkpoint {len(saved_generators)} and "
                f"{len(saved_transforms)} (was the transform chain or the loader changed?)"
            )
        for generator, value in zip(generators, saved_generators):
            load_generator_state(generator, value)
        for random_state, value in zip(transforms, saved_transforms):
            load_numpy_state(value, random_state)
        sampler = getattr(self.loader, "sampler", None)
        if "sampler_epoch" in state and callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(int(state["sampler_epoch"]))
        skip = int(state.get("batches_done", 0))
        if skip and self.engine is not None and self._exact():
            self._forward = (skip, state["torch"].to(torch.uint8).cpu())
