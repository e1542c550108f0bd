"""The random number generators of a process, saved as tensors (so a checkpoint still loads with
``weights_only=True``) and restored exactly: torch (CPU and every initialised CUDA device), numpy's global generator,
Python's ``random``, and any :class:`numpy.random.RandomState` / :class:`torch.Generator` given to it (a MONAI
transform's ``R``, a DataLoader's shuffling generator)."""

from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np
import torch

__all__ = ["RNGState", "generator_state", "load_generator_state", "numpy_state", "load_numpy_state"]

def numpy_state(generator: np.random.RandomState | None = None) -> dict[str, torch.Tensor]:
    """The state of ``generator`` (numpy's global one when None) as tensors."""
    name, keys, pos, has_gauss, cached = (generator.get_state() if generator is not None else np.random.get_state())
    if name != "MT19937":
        raise ValueError(f"cannot save a numpy RandomState with bit generator {name!r}")
    return {
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "meta": torch.tensor([float(pos), float(has_gauss), float(cached)], dtype=torch.float64),
    }


def load_numpy_state(state: Mapping[str, torch.Tensor], generator: np.random.RandomState | None = None) -> None:
    """Restore a state made by :func:`numpy_state` into ``generator`` (numpy's global one when None)."""
    meta = state["meta"].tolist()
    value = ("MT19937", state["keys"].numpy().astype(np.uint32), int(meta[0]), int(meta[1]), float(meta[2]))
    (generator if generator is not None else np.random).set_state(value)


def _python_state() -> dict[str, torch.Tensor]:
    version, words, gauss = random.getstate()
    return {
        "words": torch.tensor(words, dtype=torch.int64),
        "meta": torch.tensor([float(version), float(gauss is not None), float(gauss or 0.0)], dtype=torch.float64),
    }


def _load_python_state(state: Mapping[str, torch.Tensor]) -> None:
    version, has_gauss, gauss = state["meta"].tolist()
    random.setstate((int(version), tuple(int(w) for w in state["words"].tolist()), gauss if has_gauss else None))


def generator_state(generator: torch.Generator) -> torch.Tensor:
    """The state of a :class:`torch.Generator` (a copy)."""
    return generator.get_state().clone()


def load_generator_state(generator: torch.Generator, state: torch.Tensor) -> None:
    generator.set_state(state.to(torch.uint8).cpu())


class RNGState:
    """The global random number generators of this process, with ``state_dict()`` / ``load_state_dict()``.

    A training resumed from a checkpoint with this state draws the same random numbers (random crops, flips, dropout,
    shuffling) as the run that was never stopped. CUDA generators are saved only when CUDA is initialised; they are
    restored on as many devices as both the checkpoint and this machine have.

    Example::

        state = RNGState().state_dict()
        ...  # anything random
        RNGState().load_state_dict(state)  # the same numbers again
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": numpy_state(), "python": _python_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = [s.clone() for s in torch.cuda.get_rng_state_all()]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
        load_numpy_state(state["numpy"])
        _load_python_state(state["python"])
        cuda = state.get("cuda")
        if cuda and torch.cuda.is_available():
            for device, value in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(value.to(torch.uint8).cpu(), device)
