"""Factories for MONAI's Ignite engines: the only place that constructs a trainer or an evaluator."""

from __future__ import annotations

from typing import Sequence

import torch
from ignite.engine import Events
from ignite.handlers import ProgressBar
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import IgniteMetricHandler, LrScheduleHandler, ValidationHandler, from_engine
from monai.inferers import Inferer, SlidingWindowInferer
from monai.metrics import DiceMetric
from monai.transforms import Compose

from pipeline.errors import SettingsError
from pipeline.evaluation.ignite_metric import VesselMetric
from pipeline.cosine_lr import CosineToRunEnd
from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.inference import CandidateSlidingWindowInferer
from transforms import get_binary_postprocessing

__all__ = ["create_evaluator", "create_inferer", "create_trainer", "VAL_KEY_METRIC"]

#: name of the evaluator's key metric (mean Dice of the thresholded prediction)
VAL_KEY_METRIC = "val_mean_dice"


def create_inferer(
    roi_size: Sequence[int],
    sw_batch_size: int = 4,
    overlap: float = 0.25,
    hu_window: Sequence[float] | None = None,
    lumen_hu: Sequence[float | None] = (120.0, None),
    progress: bool = False,
    precision: str = "float32",
) -> Inferer:
    """The sliding-window inferer used for validation and prediction (windows of ``roi_size``, padded if larger than
    the volume, overlapping by ``overlap``, ``sw_batch_size`` windows per forward pass).

    With ``hu_window`` (the HU range the preprocessing mapped to [0, 1]) the network runs only where the intensities
    allow vessel lumen, within the heart on a full field of view (:class:`~pipeline.inference.CandidateSlidingWindowInferer`,
    ``lumen_hu``; ``progress`` shows a bar with the time left; ``precision`` is the network's arithmetic, one of
    :data:`~pipeline.inference.PRECISIONS`); without it, on every window (MONAI's
    :class:`~monai.inferers.SlidingWindowInferer`, float32).
    """
    if hu_window is None:
        return SlidingWindowInferer(roi_size=tuple(roi_size), sw_batch_size=sw_batch_size, overlap=overlap)
    return CandidateSlidingWindowInferer(
        roi_size, sw_batch_size, overlap, lumen_hu=lumen_hu, hu_window=hu_window, progress=progress, precision=precision
    )


def create_evaluator(
    network: torch.nn.Module,
    val_loader: torch.utils.data.DataLoader,
    device: torch.device | str,
    roi_size: Sequence[int],
    sw_batch_size: int = 4,
    overlap: float = 0.25,
    threshold: float = 0.5,
    val_handlers: Sequence | None = None,
    amp: bool = False,
    extra_metrics: Sequence[str] = (),
    tolerance_mm: float = 1.0,
    hu_window: Sequence[float] | None = None,
) -> SupervisedEvaluator:
    """A :class:`~monai.engines.SupervisedEvaluator` that runs sliding-window inference on whole volumes and reports
    the mean Dice of the thresholded prediction as its key metric (``VAL_KEY_METRIC``). A case whose label and
    prediction are both empty scores 1 (MONAI's ``DiceMetric(ignore_empty=False)``).

    Args:
        network: the segmentation network (logits out).
        val_loader: loader of whole ``image``/``label`` volumes.
        device: where to run.
        roi_size: sliding-window size (usually the training patch size).
        sw_batch_size: windows per forward pass.
        overlap: window overlap fraction.
        threshold: probability threshold for the binary mask.
        val_handlers: extra handlers attached to the evaluator.
        amp: automatic mixed precision.
        extra_metrics: more metrics of the evaluation tool (:data:`pipeline.evaluation.METRICS`, e.g. ``"HD95_mm"``,
            ``"NSD"``, ``"clDice"``), each reported as ``val_<name in lower case>`` (``val_hd95_mm``) by a
            :class:`~pipeline.evaluation.VesselMetric` in millimetres, the spacing read from each volume's affine.
        tolerance_mm: NSD tolerance in mm for ``extra_metrics``.
        hu_window: the HU range the preprocessing mapped to [0, 1]; given, the network runs only where the
            intensities allow vessel lumen (see :func:`create_inferer`).
    """
    additional = {
        f"val_{name.lower()}": VesselMetric(name, tolerance_mm=tolerance_mm, output_transform=from_engine(["pred", "label"]))
        for name in extra_metrics
    }
    return SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=val_loader,
        network=network,
        inferer=create_inferer(roi_size, sw_batch_size, overlap, hu_window=hu_window),
        postprocessing=Compose(get_binary_postprocessing(threshold)),
        key_val_metric={
            VAL_KEY_METRIC: IgniteMetricHandler(
                metric_fn=DiceMetric(include_background=True, ignore_empty=False),
                output_transform=from_engine(["pred", "label"]),
            )
        },
        additional_metrics=additional or None,
        val_handlers=list(val_handlers or []),
        amp=amp,
    )


