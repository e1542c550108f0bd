"""Command line: ``vessel-pipeline <command>`` or ``python -m pipeline <command>``.

Commands:
    demo            train on data_samples/, evaluate the held-out test cases, print a per-case table
    train           train with the bundle (bundles/coronary_vessel_seg/configs/train.json) and overrides
    evaluate        score prediction NIfTI files against label files (--pred/--label or --pairs), or a trained
                    checkpoint on a list of the datalist (--checkpoint: the bundle's evaluate.json)
    infer           sliding-window inference of NIfTI images with a checkpoint (the bundle's inference.json)

train, infer, demo and evaluate --checkpoint run the bundle's configs; their options are bundle overrides.
    make-phantoms   generate synthetic coronary-like CT volumes and labels
    plan            fingerprint a dataset and write its training plan (DATASET_DIR/plan.json)
    compare         train recipes with several seeds on a dataset and compare them on its test list, with statistics

Exit codes: 0 done, 1 some case could not be scored (the reasons are in the table and the CSV), 2 bad command input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli_compare import add_compare_parser, run_compare
from pipeline.cli_plan import add_plan_parser, run_plan
from pipeline.evaluation import command as evaluate_files

__all__ = ["main", "build_parser"]

logger = logging.getLogger("pipeline")

#: epochs of ``demo`` unless --epochs is given
DEMO_EPOCHS = 40

_CHECKPOINT_HELP = (
    "a run folder (its model.pt), a checkpoint file, or a run's checkpoints/ folder (its best one); the run's "
    "config.json gives the network and preprocessing"
)


def _add_training_args(p: argparse.ArgumentParser, output_dir: str, existing: str | None) -> None:
    """The training options: each one a bundle key (given ones only; the bundle's train.json holds the defaults)."""
    p.add_argument("--dataset-dir", default=None, help="folder with the volumes and dataset.json (default: data_samples/)")
    p.add_argument("--datalist", default=None, help="datalist JSON (default: DATASET_DIR/dataset.json)")
    p.add_argument("--output-dir", default=output_dir, help="the run folder: checkpoints, model.pt, config, history")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (extends a resumed run)")
    p.add_argument("--val-interval", type=int, default=None, help="validate every N epochs")
    p.add_argument("--patch-size", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"))
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    p.add_argument("--amp", action="store_true", default=None, help="automatic mixed precision")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes")
    p.add_argument("--cache", default=None, metavar="auto|ram|disk|none",
                   help="where the deterministic preprocessing of the training volumes is kept: auto (the default: RAM "
                   "when the data set's measured size fits half the available memory, else disk, and the log says "
                   "why), ram (MONAI CacheDataset), disk (PersistentDataset in --cache-dir) or none (recomputed every "
                   "epoch)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="the disk cache's folder, shareable between runs (default: ~/.cache/vessel-pipeline/datasets)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--loss-preset", "--loss", dest="loss_preset", default=None, metavar="PRESET",
                   help="loss preset (vessel_skeleton_recall, vessel_cldice, vessel_topology, default_segmentation, ...)")
    p.add_argument("--loss-schedule", default=None, metavar="TYPE",
                   help="term weights per epoch: default (the preset's own), constant, adaptive, cosine, step, performance")
    p.add_argument("--loss-schedule-params", default=None, metavar="JSON",
                   help='the schedule\'s parameters as JSON, e.g. \'{"patience": 3, "shift": 0.1}\'')
    p.add_argument("--checkpoint-strategy", default=None, metavar="NAME",
                   help="best, epoch, interval, all, adaptive, performance_based, time_based")
    p.add_argument("--max-checkpoints", type=int, default=None, help="checkpoints the strategy keeps")
    p.add_argument("--resume", default=None, metavar="auto|best|last|PATH", help="continue a run from a checkpoint")
    p.add_argument("--set", dest="bundle_set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other bundle key, VALUE as JSON where it parses, e.g. --set network_def#channels=[8,16,32]")
    p.add_argument("--existing", default=existing, choices=("error", "replace", "keep"),
                   help="a fresh run in a folder with an earlier run's checkpoints: refuse (error, the bundle's "
                   "default), replace them once the first new checkpoint is saved, or keep them")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vessel-pipeline", description="Vessel segmentation on MONAI and Ignite.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on data_samples/, then evaluate the held-out test cases")
    _add_training_args(demo, "runs/demo", "replace")
    demo.set_defaults(epochs=DEMO_EPOCHS)  # data_samples/plan.json plans a full training; the demo is a short one

    train = sub.add_parser("train", help="train with the bundle's train.json and these overrides")
    _add_training_args(train, "runs/train", None)

    ev = sub.add_parser(
        "evaluate",
        help="score prediction files against labels (--pred/--label or --pairs), or a checkpoint (--checkpoint)",
        description=evaluate_files.DESCRIPTION,
    )
    evaluate_files.add_arguments(ev)
    ckpt = ev.add_argument_group("scoring a checkpoint")
    ckpt.add_argument("--checkpoint", default=None, help=_CHECKPOINT_HELP)
    ckpt.add_argument("--dataset-dir", default=None, help="default: data_samples/")
    ckpt.add_argument("--datalist", default=None)
    ckpt.add_argument("--split", default="test", help="list of the datalist to score (default: test)")
    ckpt.add_argument("--device", default=None, help="'auto' (the default), 'cpu', 'cuda' or 'cuda:N'")

    inf = sub.add_parser("infer", help="predict NIfTI images with a checkpoint, on each input's grid and affine")
    inf.add_argument("--checkpoint", required=True, help=_CHECKPOINT_HELP)
    inf.add_argument("--input", required=True, nargs="+", help="NIfTI files, or folders of them")
    inf.add_argument("--out", required=True, help="folder for <name>_pred.nii.gz")
    inf.add_argument("--device", default=None, help="'auto' (the default), 'cpu', 'cuda' or 'cuda:N'")

    ph = sub.add_parser("make-phantoms", help="generate synthetic coronary-like CT volumes and labels")
    ph.add_argument("--out", required=True, help="output folder")
    ph.add_argument("--num", type=int, default=10, help="number of image/label pairs")
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--kind", choices=("tubes", "ccta"), default="tubes", help="tubes in a box, or a realistic chest CT")
    ph.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"), help="tubes: 96 96 64; ccta: 512 512 224-288")
    ph.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"), help="tubes: 0.4 0.4 0.6; ccta: drawn")
    ph.add_argument("--crop", type=int, nargs=3, metavar=("X", "Y", "Z"), help="ccta: render only this window around the heart")
    ph.add_argument("--segments", action="store_true", help="ccta: also write <case>_segments.nii.gz (named segments)")
    ph.add_argument("--trees", type=int, default=2, help="tubes: vessel trees per volume")
    ph.add_argument("--split", type=float, nargs=3, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    add_plan_parser(sub)
    add_compare_parser(sub)
    return parser


def _json_object(text: str | None, option: str) -> dict | None:
    from pipeline.errors import SettingsError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{option} must be a JSON object like '{{\"patience\": 3}}': {error}.") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{option} must be a JSON object like '{{\"patience\": 3}}', got {text!r}.")
    return value


def _set_overrides(pairs: Sequence[str]) -> dict:
    """``--set KEY=VALUE`` options as bundle overrides (VALUE parsed as JSON where it parses, else text)."""
    from pipeline.errors import SettingsError

    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set takes KEY=VALUE (a bundle key, e.g. network_def#dropout=0.1), got {pair!r}.")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def _device(name: str | None) -> str | None:
    """A ``--device`` as the bundle's ``device`` expression (checked here: a missing GPU is bad input)."""
    from pipeline.workflows import resolve_device

    return None if name is None else f"$torch.device('{resolve_device(name)}')"


def _data_overrides(args: argparse.Namespace) -> dict:
    given = {name: getattr(args, name, None) for name in ("dataset_dir", "datalist")}
    given["device"] = _device(args.device)
    return {k: v for k, v in given.items() if v is not None}


def _training_overrides(args: argparse.Namespace) -> dict:
    """The training options given, as overrides of the bundle's keys."""
    given = {
        "epochs": args.epochs,
        "val_interval": args.val_interval,
        "patch_size": list(args.patch_size) if args.patch_size else None,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "amp": args.amp,
        "num_workers": args.workers,
        "cache": args.cache,
        "cache_dir": str(Path(args.cache_dir).absolute()) if args.cache_dir else None,
        "loss_preset": args.loss_preset,
        "loss_schedule": args.loss_schedule,
        "loss_schedule_params": _json_object(args.loss_schedule_params, "--loss-schedule-params"),
        "checkpoint_strategy": args.checkpoint_strategy,
        "max_checkpoints": args.max_checkpoints,
        "resume": args.resume,
        "existing": args.existing,
    }
    overrides = {**_data_overrides(args), **{k: v for k, v in given.items() if v is not None}, **_set_overrides(args.bundle_set)}
    overrides["progress"] = not args.no_progress and sys.stderr.isatty()
    return overrides


def _train(args: argparse.Namespace):
    from pipeline.workflows import train_bundle

    run = train_bundle(args.output_dir, _training_overrides(args))
    print(
        f"trained {len(run.history)} epochs in {run.seconds:.0f} s; best validation mean Dice {run.best_metric:.4f} at "
        f"epoch {run.best_epoch}; checkpoint {run.best_checkpoint}; weights {run.output_dir / 'model.pt'}"
    )
    return run


def _demo(args: argparse.Namespace):
    """Train with the bundle, then score the held-out test list with its evaluate.json."""
    from pipeline.workflows import evaluate_bundle

    run = _train(args)
    report = evaluate_bundle(run.output_dir, run.output_dir / "evaluation", "test", _data_overrides(args))
    if report.n_failed:
        print(f"error: {report.n_failed} of {len(report.results)} cases could not be scored (see the table).", file=sys.stderr)
    return report


def _run_folder(checkpoint: str) -> Path:
    """The run folder of a checkpoint (where its config.json is), or the checkpoint's own folder."""
    from pipeline.bundle import find_run_config

    config = find_run_config(checkpoint)
    path = Path(checkpoint)
    return config.parent if config is not None else (path if path.is_dir() else path.parent)


def _evaluate_checkpoint(args: argparse.Namespace, settings):
    """Predict one list of the datalist with a checkpoint through the bundle's evaluate.json, then score it."""
    from pipeline.workflows import evaluate_bundle

    out = args.out or _run_folder(args.checkpoint) / "evaluation" / args.split
    overrides = {**_data_overrides(args), "tolerance_mm": settings.tolerance_mm, "eval_workers": args.workers}
    return evaluate_bundle(args.checkpoint, Path(out).resolve(), args.split, overrides)


def _evaluate_command(args: argparse.Namespace):
    return evaluate_files.run(args, checkpoint=lambda settings: _evaluate_checkpoint(args, settings))


def _infer(args: argparse.Namespace) -> list:
    from pipeline.workflows import infer_bundle

    written = infer_bundle(args.checkpoint, args.input, args.out, _data_overrides(args))
    for image, pred in written:
        print(f"{image} -> {pred}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code: 0 done, 1 some case could not be scored, 2 bad input (the reason in one
    line on stderr).

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
            from pipeline.phantoms import phantom_config, write_phantom_dataset

            cfg = phantom_config(args.kind, args.shape, args.spacing, args.trees, args.crop)
            try:
                path = write_phantom_dataset(args.out, args.num, cfg, args.seed, args.split, segments=args.segments)
            except RuntimeError as e:  # no room for the requested trees
                raise InputError(f"{e}; ask for fewer --trees or a larger --shape.") from None
            print(f"wrote {args.num} image/label pairs and {path}")
        elif args.command == "train":
            _train(args)
        elif args.command == "evaluate":
            report = _evaluate_command(args)
            return 1 if report.n_failed else 0
        elif args.command == "infer":
            _infer(args)
        elif args.command == "plan":
            run_plan(args)
        elif args.command == "compare":
            run_compare(args)
        elif args.command == "demo":
            report = _demo(args)
            return 1 if report.n_failed else 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
