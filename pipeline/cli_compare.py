"""``vessel-pipeline compare``: train recipes with several seeds on a dataset and report which is better, with
statistics (:mod:`pipeline.workflows.comparison`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_compare_parser", "run_compare"]


def add_compare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``compare`` command on the CLI's sub-parsers."""
    from pipeline.recipes import RECIPES

    p = sub.add_parser(
        "compare",
        help="train recipes with several seeds on your data and compare them on the test list, with statistics",
        description="Each recipe trains through the bundle once per seed (for the same training time with "
        "--time-budget), the test list is scored with the evaluation tool, and OUT gets report.md, comparison.png, "
        "results.csv and summary.csv (mean, 95 %% interval, paired Wilcoxon p against the baseline) and one MLflow "
        "run per recipe and seed. Rerun the same command to continue a killed comparison.",
    )
    p.add_argument("--dataset-dir", required=True, help="folder with the volumes and dataset.json (with a 'test' list)")
    p.add_argument("--recipes", nargs="+", default=["default", "pre_plan"], metavar="RECIPE",
                   help=f"recipes to compare, the first is the baseline (valid: {', '.join(RECIPES)})")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per recipe (default 3)")
    p.add_argument("--time-budget", default=None, metavar="DURATION",
                   help="training time per run, e.g. 90s, 20m, 1.5h (CPU time of the process; validation not counted)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (with --time-budget: the most)")
    p.add_argument("--baseline", default=None, help="recipe the others are tested against (default: the first)")
    p.add_argument("--clock", default="process", choices=("process", "wall"), help="the time budget's clock")
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda'")
    p.add_argument("--out", default="runs/compare", help="comparison folder (default runs/compare)")
    return p


def run_compare(args: argparse.Namespace):
    """Run the comparison and print its table."""
    from pipeline.workflows.comparison import parse_duration, run_comparison

    budget = None if args.time_budget is None else parse_duration(args.time_budget)
    summary, files = run_comparison(
        args.dataset_dir, args.out, args.recipes, seeds=args.seeds, time_budget=budget, epochs=args.epochs,
        baseline=args.baseline, clock=args.clock, device=args.device,
        command="vessel-pipeline " + " ".join(sys.argv[1:]),
    )
    print(files["report"].read_text())
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return summary
