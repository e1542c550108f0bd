"""One training step and one validation pass, shared by the hand-written loop and the Ignite process function."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from monai.metrics import compute_dice

from pipeline.engines import VAL_KEY_METRIC, create_evaluator
from pipeline.errors import InputError, SettingsError
from pipeline.losses.combined import TOTAL_KEY

__all__ = ["VAL_METRIC", "split_batch", "train_step", "process_function", "validate", "StepMeans"]

#: the name :func:`validate` gives the validation mean Dice (the seed's name, which the checkpoint presets monitor)
VAL_METRIC = "val_dice"


def split_batch(batch: Any, device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of a batch given as a pair or as MONAI's ``{"image", "label"}`` dict, on ``device``.

    Raises:
        InputError: any other batch.
    """
    if isinstance(batch, Mapping) and "image" in batch and "label" in batch:
        inputs, targets = batch["image"], batch["label"]
    elif isinstance(batch, Sequence) and len(batch) == 2:
        inputs, targets = batch
    else:
        raise InputError(f"a batch must be (inputs, targets) or a dict with 'image' and 'label', got {type(batch).__name__}")
    return torch.as_tensor(inputs).to(device), torch.as_tensor(targets).to(device)


def train_step(
    model: torch.nn.Module,
    batch: Any,
    optimizer: torch.optim.Optimizer,
    loss_function: torch.nn.Module,
    device: torch.device | str | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Forward, loss, backward and optimizer step on one batch.

    Returns:
        ``loss`` (the weighted total), each term's unweighted value (``dice_loss``, ``bce_loss``, ... when the loss
        reports them), ``dice`` (of the prediction thresholded at ``threshold`` on the batch) and ``lr`` (the first
        parameter group's learning rate).
    """
    inputs, targets = split_batch(batch, device)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = loss_function(logits, targets)
    loss.backward()
    optimizer.step()
    metrics = {"loss": float(loss.detach())}
    components = getattr(loss_function, "last_components", {})
    metrics.update({k: float(v) for k, v in components.items() if k != TOTAL_KEY})
    with torch.no_grad():
        prediction = (torch.sigmoid(logits.detach()) > threshold).float()
        label = targets[:, : prediction.shape[1]]  # without the skeleton channels some losses take with the label
        metrics["dice"] = float(compute_dice(prediction, label, include_background=True, ignore_empty=False).nanmean())
    metrics["lr"] = float(optimizer.param_groups[0]["lr"])
    return metrics


def process_function(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_function: torch.nn.Module,
    device: torch.device | str | None = None,
    threshold: float = 0.5,
) -> Callable[[Any, Any], dict[str, float]]:
    """:func:`train_step` as an Ignite process function (``Engine(process_function(...))``): its output is the
    step's dict, so ``state.output["loss"]`` is the batch loss."""

    def step(engine: Any, batch: Any) -> dict[str, float]:
        return train_step(model, batch, optimizer, loss_function, device, threshold)

    return step


def validate(
    model: torch.nn.Module,
    val_loader: Any,
    device: torch.device | str,
    roi_size: Sequence[int],
    threshold: float = 0.5,
    sw_batch_size: int = 4,
) -> dict[str, float]:
    """Mean Dice over ``val_loader`` (whole volumes, sliding-window inference with windows of ``roi_size``), computed
    by the project's MONAI evaluator (:func:`pipeline.engines.create_evaluator`).

    Returns:
        ``{"val_dice": mean Dice}``.
    """
    if not roi_size:
        raise SettingsError("validation needs roi_size (the sliding-window size, usually the training patch size)")
    evaluator = create_evaluator(model, val_loader, device, roi_size, sw_batch_size=sw_batch_size, threshold=threshold)
    evaluator.run()
    model.train()
    return {VAL_METRIC: float(evaluator.state.metrics[VAL_KEY_METRIC])}


class StepMeans:
    """Running means of the scalar entries of step dicts over an epoch (``lr``: the last value)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def add(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.last[key] = float(value)

    @property
    def steps(self) -> int:
        return max(self.counts.values(), default=0)

    def means(self) -> dict[str, float]:
        out = {key: self.sums[key] / self.counts[key] for key in self.sums}
        if "lr" in self.last:
            out["lr"] = self.last["lr"]
        return out

    def reset(self) -> None:
        self.sums, self.counts, self.last = {}, {}, {}
