"""The random state a DataLoader carries from one epoch to the next, so a resumed training shuffles and augments as
the uninterrupted one would.

Three things are not in the global generators: the loader's own shuffling generator (``DataLoader(generator=...)``,
also used by its ``RandomSampler``), a ``DistributedSampler``'s epoch, and the ``R`` generator of each MONAI random
transform of its dataset (with ``num_workers=0`` MONAI seeds them once, when the loader is built, and they advance
from epoch to epoch in this process; with workers they are re-seeded from the loader's generator every epoch).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import torch

from pipeline.checkpoint.rng import generator_state, load_generator_state, load_numpy_state, numpy_state
from pipeline.errors import CheckpointError

__all__ = ["LoaderState", "finish_epoch_iterator", "random_states"]

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

    Args:
        loader: a :class:`torch.utils.data.DataLoader` (MONAI's or torch's).
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def _transform_states(self) -> list[np.random.RandomState]:
        return list(random_states(getattr(self.loader, "dataset", None)))

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "generators": [generator_state(g) for g in _generators(self.loader)],
            "transforms": [numpy_state(r) for r in self._transform_states()],
        }
        epoch = getattr(getattr(self.loader, "sampler", None), "epoch", None)
        if isinstance(epoch, int):
            state["sampler_epoch"] = epoch
        return state

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