def create_trainer(
    network: torch.nn.Module,
    train_loader: torch.utils.data.DataLoader,
    loss_function: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    max_epochs: int,
    evaluator: SupervisedEvaluator | None = None,
    val_interval: int = 1,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    train_handlers: Sequence | None = None,
    amp: bool = False,
    progress_bar: bool = True,
    epoch_logger: EpochSummaryLogger | None = None,
) -> SupervisedTrainer:
    """A :class:`~monai.engines.SupervisedTrainer` wired for vessel segmentation.

    Validation runs ``evaluator`` every ``val_interval`` epochs and after the last one; the LR scheduler steps each
    epoch; an Ignite :class:`~ignite.contrib.handlers.ProgressBar` shows iterations and
    :class:`~pipeline.epoch_summary.EpochSummaryLogger` logs one line per epoch.

    Args:
        network: the segmentation network (logits out).
        train_loader: loader of training patches.
        loss_function: called as ``loss_function(logits, label)``.
        optimizer: the optimizer of ``network``.
        device: where to train.
        max_epochs: epochs to run.
        evaluator: validation engine (see :func:`create_evaluator`); ``None`` for no validation.
        val_interval: validate every this many epochs.
        lr_scheduler: stepped at the end of every epoch; a ``CosineAnnealingLR`` is stretched to the run's end when a
            resumed run is longer (:class:`~pipeline.cosine_lr.CosineToRunEnd`).
        train_handlers: extra handlers (MONAI style: objects with ``attach``).
        amp: automatic mixed precision.
        progress_bar: attach a tqdm progress bar.
        epoch_logger: the handler that logs one line per epoch (default: a new one reading ``evaluator``); pass
            your own to keep its ``history``.
    """
    if max_epochs < 1:
        raise SettingsError(f"max_epochs must be >= 1, got {max_epochs}.")
    if val_interval < 1:
        raise SettingsError(f"val_interval must be >= 1, got {val_interval}.")
    handlers: list = []
    if lr_scheduler is not None:
        handlers.append(LrScheduleHandler(lr_scheduler=lr_scheduler, print_lr=False))
        if isinstance(lr_scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
            handlers.append(CosineToRunEnd(lr_scheduler))  # a resumed, extended run keeps annealing
    if evaluator is not None:
        handlers.append(ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True, exec_at_start=False))
    handlers += list(train_handlers or [])
    trainer = SupervisedTrainer(
        device=torch.device(device),
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss_function,
        train_handlers=handlers,
        amp=amp,
    )
    if evaluator is not None and max_epochs % val_interval:
        # the last epoch is not on the interval: validate it too, so the final model is always scored
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED(event_filter=lambda engine, epoch: epoch == engine.state.max_epochs),
            lambda engine: evaluator.run(engine.state.epoch),
        )
    if progress_bar:
        ProgressBar(persist=False).attach(trainer, output_transform=from_engine(["loss"], first=True))
    (epoch_logger or EpochSummaryLogger(evaluator=evaluator)).attach(trainer)
    return trainer
