"""Network weights of a training run: exported as ``model.pt`` (a plain state dict, the model-zoo layout) and loaded
into a bundle's network by a handler when the bundle initialises."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from pipeline.io import save_torch
from pipeline.checkpoint import load_training_state, resolve_checkpoint
from pipeline.errors import CheckpointError

__all__ = ["WeightsLoader", "export_weights", "load_weights", "network_weights"]

logger = logging.getLogger(__name__)


def network_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The network weights in ``model.pt``, a project checkpoint file or a checkpoint folder (its best, checksum
    verified); always ``torch.load(weights_only=True)``; a ``DistributedDataParallel`` prefix is removed.

    Raises:
        CheckpointError: missing, damaged or unsafe file, or a file without network weights.
    """
    state = load_training_state(resolve_checkpoint(checkpoint))
    weights = state.get("network", state)
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"checkpoint '{checkpoint}' holds no network weights (keys {sorted(state)[:8]}).")
    if all(k.startswith("module.") for k in weights):
        weights = {k[len("module."):]: v for k, v in weights.items()}
    return weights


def export_weights(checkpoint: str | Path, path: str | Path) -> Path:
    """Write the network weights of ``checkpoint`` as a plain state dict to ``path`` (``models/model.pt``),
    atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_torch(network_weights(checkpoint), path)


def load_weights(network: torch.nn.Module, checkpoint: str | Path) -> torch.nn.Module:
    """Load the weights of ``checkpoint`` (see :func:`network_weights`) into ``network`` and return it.

    Raises:
        CheckpointError: as :func:`network_weights`, or weights made for another network.
    """
    weights = network_weights(checkpoint)
    target = getattr(network, "module", network)  # a DistributedDataParallel network
    try:
        target.load_state_dict(weights)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise CheckpointError(
            f"checkpoint '{checkpoint}' does not fit the bundle's network_def: {(lines[1] if len(lines) > 1 else lines[0]).strip()}"
        ) from None
    return network


class WeightsLoader:
    """Load a checkpoint's network weights into ``network`` when the bundle initialises (so a missing or unfitting
    file stops the bundle before any prediction), as a model-zoo bundle's ``CheckpointLoader`` handler does, but for
    the project's checkpoints too (checksum verified, ``weights_only=True``).

    Args:
        network: the bundle's network.
        load_path: ``models/model.pt``, a checkpoint file or a run's ``checkpoints/`` folder (its best).
    """

    def __init__(self, network: torch.nn.Module, load_path: str | Path) -> None:
        self.network = load_weights(network, load_path)
        self.load_path = str(load_path)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: logger.info("predicting with the weights of %s", self.load_path))
