"""MONAI engines for the engine tests' tiny volumes, shared by the checkpoint and schedule tests."""

from __future__ import annotations

from typing import Sequence

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import MeanDice, ValidationHandler, from_engine
from monai.inferers import SimpleInferer


def dice_evaluator(network: torch.nn.Module, batches: Sequence[dict]) -> SupervisedEvaluator:
    """Scores ``network`` on ``batches`` (``image``/``label`` dicts): logits > 0 against the label, key metric
    ``val_mean_dice``."""
    return SupervisedEvaluator(
        device="cpu",
        val_data_loader=batches,
        network=network,
        inferer=SimpleInferer(),
        postprocessing=lambda d: {**d, "pred": (d["pred"] > 0).float()} if isinstance(d, dict) else d,
        key_val_metric={"val_mean_dice": MeanDice(output_transform=from_engine(["pred", "label"]))},
    )


def validated_trainer(
    network: torch.nn.Module,
    batches: Sequence[dict],
    loss: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    val_interval: int = 1,
) -> tuple[SupervisedTrainer, SupervisedEvaluator]:
    """A MONAI ``SupervisedTrainer`` on ``batches`` that runs :func:`dice_evaluator` on the first batch every
    ``val_interval`` epochs; returns the trainer and the evaluator."""
    evaluator = dice_evaluator(network, batches[:1])
    trainer = SupervisedTrainer(
        device="cpu",
        max_epochs=max_epochs,
        train_data_loader=batches,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        inferer=SimpleInferer(),
        train_handlers=[ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True)],
    )
    return trainer, evaluator
