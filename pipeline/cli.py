"""Command line: ``vessel-pipeline <command>`` or ``python -m pipeline <command>``.

Commands:
    demo            train on data_samples/, evaluate the held-out test cases, print a per-case table
    train           train on a dataset folder with an MSD-style dataset.json
    evaluate        score prediction NIfTI files against label files (--pred/--label or --pairs), or a trained
                    checkpoint on a list of the datalist (--checkpoint: infer, then score)
    infer           sliding-window inference of NIfTI images with a checkpoint, written on each input's grid
    make-phantoms   generate synthetic coronary-like CT volumes and labels
    plan            fingerprint a dataset and write its training plan (DATASET_DIR/plan.json)
    compare         train recipes with several seeds on a dataset and compare them on its test list, with statistics

Exit codes: 0 done, 1 some case could not be scored (the reasons are in the table and the CSV), 2 bad command input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli_compare import add_compare_parser, run_compare
from pipeline.cli_plan import add_plan_parser, run_plan
from pipeline.evaluation import command as evaluate_files

#: the repository's sample data, whatever the current folder (here, not imported: --help must not import torch)
DEFAULT_DATA = str(Path(__file__).resolve().parents[1] / "data_samples")

__all__ = ["main", "build_parser"]

logger = logging.getLogger("pipeline")

_CHECKPOINT_HELP = "checkpoint file, or a run's checkpoints/ folder for its best one (the run's config.json is found next to it)"


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
    p.add_argument("--loss", default=None, metavar="PRESET",
                   help="a loss preset (vessel_cldice, vessel_skeleton_recall, vessel_topology, default_segmentation, ...) "
                   "instead of MONAI's DiceFocalLoss")
    p.add_argument("--loss-schedule", default=None, metavar="TYPE",
                   help="change the preset's term weights each epoch: adaptive, cosine, step or performance")
    p.add_argument("--loss-schedule-params", default=None, metavar="JSON",
                   help='the schedule\'s parameters as JSON, e.g. \'{"patience": 3, "shift": 0.1}\'')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vessel-pipeline", description="Vessel segmentation on MONAI and Ignite.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on data_samples/, then evaluate the held-out test cases")
    _add_training_args(demo, DEFAULT_DATA, "runs/demo")

    train = sub.add_parser("train", help="train a UNet on a dataset folder")
    _add_training_args(train, DEFAULT_DATA, "runs/train")

    ev = sub.add_parser(
        "evaluate",
        help="score prediction files against labels (--pred/--label or --pairs), or a checkpoint (--checkpoint)",
        description=evaluate_files.DESCRIPTION,
    )
    evaluate_files.add_arguments(ev)
    ckpt = ev.add_argument_group("scoring a checkpoint")
    ckpt.add_argument("--checkpoint", default=None, help=_CHECKPOINT_HELP)
    ckpt.add_argument("--dataset-dir", default=str(DEFAULT_DATA))
    ckpt.add_argument("--datalist", default=None)
    ckpt.add_argument("--split", default="test", help="list of the datalist to score (default: test)")
    ckpt.add_argument("--device", default="auto")

    inf = sub.add_parser("infer", help="predict NIfTI images with a checkpoint, on each input's grid and affine")
    inf.add_argument("--checkpoint", required=True, help=_CHECKPOINT_HELP)
    inf.add_argument("--input", required=True, nargs="+", help="NIfTI files, or folders of them")
    inf.add_argument("--out", required=True, help="folder for <name>_pred.nii.gz")
    inf.add_argument("--device", default="auto")

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
        "loss": args.loss,
        "loss_schedule": args.loss_schedule,
        "loss_schedule_params": _json_object(args.loss_schedule_params, "--loss-schedule-params"),
    }
    config = TrainingConfig(**{k: v for k, v in overrides.items() if v is not None})
    config.progress_bar = not args.no_progress and sys.stderr.isatty()
    return config


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


def _train(args: argparse.Namespace):
    from pipeline.workflows import run_training

    result = run_training(_training_config(args))
    print(
        f"trained {len(result.history)} epochs in {result.seconds:.0f} s; best validation mean Dice "
        f"{result.best_metric:.4f} at epoch {result.best_epoch}; checkpoint {result.best_checkpoint}"
    )
    return result


def _bundle_overrides(args: argparse.Namespace) -> dict:
    """The demo's options as overrides of the bundle's keys (only those given)."""
    from pipeline.errors import SettingsError
    from pipeline.workflows import resolve_device

    if args.loss_schedule_params is not None and args.loss_schedule is None:
        raise SettingsError("--loss-schedule-params are given without a --loss-schedule to take them.")
    if args.loss is not None and args.loss_schedule is None:
        raise SettingsError(
            f"the demo's bundle fades the loss terms in with a schedule: give --loss-schedule with --loss {args.loss} "
            "(e.g. cosine with --loss-schedule-params)."
        )
    given = {
        "dataset_dir": args.dataset_dir,
        "datalist": args.datalist,
        "epochs": args.epochs,
        "val_interval": args.val_interval,
        "patch_size": list(args.patch_size) if args.patch_size else None,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "device": None if args.device is None else resolve_device(args.device),
        "loss_preset": args.loss,
        "loss_schedule": args.loss_schedule,
        "loss_schedule_params": _json_object(args.loss_schedule_params, "--loss-schedule-params"),
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    overrides["progress"] = not args.no_progress and sys.stderr.isatty()
    return overrides


def _demo(args: argparse.Namespace):
    """Train with the bundle (bundles/coronary_vessel_seg), then score the held-out test list with its evaluate.json."""
    from pipeline.workflows.bundle import evaluate_bundle, train_bundle

    overrides = _bundle_overrides(args)
    run = train_bundle(args.output_dir, overrides)
    print(
        f"trained {len(run.history)} epochs in {run.seconds:.0f} s; best validation mean Dice {run.best_metric:.4f} at "
        f"epoch {run.best_epoch}; checkpoint {run.best_checkpoint}"
    )
    report = evaluate_bundle(run, overrides, split="test")
    if report.n_failed:
        print(f"error: {report.n_failed} of {len(report.results)} cases could not be scored (see the table).", file=sys.stderr)
    return report


def _evaluate(checkpoint, dataset_dir, datalist, split, output_dir, device, settings=None, workers: int = 1):
    """Predict one list of the datalist with a checkpoint, print the Dice table, then score the written predictions
    with the evaluation tool (into ``output_dir/evaluation``)."""
    import tempfile

    from pipeline.data import check_items, load_datalist
    from pipeline.evaluation import CasePair, EvaluationSettings
    from pipeline.workflows import format_case_table, load_network, predict_and_score, resolve_device

    device = resolve_device(device)
    items = load_datalist(dataset_dir, split, datalist)
    check_items(items)
    network, config = load_network(checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        pred_dir = Path(tmp) if output_dir is None else Path(output_dir) / "predictions"
        scores = predict_and_score(network, config, items, device, pred_dir)
        print(f"\n{split} cases scored on their original grid ({checkpoint}):\n")
        print(format_case_table(scores))
        if output_dir is not None:
            rows = [{**dataclasses.asdict(s), "prediction": str(s.prediction)} for s in scores]
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "scores.json").write_text(json.dumps(rows, indent=2) + "\n")
        pairs = [CasePair(s.case, s.prediction, Path(it["label"])) for s, it in zip(scores, items)]
        out = None if output_dir is None else Path(output_dir) / "evaluation"
        settings = settings or EvaluationSettings()
        title = f"evaluation tool (mm, NSD tolerance {settings.tolerance_mm:g} mm):"
        report = evaluate_files.score_and_report(pairs, out, settings, workers, title)
    return scores, report


def _evaluate_command(args: argparse.Namespace):
    return evaluate_files.run(args, checkpoint=lambda settings: _evaluate(
        args.checkpoint, args.dataset_dir, args.datalist, args.split, args.out, args.device, settings, args.workers)[1])


def _input_images(inputs: Sequence[str]) -> list[str]:
    from pipeline.errors import InputError
    from pipeline.evaluation.pairing import NIFTI_SUFFIXES

    images = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES))
            if not found:
                raise InputError(f"input folder '{path}' holds no NIfTI file (*.nii, *.nii.gz).")
            images += found
        elif path.is_file():
            images.append(str(path))
        else:
            raise InputError(f"input '{path}' is neither a NIfTI file nor a folder.")
    return images


def _infer(args: argparse.Namespace) -> list:
    from pipeline.data import check_items
    from pipeline.workflows import load_network, resolve_device
    from pipeline.workflows.prediction import predict_volumes

    images = _input_images(args.input)
    check_items([{"image": image} for image in images])
    network, config = load_network(args.checkpoint)
    written = predict_volumes(network, config, images, resolve_device(args.device), args.out)
    for image, pred in zip(images, written):
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
