"""The training workflow: data checks, loaders, network, MONAI engines, checkpoints."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from monai.losses import DiceFocalLoss
from monai.utils import set_determinism

from pipeline.checkpoint import CheckpointHandler
from pipeline.data import check_items, load_datalist, make_loader
from pipeline.engines import VAL_KEY_METRIC, create_evaluator, create_trainer
from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.history import write_history_json
from pipeline.losses import create_loss_function
from pipeline.networks import create_unet
from pipeline.plots import plot_training_curves
from pipeline.schedules import LossScheduleHandler
from pipeline.workflows.config import CONFIG_NAME, TrainingConfig, resolve_device
from transforms import get_train_transforms, get_val_transforms

__all__ = ["TrainingResult", "run_training", "MODEL_NAME"]

logger = logging.getLogger(__name__)

#: file prefix of the checkpoints of a training run (``checkpoints/unet_e0040_i00000120.pt``, ``unet.manifest.json``)
MODEL_NAME = "unet"


@dataclass
class TrainingResult:
    """What a training run produced."""

    output_dir: Path
    best_metric: float
    best_epoch: int
    best_checkpoint: Path
    final_checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def run_training(config: TrainingConfig) -> TrainingResult:
    """Train a UNet on the ``training`` list of the datalist and validate on its ``validation`` list.

    The data are checked first (missing files, unreadable NIfTI, image/label shape mismatch), so bad input fails
    before any training. The loss is MONAI's ``DiceFocalLoss`` or the preset ``config.loss``, whose term weights
    ``config.loss_schedule`` may change each epoch (a :class:`~pipeline.schedules.LossScheduleHandler`); checkpoints
    (network, optimizer, LR scheduler, loss schedule and trainer state) are kept in ``output_dir/checkpoints`` by a
    :class:`~pipeline.checkpoint.CheckpointHandler` with ``config.checkpoint_strategy`` on the validation mean Dice,
    plus the ``last`` and ``final`` ones.

    Returns:
        a :class:`TrainingResult`; ``config.json``, ``history.json`` and ``training_curves.png`` are written to
        ``config.output_dir``.
    """
    train_items = load_datalist(config.dataset_dir, "training", config.datalist)
    val_items = load_datalist(config.dataset_dir, "validation", config.datalist)
    check_items(train_items + val_items)
    device = resolve_device(config.device)

    out = Path(config.output_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG_NAME)

    loss_config = config.loss_config()
    if loss_config is None:
        loss_function = DiceFocalLoss(sigmoid=True, batch=True, gamma=2.0)
    else:
        loss_function = create_loss_function(loss_config)

    set_determinism(seed=config.seed)
    train_loader = make_loader(
        train_items,
        get_train_transforms(
            config.patch_size,
            config.num_samples,
            pixdim=config.pixdim,
            hu_window=config.hu_window,
            skeleton=getattr(loss_function, "has_skeleton_term", False),
        ),
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=config.num_workers,
        seed=config.seed,
    )
    val_loader = make_loader(
        val_items, get_val_transforms(pixdim=config.pixdim, hu_window=config.hu_window), num_workers=config.num_workers
    )

    network = create_unet(**config.network_args()).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.learning_rate * 0.01)

    evaluator = create_evaluator(network, val_loader, device, roi_size=config.patch_size)
    summary = EpochSummaryLogger(evaluator=evaluator)
    trainer = create_trainer(
        network,
        train_loader,
        loss_function,
        optimizer,
        device,
        max_epochs=config.epochs,
        evaluator=evaluator,
        val_interval=config.val_interval,
        lr_scheduler=lr_scheduler,
        progress_bar=config.progress_bar,
        epoch_logger=summary,
    )
    to_save = {"network": network, "optimizer": optimizer, "lr_scheduler": lr_scheduler, "trainer": trainer}
    if loss_config is not None and "scheduler" in loss_config:
        schedule = LossScheduleHandler(loss_function, loss_config["scheduler"]["type"], loss_config["scheduler"]["params"])
        schedule.attach(trainer, evaluator)
        to_save["loss_schedule"] = schedule
    checkpoints = CheckpointHandler(
        ckpt_dir,
        to_save,
        strategy=config.checkpoint_strategy,
        model_name=MODEL_NAME,
        monitor=VAL_KEY_METRIC,
        max_checkpoints=config.max_checkpoints,
        existing="replace",  # running the same command again replaces the earlier run's checkpoints
    )
    checkpoints.attach(trainer, evaluator)

    logger.info(
        "training on %d volumes, validating on %d, %d epochs, device %s", len(train_items), len(val_items), config.epochs, device
    )
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    set_determinism(seed=None)

    write_history_json(summary.history, out / "history.json")  # strict JSON: NaN and infinity as null
    loss_name = config.loss or "DiceFocalLoss"
    if config.loss_schedule:
        loss_name += f", {config.loss_schedule} weights"
    plot_training_curves(summary.history, out / "training_curves.png", title=f"{out.name}: UNet, {loss_name}")
    return TrainingResult(
        output_dir=out,
        best_metric=float(evaluator.state.best_metric),
        best_epoch=int(evaluator.state.best_metric_epoch),
        best_checkpoint=checkpoints.best_checkpoint,
        final_checkpoint=checkpoints.last_checkpoint,
        history=summary.history,
        seconds=seconds,
    )
