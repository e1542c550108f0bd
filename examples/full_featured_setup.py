"""Full Featured Setup: a TrainingManager configured piece by piece (loss with an adaptive weight schedule, automatic
checkpoint strategy, MLflow), the hand-written loop, then the summary and the exported training data.

    python examples/full_featured_setup.py [--epochs 10] [--out runs/examples/full_featured_setup]
"""

from __future__ import annotations

import torch
from _common import data_loaders, model_and_optimizer, parse_args

from pipeline import TrainingManager


def main() -> None:
    args = parse_args("full_featured_setup", __doc__)
    train_loader, val_loader = data_loaders(args)
    model, optimizer, device = model_and_optimizer(args)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1), eta_min=1e-4)

    manager = TrainingManager(model_dir=args.out, model_name="coronary_unet", enable_mlflow=True)
    manager.setup_loss_function({
        "type": "combined",
        "dice_weight": 0.8,
        "bce_weight": 0.2,
        "scheduler": {"type": "adaptive"},  # weights follow how fast each term falls (DWA)
    })
    manager.setup_checkpointing({"manager_type": "auto", "auto_strategy": "adaptive", "max_checkpoints": 3})
    # 0 in a fresh folder; continues an interrupted run (run again with more --epochs to extend it: the LR cosine is
    # stretched to the new last epoch instead of climbing back up)
    start = manager.resume(model, optimizer, scheduler, num_epochs=args.epochs)

    for epoch in range(start, args.epochs):
        for batch in train_loader:
            step_metrics = manager.train_step(model, (batch["image"], batch["label"]), optimizer, device)
        scheduler.step()
        val_metrics = manager.validation_step(model, val_loader, device)
        manager.save_checkpoint(model, optimizer, scheduler, epoch, val_metrics)
        epoch_summary = manager.end_epoch(epoch, step_metrics, val_metrics)
        weights = " ".join(f"{k[len('weight_'):]} {v:.3f}" for k, v in epoch_summary.items() if k.startswith("weight_"))
        print(f"epoch {epoch + 1}: loss {epoch_summary['loss']:.4f}  val_dice {val_metrics['val_dice']:.4f}  weights {weights}  "
              f"next lr {scheduler.get_last_lr()[0]:.2e}")

    export_path = manager.finish()
    summary = manager.get_training_summary()
    print(f"Total epochs: {summary['training_progress']['total_epochs']}")
    print(f"Best metric: {summary['model_info']['best_metric']}")
    print(f"Checkpoints saved: {summary['checkpoint_info']['total_checkpoints']}")
    print(f"Checkpoints: {[c['path'].name for c in manager.checkpoint_manager.list_checkpoints()]}")
    print(f"Exported: {export_path}")
    print(f"MLflow: run {summary['tracking']['run_id']} in {summary['tracking']['tracking_uri']}")


if __name__ == "__main__":
    main()
