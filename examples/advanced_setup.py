"""Advanced Setup: presets for the loss and the checkpoints, MLflow on (``enhanced=True``), and MONAI's Ignite engines
instead of a hand-written loop: ``manager.attach(trainer, evaluator)`` wires the same loss, checkpoints and tracking.

    python examples/advanced_setup.py [--epochs 10] [--out runs/examples/advanced_setup]

The MLflow run lands in ``<out>/mlflow.db`` (no server); browse it with ``mlflow ui --backend-store-uri
sqlite:///<out>/mlflow.db`` once the full ``mlflow`` package is installed (``pip install -e ".[mlflow-ui]"``).
"""

from __future__ import annotations

from _common import data_loaders, model_and_optimizer, parse_args

from pipeline import create_evaluator, create_training_manager, create_trainer


def main() -> None:
    args = parse_args("advanced_setup", __doc__)
    train_loader, val_loader = data_loaders(args)
    model, optimizer, device = model_and_optimizer(args)

    manager = create_training_manager(
        model_dir=args.out,
        model_name="coronary_unet_focal",
        loss_preset="focal_segmentation",  # 0.6 Dice + 0.4 focal BCE
        checkpoint_preset="adaptive",  # the adaptive checkpoint strategy
        enhanced=True,  # MLflow tracking
    )

    evaluator = create_evaluator(model, val_loader, device, roi_size=args.patch)
    trainer = create_trainer(
        model, train_loader, manager.loss_function, optimizer, device, max_epochs=args.epochs, evaluator=evaluator,
        progress_bar=False,
    )
    manager.attach(trainer, evaluator)  # resume="auto" would continue from the newest checkpoint and MLflow run
    trainer.run()

    summary = manager.get_training_summary()
    print(f"trained {summary['training_progress']['total_epochs']} epochs; best {summary['model_info']['monitor_metric']} "
          f"{summary['model_info']['best_metric']:.4f}; {summary['checkpoint_info']['total_checkpoints']} checkpoint(s); "
          f"MLflow run {summary['tracking']['run_id']} in {summary['tracking']['tracking_uri']}")


if __name__ == "__main__":
    main()
