"""Quick Start (the seed's "Basic Setup"): one line of set-up, then the usual hand-written loop.

    python examples/quick_start.py [--epochs 10] [--out runs/examples/quick_start]
"""

from __future__ import annotations

from _common import data_loaders, model_and_optimizer, parse_args

from pipeline import quick_training_setup


def main() -> None:
    args = parse_args("quick_start", __doc__)
    train_loader, val_loader = data_loaders(args)
    model, optimizer, device = model_and_optimizer(args)
    scheduler = None

    # one-line setup with sensible defaults: 0.7 Dice + 0.3 BCE, keep the best checkpoints by val_dice
    manager = quick_training_setup(model_dir=args.out, model_name="coronary_unet_v1")

    for epoch in range(args.epochs):
        for batch in train_loader:
            inputs, targets = batch["image"], batch["label"]
            step_metrics = manager.train_step(model, (inputs, targets), optimizer, device)
        val_metrics = manager.validation_step(model, val_loader, device)
        # as in the seed: the step values in it (loss, ...) are replaced by the epoch means the history records
        checkpoint_path = manager.save_checkpoint(model, optimizer, scheduler, epoch, {**step_metrics, **val_metrics})
        epoch_summary = manager.end_epoch(epoch, step_metrics, val_metrics)
        print(f"epoch {epoch + 1}: loss {epoch_summary['loss']:.4f}  val_dice {val_metrics['val_dice']:.4f}  "
              f"checkpoint {checkpoint_path.name if checkpoint_path else '-'}")

    export_path = manager.finish()
    summary = manager.get_training_summary()
    print(f"best val_dice {summary['model_info']['best_metric']:.4f} at epoch {summary['model_info']['best_epoch']}; "
          f"{summary['checkpoint_info']['total_checkpoints']} checkpoint(s); exported {export_path}")


if __name__ == "__main__":
    main()
