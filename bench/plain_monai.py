"""The references of the learning benchmark, written as a MONAI user would write them: MONAI's own transforms, network,
losses, engines and sliding-window inference, nothing from this project except the time budget that ends training
(the same handler the project's recipes get) — and the scoring, which happens outside, by the evaluation tool.

Two recipes:

- ``monai_baseline``: UNet (16-32-64-128, two residual units), ``DiceFocalLoss``, Adam 2e-3 at a constant learning
  rate, CT window -150..650 HU to [0, 1], no resampling, 4 patches of 64x64x48 from one volume per step
  (``RandCropByPosNegLabeld``), random flips, validation by mean Dice with sliding-window inference, best model kept.
- ``nnunet_style``: what nnU-Net would do with the same network: the dataset plan's patch, batch and CT normalisation
  (clip to the foreground's 0.5-99.5 percentiles, z-score), Dice + cross-entropy, SGD with Nesterov momentum 0.99
  (lr 1e-2, weight decay 3e-5) and the poly learning rate (power 0.9) fitted to the budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from monai.data import CacheDataset, DataLoader, decollate_batch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import CheckpointSaver, LrScheduleHandler, MeanDice, StatsHandler, ValidationHandler, from_engine
from monai.inferers import SimpleInferer, SlidingWindowInferer
from monai.losses import DiceCELoss, DiceFocalLoss
from monai.networks.nets import UNet
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    RandCropByPosNegLabeld,
    RandFlipd,
    SaveImage,
    ScaleIntensityRanged,
    SpatialPadd,
)
from monai.utils import set_determinism

from pipeline.time_budget import TimeBudget

PLAIN_RECIPES = ("monai_baseline", "nnunet_style")


def _settings(recipe: str, dataset_dir: Path) -> dict[str, Any]:
    if recipe == "monai_baseline":
        return {"window": (-150.0, 650.0, 0.0, 1.0), "patch": (64, 64, 48), "volumes": 1, "patches": 4}
    plan = json.loads((dataset_dir / "plan.json").read_text())
    fg = plan["fingerprint"]["intensity"]
    low, high, mean, std = fg["p00_5"], fg["p99_5"], fg["mean"], fg["std"]
    return {
        "window": (low, high, (low - mean) / std, (high - mean) / std),  # clip, then z-score
        "patch": tuple(plan["patch_size"]),
        "volumes": plan["batch_size"],
        "patches": plan["num_samples"],
    }


def train_plain(
    recipe: str,
    dataset_dir: Path,
    out_dir: Path,
    seed: int,
    budget_s: float,
    clock: str = "process",
    max_epochs: int = 1000,
    val_interval: int = 2,
) -> dict[str, Any]:
    """Train ``recipe`` for ``budget_s`` seconds of training time, predict the test list into ``out_dir/predictions``.

    Returns:
        ``{"predictions": [(case, prediction, label), ...], "epochs", "train_seconds", "best_val_dice"}``.
    """
    if recipe not in PLAIN_RECIPES:
        raise ValueError(f"unknown plain recipe {recipe!r}; valid: {PLAIN_RECIPES}.")
    set_determinism(seed=seed)
    s = _settings(recipe, dataset_dir)
    datalist = json.loads((dataset_dir / "dataset.json").read_text())
    files = {k: [{key: str(dataset_dir / v) for key, v in item.items()} for item in datalist[k]] for k in ("training", "validation", "test")}
    keys = ["image", "label"]
    a_min, a_max, b_min, b_max = s["window"]
    intensity = ScaleIntensityRanged(keys="image", a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=True)
    load = [LoadImaged(keys=keys), EnsureChannelFirstd(keys=keys), intensity]
    train_tf = Compose(load + [
        SpatialPadd(keys=keys, spatial_size=s["patch"]),
        RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=s["patch"], pos=1, neg=1, num_samples=s["patches"]),
        RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
        RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
        RandFlipd(keys=keys, prob=0.5, spatial_axis=2),
    ])
    train_ds = CacheDataset(files["training"], train_tf, cache_rate=1.0, progress=False)
    val_ds = CacheDataset(files["validation"], Compose(load), cache_rate=1.0, progress=False)
    train_loader = DataLoader(train_ds, batch_size=s["volumes"], shuffle=True, num_workers=0)
    val_loader = DataLoader(val_ds, batch_size=1, num_workers=0)

    net = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
    inferer = SlidingWindowInferer(roi_size=s["patch"], sw_batch_size=4, overlap=0.25)
    post = Compose([Activationsd(keys="pred", sigmoid=True), AsDiscreted(keys="pred", threshold=0.5)])
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=val_loader, network=net, inferer=inferer, postprocessing=post,
        key_val_metric={"val_mean_dice": MeanDice(include_background=True, output_transform=from_engine(["pred", "label"]))},
        val_handlers=[CheckpointSaver(save_dir=str(out_dir), save_dict={"net": net}, save_key_metric=True, key_metric_filename="best.pt")],
    )
    if recipe == "monai_baseline":
        loss = DiceFocalLoss(sigmoid=True)
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        scheduler = None
    else:
        loss = DiceCELoss(sigmoid=True)
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max_epochs, power=0.9)
    handlers = [ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True)]
    if scheduler is not None:
        handlers.append(LrScheduleHandler(scheduler, print_lr=False))
    handlers.append(StatsHandler(tag_name="train_loss", output_transform=from_engine(["loss"], first=True), iteration_log=False))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=max_epochs, train_data_loader=train_loader, network=net,
        optimizer=optimizer, loss_function=loss, inferer=SimpleInferer(), train_handlers=handlers,
    )
    budget = TimeBudget(budget_s, clock, evaluator=evaluator, lr_scheduler=scheduler)
    budget.attach(trainer)
    trainer.run()

    net.load_state_dict(torch.load(out_dir / "best.pt", weights_only=True))
    net.eval()
    pred_dir = out_dir / "predictions"
    saver = SaveImage(output_dir=str(pred_dir), output_postfix="pred", output_dtype="uint8", separate_folder=False, resample=False, print_log=False)
    test_ds = CacheDataset(files["test"], Compose(load), cache_rate=0.0, progress=False)
    written = []
    with torch.no_grad():
        for item in test_ds:
            logits = inferer(item["image"][None], net)
            pred = post({"pred": decollate_batch(logits)[0]})["pred"]
            saver(pred.as_tensor(), meta_data=item["image"].meta)
            name = Path(item["image"].meta["filename_or_obj"]).name.replace(".nii.gz", "")
            written.append((name, pred_dir / f"{name}_pred.nii.gz", Path(item["label"].meta["filename_or_obj"])))
    return {
        "predictions": written,
        "epochs": int(trainer.state.epoch),
        "train_seconds": budget.spent,
        "best_val_dice": float(evaluator.state.best_metric),
    }
