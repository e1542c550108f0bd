"""Predict whole volumes with a trained checkpoint, on their original grid; write them as NIfTI and score them."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from monai.data import decollate_batch
from monai.metrics import compute_dice
from monai.transforms import EnsureChannelFirst, LoadImage

from pipeline.data import DatasetError, make_loader
from pipeline.checkpoint import load_training_state, resolve_checkpoint
from pipeline.engines import create_inferer
from pipeline.errors import CheckpointError
from pipeline.evaluation.loading import spacing_of
from pipeline.networks import create_unet
from pipeline.workflows.config import CONFIG_NAME, TrainingConfig
from transforms import get_inference_transforms, get_post_transforms

__all__ = ["CaseScore", "load_network", "predict_and_score", "predict_volumes", "format_case_table"]

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

    ``checkpoint`` is a file or a run's checkpoint folder (its best checkpoint, by the manifest). A file listed in a
    :mod:`pipeline.checkpoint` manifest is checked against its recorded size and SHA-256 first. Reads
    :mod:`pipeline.checkpoint` files, MONAI ``CheckpointSaver``'s ``{"network": ...}`` and plain state dicts. The
    run's ``config.json`` is looked up next to the checkpoint folder unless ``config`` is given.

    Raises:
        CheckpointError: missing file or config, a damaged file, a file ``weights_only`` loading refuses (a pickle
            that would run code), or weights that do not fit the network of the config.
    """
    checkpoint = resolve_checkpoint(checkpoint)
    if config is None:
        candidates = [checkpoint.parent / CONFIG_NAME, checkpoint.parent.parent / CONFIG_NAME]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise CheckpointError(f"no {CONFIG_NAME} next to checkpoint '{checkpoint}' (looked in {[str(c) for c in candidates]}).")
        config = TrainingConfig.load(found)
    network = create_unet(**config.network_args())
    state = load_training_state(checkpoint)
    weights = state.get("network", state)
    try:
        network.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(
            f"checkpoint '{checkpoint}' does not fit the network of its config {config.network_args()}: {first}"
        ) from None
    return network, config


def _case_name(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _predict(
    network: torch.nn.Module,
    config: TrainingConfig,
    images: list[str],
    device: torch.device | str,
    output_dir: str | Path | None,
) -> Iterator[tuple[str, torch.Tensor, Path | None]]:
    """Sliding-window prediction of each image, thresholded and inverted to the image's original grid and affine.

    Yields:
        the image path, the binary prediction (a ``(1, X, Y, Z)`` MetaTensor) and the file it was written to
        (``output_dir/<image name>_pred.nii.gz``, uint8) or ``None``.
    """
    pre = get_inference_transforms(pixdim=config.pixdim, hu_window=config.hu_window)
    post = get_post_transforms(pre, output_dir=None if output_dir is None else str(output_dir))
    loader = make_loader([{"image": image} for image in images], pre, cache=False)
    inferer = create_inferer(config.patch_size, hu_window=config.hu_window, progress=sys.stderr.isatty())
    network = network.to(device).eval()
    with torch.no_grad():
        for image, batch in zip(images, loader):
            batch["pred"] = inferer(batch["image"].to(device), network).cpu()
            pred = post(decollate_batch(batch)[0])["pred"]
            saved = Path(output_dir) / f"{_case_name(image)}_pred.nii.gz" if output_dir is not None else None
            yield image, pred, saved


def predict_volumes(
    network: torch.nn.Module,
    config: TrainingConfig,
    images: list[str],
    device: torch.device | str = "cpu",
    output_dir: str | Path = "predictions",
) -> list[Path]:
    """Predict each NIfTI image with sliding-window inference and write the binary mask on the image's original grid
    and affine, as ``output_dir/<image name>_pred.nii.gz`` (uint8), ready for ``vessel-pipeline evaluate``.

    Args:
        network: trained network (logits out).
        config: the run's settings (preprocessing and window size).
        images: NIfTI image files.
        device: where to run the network.
        output_dir: folder for the predictions (created if needed).

    Returns:
        the written files, in the order of ``images``.
    """
    names: dict[str, str] = {}
    for image in images:
        other = names.setdefault(_case_name(image), str(image))
        if other != str(image):
            raise DatasetError(f"'{image}' and '{other}' would both be written as {_case_name(image)}_pred.nii.gz; rename one.")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for image, _, saved in _predict(network, config, images, device, output_dir):
        logger.info("predicted %s -> %s", image, saved)
        written.append(saved)
    return written


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
    load_label = LoadImage(image_only=True)
    to_channel_first = EnsureChannelFirst()
    scores = []
    labels = {it["image"]: it["label"] for it in items}
    for image, pred, saved in _predict(network, config, [it["image"] for it in items], device, output_dir):
        label = to_channel_first(load_label(labels[image]))
        if tuple(pred.shape) != tuple(label.shape):
            raise DatasetError(f"prediction of '{image}' has shape {tuple(pred.shape)}, label {tuple(label.shape)}.")
        label_bin = (label > 0.5).float()
        spacing = spacing_of(np.asarray(pred.affine))
        voxel_ml = float(np.prod(spacing)) / 1000.0
        dice = compute_dice(pred[None].float(), label_bin[None], include_background=True, ignore_empty=False)
        scores.append(
            CaseScore(
                case=_case_name(image),
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
