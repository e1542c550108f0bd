"""Predict whole volumes with a trained checkpoint and score them on their original grid."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.data import decollate_batch
from monai.inferers import SlidingWindowInferer
from monai.metrics import compute_dice
from monai.transforms import EnsureChannelFirst, LoadImage

from pipeline.data import DatasetError, make_loader
from pipeline.networks import create_unet
from pipeline.workflows.config import CONFIG_NAME, TrainingConfig
from transforms import get_inference_transforms, get_post_transforms

__all__ = ["CaseScore", "load_network", "predict_and_score", "format_case_table"]

logger = logging.getLogger(__name__)


@dataclass
class CaseScore:
    """Per-case result on the original grid of the image."""

    case: str
    shape: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    label_ml: float
    pred_ml: float
    dice: float
    prediction: Path | None = None


def load_network(checkpoint: str | Path, config: TrainingConfig | None = None) -> tuple[torch.nn.Module, TrainingConfig]:
    """Rebuild the network of a training run and load its weights (``torch.load(weights_only=True)``).

    The run's ``config.json`` is looked up next to the checkpoint folder unless ``config`` is given.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise DatasetError(f"checkpoint '{checkpoint}' does not exist.")
    if config is None:
        candidates = [checkpoint.parent / CONFIG_NAME, checkpoint.parent.parent / CONFIG_NAME]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DatasetError(f"no {CONFIG_NAME} next to checkpoint '{checkpoint}' (looked in {[str(c) for c in candidates]}).")
        config = TrainingConfig.load(found)
    network = create_unet(**config.network_args())
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DatasetError(f"checkpoint '{checkpoint}' cannot be loaded safely: {e}") from None
    network.load_state_dict(state["network"] if "network" in state else state)
    return network, config


def predict_and_score(
    network: torch.nn.Module,
    config: TrainingConfig,
    items: list[dict[str, str]],
    device: torch.device | str = "cpu",
    output_dir: str | Path | None = None,
) -> list[CaseScore]:
    """Sliding-window prediction of each image, inverted to its original grid, scored against its label file.

    Args:
        network: trained network (logits out).
        config: the run's settings (preprocessing and window size).
        items: datalist entries with ``image`` and ``label``.
        device: where to run the network.
        output_dir: if given, predictions are written there as NIfTI on the input's grid and affine.

    Returns:
        one :class:`CaseScore` per item, in order.
    """
    pre = get_inference_transforms(pixdim=config.pixdim, hu_window=config.hu_window)
    post = get_post_transforms(pre, output_dir=None if output_dir is None else str(output_dir))
    loader = make_loader([{"image": it["image"]} for it in items], pre, cache=False)
    inferer = SlidingWindowInferer(roi_size=tuple(config.patch_size), sw_batch_size=4, overlap=0.25)
    load_label = LoadImage(image_only=True)
    to_channel_first = EnsureChannelFirst()
    network = network.to(device).eval()
    scores = []
    with torch.no_grad():
        for item, batch in zip(items, loader):
            batch["pred"] = inferer(batch["image"].to(device), network).cpu()
            out = post(decollate_batch(batch)[0])
            pred = out["pred"]
            label = to_channel_first(load_label(item["label"]))
            if tuple(pred.shape) != tuple(label.shape):
                raise DatasetError(f"prediction of '{item['image']}' has shape {tuple(pred.shape)}, label {tuple(label.shape)}.")
            label_bin = (label > 0.5).float()
            spacing = tuple(float(s) for s in np.sqrt((np.asarray(label.affine)[:3, :3] ** 2).sum(0)))
            voxel_ml = float(np.prod(spacing)) / 1000.0
            dice = compute_dice(pred[None].float(), label_bin[None], include_background=True, ignore_empty=False)
            name = Path(item["image"]).name.replace(".nii.gz", "").replace(".nii", "")
            saved = Path(output_dir) / f"{name}_pred.nii.gz" if output_dir is not None else None
            scores.append(
                CaseScore(
                    case=name,
                    shape=tuple(label.shape[1:]),
                    spacing_mm=spacing,
                    label_ml=float(label_bin.sum()) * voxel_ml,
                    pred_ml=float(pred.sum()) * voxel_ml,
                    dice=float(dice.item()),
                    prediction=saved,
                )
            )
    return scores


def format_case_table(scores: list[CaseScore]) -> str:
    """A plain-text table of the per-case scores with the mean Dice at the bottom."""
    header = f"{'case':<24} {'shape':<14} {'spacing (mm)':<16} {'label ml':>9} {'pred ml':>9} {'Dice':>7}"
    lines = [header, "-" * len(header)]
    for s in scores:
        shape = "x".join(str(v) for v in s.shape)
        spacing = "x".join(f"{v:.2f}" for v in s.spacing_mm)
        lines.append(f"{s.case:<24} {shape:<14} {spacing:<16} {s.label_ml:>9.3f} {s.pred_ml:>9.3f} {s.dice:>7.4f}")
    lines.append("-" * len(header))
    mean = float(np.mean([s.dice for s in scores])) if scores else float("nan")
    lines.append(f"{'mean':<24} {'':<14} {'':<16} {'':>9} {'':>9} {mean:>7.4f}")
    return "\n".join(lines)
