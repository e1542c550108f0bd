"""A MONAI evaluator for the engine tests' tiny volumes, shared by the checkpoint and schedule tests."""

from __future__ import annotations

from typing import Sequence

import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice, from_engine
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
