"""Find everything a training's continuation depends on, from the trainer itself, so nothing has to be listed by hand.

What is found (each under a fixed name, so a resumed run finds the same names):

- ``trainer``: the engine's epoch and iteration (:meth:`ignite.engine.Engine.state_dict`);
- ``network``, ``optimizer``, ``scaler``: a MONAI ``SupervisedTrainer``'s network (unwrapped from
  ``DistributedDataParallel`` / ``DataParallel``, so a checkpoint loads with any number of processes), optimizer and
  AMP GradScaler;
- ``lr_scheduler``: the scheduler of an attached MONAI ``LrScheduleHandler``;
- every other handler attached to the trainer (or the evaluator, but not its metrics) that has ``state_dict()`` /
  ``load_state_dict()`` (a :class:`~pipeline.schedules.LossScheduleHandler`, Ignite's ``EarlyStopping`` or
  ``LRScheduler``, a tracker), under its class name in snake case;
- ``evaluator``: the best metric so far of a MONAI evaluator;
- ``rng``: the global generators of every process (torch, CUDA, numpy, Python);
- ``train_loader``: the loader's shuffling generator, sampler epoch and the random transforms' generators, per process.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

import torch
from ignite.engine import Engine
from ignite.metrics import Metric

from pipeline.checkpoint.state.distributed import PerRank
from pipeline.checkpoint.state.loader_state import LoaderState
from pipeline.checkpoint.state.rng import RNGState

__all__ = ["EvaluatorBest", "discover_training_state", "has_state", "state_target", "training_loader"]


def has_state(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


class EvaluatorBest:
    """The best key metric and its epoch of a MONAI evaluator (``state.best_metric``, ``state.best_metric_epoch``), which
    MONAI keeps outside the engine's ``state_dict``."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict[str, Any]:
        state = self.evaluator.state
        return {"best_metric": float(state.best_metric), "best_metric_epoch": int(state.best_metric_epoch)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.evaluator.state.best_metric = float(state["best_metric"])
        self.evaluator.state.best_metric_epoch = int(state["best_metric_epoch"])


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _attached_objects(engine: Engine) -> Iterator[Any]:
    """The objects behind the engine's event handlers (bound methods' ``self``, callable handler objects), in the
    order they were attached, each once."""
    seen: set[int] = set()
    for entries in getattr(engine, "_event_handlers", {}).values():
        for entry in entries:
            handler = entry[0]
            while hasattr(handler, "__wrapped__"):  # Ignite wraps filtered handlers
                handler = handler.__wrapped__
            obj = getattr(handler, "__self__", handler)
            if id(obj) not in seen:
                seen.add(id(obj))
                yield obj


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        return obj.module  # the same weights without the "module." prefix: loads with or without DDP
    return obj


def discover_training_state(
    trainer: Engine, evaluator: Engine | None = None, exclude: tuple[Any, ...] = (), taken: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The objects whose state a checkpoint of ``trainer`` should hold (see the module doc), by name.

    Args:
        trainer: the training engine (plain Ignite or MONAI).
        evaluator: its validation engine, if any: stateful handlers attached to it (Ignite's ``EarlyStopping``) are
            found too, its metrics are not (they start afresh every validation).
        exclude: objects never to include (the checkpoint handler itself, objects already saved under other names).
        taken: names already used: a found object gets a numbered name instead (``optimizer_2``).
    """
    found: dict[str, Any] = {}
    skip = {id(o) for o in exclude} | {id(_unwrap(o)) for o in exclude}

    def add(name: str, obj: Any, target: Any = None) -> None:
        target = obj if target is None else target
        if obj is None or id(target) in skip:
            return
        skip.add(id(target))
        key, n = name, 1
        while key in found or key in taken:
            n += 1
            key = f"{name}_{n}"
        found[key] = obj

    add("trainer", trainer)
    for attribute, name in (("network", "network"), ("optimizer", "optimizer"), ("scaler", "scaler")):
        value = _unwrap(getattr(trainer, attribute, None))
        if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)) or (name == "scaler" and has_state(value)):
            add(name, value)
    for obj in _attached_objects(trainer):
        scheduler = getattr(obj, "lr_scheduler", None)
        if has_state(scheduler) and not has_state(obj):  # MONAI's LrScheduleHandler keeps no state of its own
            add("lr_scheduler", scheduler)
        elif has_state(obj) and not isinstance(obj, (Engine, torch.nn.Module)):
            add(_snake(type(obj).__name__), obj)
    if evaluator is not None:
        for obj in _attached_objects(evaluator):
            if has_state(obj) and not isinstance(obj, (Engine, torch.nn.Module, Metric)):
                add(_snake(type(obj).__name__), obj)
    if evaluator is not None and hasattr(evaluator.state, "best_metric"):
        add("evaluator", EvaluatorBest(evaluator), evaluator)
    add("rng", PerRank(RNGState()), RNGState)
    loader = training_loader(trainer)
    if loader is not None and hasattr(loader, "dataset"):
        add("train_loader", PerRank(LoaderState(loader, trainer)), loader)
    return found


def training_loader(trainer: Engine) -> Any:
    """The loader the trainer iterates: a MONAI trainer's ``data_loader``, or the data given to a plain Engine's run."""
    loader = getattr(trainer, "data_loader", None)
    return getattr(trainer.state, "dataloader", None) if loader is None else loader


def state_target(obj: Any) -> Any:
    """What a found state stands for (the loader of a :class:`LoaderState`, the evaluator of :class:`EvaluatorBest`,
    :class:`RNGState` for the global generators), so that finding it again adds nothing."""
    inner = obj.obj if isinstance(obj, PerRank) else obj
    if isinstance(inner, LoaderState):
        return inner.loader
    if isinstance(inner, EvaluatorBest):
        return inner.evaluator
    return RNGState if isinstance(inner, RNGState) else obj
