"""Command line: ``vessel-pipeline <command>`` or ``python -m pipeline <command>``.

Commands:
    demo            train on data_samples/, evaluate the held-out test cases, print a per-case table
    train           train on a dataset folder with an MSD-style dataset.json
    evaluate        score a trained checkpoint on a list of the datalist (predictions written as NIfTI)
    make-phantoms   generate synthetic coronary-like CT volumes and labels
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from pipeline.workflows.config import DEFAULT_DATA

__all__ = ["main", "build_parser"]

logger = logging.getLogger("pipeline")


def _add_training_args(p: argparse.ArgumentParser, dataset_dir: Path | str, output_dir: str) -> None:
    p.add_argument("--dataset-dir", default=str(dataset_dir), help="folder with the volumes and dataset.json")
    p.add_argument("--datalist", default=None, help="datalist JSON (default: DATASET_DIR/dataset.json)")
    p.add_argument("--output-dir", default=output_dir, help="where checkpoints, config and history go")
    p.add_argument("--epochs", type=int, default=None, help="training epochs")
    p.add_argument("--val-interval", type=int, default=None, help="validate every N epochs")
    p.add_argument("--patch-size", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"))
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="'auto', 'cpu' or 'cuda'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vessel-pipeline", description="Vessel segmentation on MONAI and Ignite.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on data_samples/, then evaluate the held-out test cases")
    _add_training_args(demo, DEFAULT_DATA, "runs/demo")

    train = sub.add_parser("train", help="train a UNet on a dataset folder")
    _add_training_args(train, DEFAULT_DATA, "runs/train")

    ev = sub.add_parser("evaluate", help="score a trained checkpoint on one list of a datalist")
    ev.add_argument("--checkpoint", required=True, help="checkpoint file (its run's config.json is found next to it)")
    ev.add_argument("--dataset-dir", default=str(DEFAULT_DATA))
    ev.add_argument("--datalist", default=None)
    ev.add_argument("--split", default="test", help="list of the datalist to score (default: test)")
    ev.add_argument("--output-dir", default=None, help="write predictions (NIfTI) and scores.json here")
    ev.add_argument("--device", default="auto")

    ph = sub.add_parser("make-phantoms", help="generate synthetic coronary-like CT volumes and labels")
    ph.add_argument("--out", required=True, help="output folder")
    ph.add_argument("--num", type=int, default=10, help="number of image/label pairs")
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--shape", type=int, nargs=3, default=(96, 96, 64), metavar=("X", "Y", "Z"))
    ph.add_argument("--spacing", type=float, nargs=3, default=(0.4, 0.4, 0.6), metavar=("X", "Y", "Z"))
    ph.add_argument("--trees", type=int, default=2, help="vessel trees per volume")
    ph.add_argument("--split", type=float, nargs=3, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    return parser


def _training_config(args: argparse.Namespace):
    from pipeline.workflows import TrainingConfig

    overrides = {
        "dataset_dir": args.dataset_dir,
        "datalist": args.datalist,
        "output_dir": args.output_dir,
        "epochs": args.epochs,
        "val_interval": args.val_interval,
        "patch_size": tuple(args.patch_size) if args.patch_size else None,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "device": args.device,
    }
    config = TrainingConfig(**{k: v for k, v in overrides.items() if v is not None})
    config.progress_bar = not args.no_progress and sys.stderr.isatty()
    return config


def _train(args: argparse.Namespace):
    from pipeline.workflows import run_training

    result = run_training(_training_config(args))
    print(
        f"trained {len(result.history)} epochs in {result.seconds:.0f} s; best validation mean Dice "
        f"{result.best_metric:.4f} at epoch {result.best_epoch}; checkpoint {result.best_checkpoint}"
    )
    return result


def _evaluate(checkpoint, dataset_dir, datalist, split, output_dir, device) -> list:
    from pipeline.data import check_items, load_datalist
    from pipeline.workflows import format_case_table, load_network, predict_and_score, resolve_device

    device = resolve_device(device)
    items = load_datalist(dataset_dir, split, datalist)
    check_items(items)
    network, config = load_network(checkpoint)
    pred_dir = None if output_dir is None else Path(output_dir) / "predictions"
    scores = predict_and_score(network, config, items, device, pred_dir)
    print(f"\n{split} cases scored on their original grid ({checkpoint}):\n")
    print(format_case_table(scores))
    if output_dir is not None:
        rows = [{**dataclasses.asdict(s), "prediction": str(s.prediction)} for s in scores]
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "scores.json").write_text(json.dumps(rows, indent=2) + "\n")
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code: 0 done, 2 bad input (the reason in one line on stderr).

    Anything else that goes wrong is a bug, not bad input, and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    # MONAI's engines log every epoch and validation run at INFO; our EpochSummaryLogger says it in one line
    for name in ("ignite", "monai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from pipeline.errors import InputError

    try:
        if args.command == "make-phantoms":
            from pipeline.phantoms import PhantomConfig, write_phantom_dataset

            cfg = PhantomConfig(shape=tuple(args.shape), spacing=tuple(args.spacing), n_trees=args.trees)
            try:
                path = write_phantom_dataset(args.out, args.num, cfg, seed=args.seed, fractions=args.split)
            except RuntimeError as e:  # no room for the requested trees
                raise InputError(f"{e}; ask for fewer --trees or a larger --shape.") from None
            print(f"wrote {args.num} image/label pairs and {path}")
        elif args.command == "train":
            _train(args)
        elif args.command == "evaluate":
            _evaluate(args.checkpoint, args.dataset_dir, args.datalist, args.split, args.output_dir, args.device)
        elif args.command == "demo":
            result = _train(args)
            _evaluate(result.best_checkpoint, args.dataset_dir, args.datalist, "test", result.output_dir, args.device or "auto")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
