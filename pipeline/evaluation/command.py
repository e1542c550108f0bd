"""``vessel-pipeline evaluate``: its options and its run.

Only the standard library and the settings are imported here, so ``evaluate --help`` and every check of the command
line answer at once; numpy, nibabel, scipy and matplotlib are imported when the scoring starts. The output folder is
checked (and created) before any case is scored.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable

from pipeline.errors import InputError, SettingsError
from pipeline.evaluation.settings import AGGREGATIONS, GEOMETRY_TOLERANCE_MM, EvaluationSettings

__all__ = ["DESCRIPTION", "add_arguments", "parse_shard", "prepare_output", "run", "score_and_report", "settings_from", "show_report"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

DESCRIPTION = (
    "Score binary (or, with --labels, multi-label) prediction NIfTI files against their labels in mm: Dice, IoU, "
    "precision, recall, volume difference, clDice, HD95, ASSD, NSD, component counts. A prediction in another "
    "orientation than its label is reoriented (lossless); other grids are refused. Writes cases.csv, summary.json "
    "and evaluation.png to --out. Missing or failed cases count as the worst value in the means (--aggregation "
    "nnunet: as nnU-Net v2's summary.json). With --checkpoint, the datalist's images are predicted first."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``evaluate`` that score files (``--checkpoint`` and its options are the caller's)."""
    files = parser.add_argument_group("scoring files")
    files.add_argument("--pred", default=None, metavar="DIR", help="folder of prediction NIfTI files")
    files.add_argument("--label", default=None, metavar="DIR", help="folder of label NIfTI files (paired by name)")
    files.add_argument("--pairs", default=None, metavar="LIST",
                       help="CSV or JSON list of pairs instead (columns prediction/label, or nnU-Net's "
                       "prediction_file/reference_file; an nnU-Net summary.json works too)")
    files.add_argument("--recursive", action="store_true",
                       help="search subfolders too (MONAI SaveImage's s0001/s0001_seg.nii.gz, TotalSegmentator's "
                       "<case>/<structure>.nii.gz)")
    files.add_argument("--tolerance-mm", type=float, default=1.0, metavar="MM", help="NSD tolerance in mm (default 1)")
    files.add_argument("--labels", type=int, nargs="+", default=None, metavar="V", help="label values of multi-label files")
    files.add_argument("--threshold", type=float, default=None, metavar="T",
                       help="probability maps: a prediction voxel >= T is foreground")
    files.add_argument("--nonzero", action="store_true",
                       help="any nonzero voxel is foreground, in each file separately (e.g. 0/255 against 0/1)")
    files.add_argument("--betti1", action="store_true", help="also count tunnels (first Betti number)")
    files.add_argument("--geometry-tolerance-mm", type=float, default=GEOMETRY_TOLERANCE_MM, metavar="MM",
                       help="largest distance between corresponding voxel centres of prediction and label, in "
                       f"world space after reorientation (default {GEOMETRY_TOLERANCE_MM:g} mm)")
    files.add_argument("--aggregation", choices=AGGREGATIONS, default="worst",
                       help="worst: failed/missing cases count as the worst value (default); nnunet: nnU-Net v2's "
                       "summary.json (both empty -> NaN, nanmean, failed cases left out)")
    files.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes")
    parser.add_argument("--out", "--output-dir", dest="out", default=None, metavar="DIR",
                        help="write cases.csv, summary.json, evaluation.png (and predictions with --checkpoint) here")
    many = parser.add_argument_group("spreading many cases over jobs")
    many.add_argument("--shard", default=None, metavar="I/N",
                      help="score only the I-th of N equal parts of the cases (I from 1 to N) and write a partial "
                      "result to --out")
    many.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                      help="combine the partial results of all N shards into the reports of one run")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N``.

    Raises:
        SettingsError: not of that form, or ``I`` out of range.
    """
    match = _SHARD.match(text)
    if not match:
        raise SettingsError(f"--shard must be I/N, e.g. 2/8 (the 2nd of 8 parts), got {text!r}.")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise SettingsError(f"--shard {text}: I must be between 1 and N (N >= 1), got I={index}, N={count}.")
    return index, count


def settings_from(args: argparse.Namespace) -> EvaluationSettings:
    """The scoring settings the options give.

    Raises:
        SettingsError: a value out of range or options that cannot go together.
    """
    return EvaluationSettings(
        tolerance_mm=args.tolerance_mm,
        labels=None if args.labels is None else tuple(args.labels),
        betti1=args.betti1,
        geometry_tolerance_mm=args.geometry_tolerance_mm,
        threshold=args.threshold,
        nonzero=args.nonzero,
        aggregation=args.aggregation,
    )


def prepare_output(out: str | os.PathLike | None) -> bool:
    """Create the output folder if needed and check that a file can be written into it.

    Returns:
        whether the folder was created here.

    Raises:
        InputError: it is a file, or it cannot be created or written.
    """
    if out is None:
        return False
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder '{folder}' is a file; give a folder for --out.")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InputError(f"output folder '{folder}' cannot be written: {e.strerror or e}.") from None
    return created


def score_and_report(pairs, out, settings: EvaluationSettings, workers: int, title: str):
    """Score ``pairs``, print the per-case table and the means, write the reports to ``out`` (if given).

    Returns:
        the :class:`~pipeline.evaluation.EvaluationReport`.
    """
    from pipeline.evaluation.tool import run_evaluation

    return show_report(run_evaluation(pairs, out, settings, workers), title)


def show_report(report, title: str):
    """Print the per-case table, what was written, then the means (the console ends with them); returns ``report``."""
    from pipeline.evaluation.report import format_means, format_results_table

    print(f"\n{title}\n")
    print(format_results_table(report.results))
    if report.files:
        print(f"\nwrote {', '.join(str(p) for p in report.files.values())}")
    else:
        print("\nno --out given: nothing written")
    print()
    print(format_means(report.summary))
    if report.n_failed:
        print(f"error: {report.n_failed} of {len(report.results)} cases could not be scored (see the table).", file=sys.stderr)
    return report


def _file_pairs(args: argparse.Namespace):
    from pipeline.evaluation.pairing import pair_by_name, read_pairs_file

    if args.pairs is not None:
        return read_pairs_file(args.pairs)
    return pair_by_name(args.pred, args.label, recursive=args.recursive)


def _check_modes(args: argparse.Namespace) -> None:
    given = [name for name in ("pred", "label", "pairs") if getattr(args, name) is not None]
    if args.merge is not None:
        extra = given + [n for n in ("checkpoint", "shard") if getattr(args, n, None) is not None]
        if extra:
            raise InputError(f"--merge combines finished partial results; drop {['--' + g for g in extra]}.")
        if settings_from(args) != EvaluationSettings():
            raise InputError("--merge scores nothing: the partial results carry the settings they were scored with; "
                             "drop the scoring options.")
        return
    if getattr(args, "checkpoint", None) is not None:
        given += ["shard"] if args.shard is not None else []
        if given:
            raise InputError(f"--checkpoint predicts the datalist's images itself; drop {['--' + g for g in given]}.")
        return
    if args.pairs is not None and (args.pred or args.label):
        raise InputError("give either --pairs or --pred with --label, not both.")
    if args.pairs is not None and args.recursive:
        raise InputError("--recursive searches the --pred and --label folders; a --pairs list names its files.")
    if args.pairs is None and not (args.pred and args.label):
        raise InputError("evaluate needs --pred DIR and --label DIR, or --pairs LIST (or --checkpoint to score a checkpoint).")
    if args.shard is not None and args.out is None:
        raise InputError("--shard writes a partial result: give --out for it.")


def run(args: argparse.Namespace, checkpoint: Callable[[EvaluationSettings], object] | None = None):
    """Run ``evaluate`` with parsed options.

    Args:
        args: the options of :func:`add_arguments` (and ``checkpoint`` if the caller added it).
        checkpoint: scores ``args.checkpoint`` with the given settings and returns the report (the caller's, as it
            needs the training side).

    Returns:
        the report (``n_failed`` gives the exit code).

    Raises:
        InputError: bad options or files, before anything is written.
    """
    _check_modes(args)
    settings = None if args.merge is not None else settings_from(args)
    shard = None if args.shard is None else parse_shard(args.shard)
    created = prepare_output(args.out)
    try:
        if args.merge is not None:
            from pipeline.evaluation import shards

            results, settings = shards.merge_partials(args.merge)
            report = shards.report_merged(results, settings, args.out)
            return show_report(report, f"{len(results)} cases merged (mm, NSD tolerance {settings.tolerance_mm:g} mm):")
        if getattr(args, "checkpoint", None) is not None:
            return checkpoint(settings)
        pairs = _file_pairs(args)
        if shard is not None:
            from pipeline.evaluation import shards

            return shards.score_shard(pairs, shard, settings, args.workers, args.out)
        title = f"{len(pairs)} cases (mm, NSD tolerance {settings.tolerance_mm:g} mm):"
        return score_and_report(pairs, args.out, settings, args.workers, title)
    except InputError:
        if created and not any(Path(args.out).iterdir()):
            Path(args.out).rmdir()
        raise
