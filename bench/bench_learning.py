"""Learning benchmark: training recipes at equal training time on held-out phantoms, scored by the evaluation tool,
with 95 % confidence intervals and paired Wilcoxon signed-rank tests against a plain MONAI baseline.

Run (the real numbers; see docs/benchmarks.md for the commands of each kind and the time they take)::

    .venv/bin/python bench/bench_learning.py --kind ccta --seeds 3 --budget 480 --out runs/bench_learning_ccta

and a smoke run that proves the harness end to end in a few minutes::

    .venv/bin/python bench/bench_learning.py --tiny --out /tmp/bench_learning_tiny

What happens:

1. a dataset is generated from generator seeds never used for tuning (``--data-seed``, default 9100): ``--train``
   training, ``--val`` validation and ``--test`` (>= 12) test volumes of ``--kind`` (``ccta``: CT-angiography crops
   around the heart, the default; ``tubes``: the project's old tube phantoms; ``tubes_shifted``: the tubes at
   another spacing and intensity range). Recipes are chosen with ``--tune`` runs on data seed 4200 (and the
   project's older settings were tuned on ``ccta`` seed 0, ``data_samples/``, and ``tubes`` seeds 0-7);
2. ``vessel-pipeline plan`` writes its ``plan.json`` (the project's recipes and ``nnunet_style`` read it);
3. every recipe trains once per seed for the same training time (``--budget`` seconds of this process's CPU time,
   validation excluded; :class:`pipeline.time_budget.TimeBudget`), the recipes of one seed one after the other so
   that changes in machine load hit all of them;
4. each trained model predicts the test list and the evaluation tool scores it (Dice, clDice, HD95, NSD, Betti-0
   error per case);
5. per recipe and metric: mean over test cases (each averaged over seeds) with its 95 % t-interval, the spread of the
   seed means, the mean paired difference to the baseline with its interval, and the Wilcoxon signed-rank p-value.

Recipes: ``monai_baseline`` and ``nnunet_style`` are plain MONAI scripts (``bench/plain_monai.py``); the others are
the recipes of ``vessel-pipeline compare`` (:data:`pipeline.recipes.RECIPES`), run through the project's
bundle (``bundles/coronary_vessel_seg``, MONAI's ``ConfigWorkflow``) with overrides of its keys: ``default`` as shipped
(with the dataset's plan; Dice + BCE), ``pre_plan`` with the settings the bundle had before plans (tuned on the
project's own phantoms), ``cldice`` and ``skeleton_recall`` with the clDice or Skeleton Recall preset faded in.

The machinery is the one of ``vessel-pipeline compare`` (:mod:`pipeline.workflows.comparison`): finished runs are kept
(``OUT/<recipe>/seed<k>/cases.csv``) and a rerun continues where a killed one stopped; it writes ``OUT/results.csv``
(one row per recipe, seed and case), ``OUT/summary.csv``, ``OUT/report.md`` and ``OUT/comparison.png``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_monai import PLAIN_RECIPES, train_plain  # noqa: E402

from pipeline.data.plan import PlanSettings, plan_dataset  # noqa: E402
from pipeline.evaluation import CasePair, EvaluationSettings, run_evaluation  # noqa: E402
from pipeline.phantoms import CCTAConfig, PhantomConfig, write_phantom_dataset  # noqa: E402
from pipeline.recipes import RECIPES as BUNDLE_RECIPES  # noqa: E402
from pipeline.workflows.comparison import run_recipe, write_comparison  # noqa: E402

BASELINE = "monai_baseline"
MIN_TEST_CASES = 12
HELD_OUT_SEED = 9100  # the generator seed results are reported on
TUNING_SEED = 4200  # the generator seed recipes are chosen on (--tune)
RECIPES = PLAIN_RECIPES + tuple(BUNDLE_RECIPES)

#: phantom kind -> its configuration for a given --shape (for ``ccta``: the crop rendered around the heart)
KINDS: dict[str, Callable[[tuple[int, int, int]], Any]] = {
    # CT-angiography crops: heart, blood pools, coronaries, veins, plaque; spacing drawn per case (docs/data.md)
    "ccta": lambda shape: CCTAConfig(crop=shape),
    "tubes": lambda shape: PhantomConfig(shape=shape, spacing=(0.4, 0.4, 0.6)),
    # the tubes at another scanner's spacing and intensities: coarser voxels, brighter contrast, denser tissue, noisier
    "tubes_shifted": lambda shape: PhantomConfig(
        shape=shape, spacing=(0.5, 0.5, 0.8), tissue_hu=70.0, fat_hu=-40.0, lumen_hu=(450.0, 650.0), noise_hu=30.0
    ),
}

logger = logging.getLogger("bench_learning")


def make_dataset(out: Path, kind: str, shape: tuple[int, int, int], data_seed: int, n: tuple[int, int, int]) -> Path:
    """Generate (once) and plan the benchmark's dataset; returns its folder."""
    data = out / "data"
    if not (data / "plan.json").is_file():
        if data.exists():
            shutil.rmtree(data)
        write_phantom_dataset(data, sum(n), KINDS[kind](shape), seed=data_seed, fractions=n, prefix=kind)
        plan_dataset(data, settings=PlanSettings(device="cpu"))
    return data


def plain_trainer(recipe: str, data: Path):
    """The ``train`` callable of :func:`run_recipe` for a plain MONAI recipe: train, predict, score."""

    def train(run_dir: Path, seed: int, budget: float, clock: str):
        trained = train_plain(recipe, data, run_dir, seed, budget, clock)
        pairs = [CasePair(case, pred, label) for case, pred, label in trained["predictions"]]
        report = run_evaluation(pairs, run_dir / "evaluation", EvaluationSettings())
        return report.results, {"epochs": trained["epochs"], "best_val_dice": round(trained["best_val_dice"], 6)}

    return train


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = Path(args.out)
    data = make_dataset(out, args.kind, tuple(args.shape), args.data_seed, (args.train, args.val, args.test))
    overrides = {"dataset_dir": str(data), "device": torch.device("cpu"), "tracking_uri": f"sqlite:///{out.resolve()}/mlflow.db"}
    rows = []
    # the recipes of one seed one after the other, so that changes in machine load hit them all
    for seed in args.run_seeds if args.run_seeds is not None else range(args.seeds):
        for recipe in args.recipes:
            train = plain_trainer(recipe, data) if recipe in PLAIN_RECIPES else None
            start = time.perf_counter()
            found = run_recipe(recipe, seed, out / recipe / f"seed{seed}", {**overrides, **BUNDLE_RECIPES.get(recipe, {})},
                               args.budget, args.clock, train=train)
            logger.info("%s seed %d done (%.0f s)", recipe, seed, time.perf_counter() - start)
            rows += found
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (reruns continue in it)")
    p.add_argument("--kind", default="ccta", choices=sorted(KINDS))
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), metavar="RECIPE")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per recipe (>= 3)")
    p.add_argument("--run-seeds", type=int, nargs="+", default=None, metavar="K",
                   help="train only these of the seeds (parallel runs of one benchmark, one per seed); no report")
    p.add_argument("--budget", type=float, default=300.0, help="seconds of training time per run (the documented runs: 300)")
    p.add_argument("--clock", default="process", choices=("process", "wall"))
    p.add_argument("--shape", type=int, nargs=3, default=(96, 96, 80), help="volume (ccta: crop) shape")
    p.add_argument("--train", type=int, default=8)
    p.add_argument("--val", type=int, default=2)
    p.add_argument("--test", type=int, default=12)
    p.add_argument("--data-seed", type=int, default=None,
                   help=f"generator seed: default {HELD_OUT_SEED} (never used for tuning), {TUNING_SEED} with --tune")
    p.add_argument("--tune", action="store_true",
                   help=f"a tuning run: data from seed {TUNING_SEED} (not the held-out {HELD_OUT_SEED}), 1 seed allowed; "
                        "its numbers choose recipes and are never reported as results")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--tiny", action="store_true", help="smoke run: 48x48x32 volumes, 3 training cases, 8 s budgets")
    args = p.parse_args(argv)
    if args.tiny:
        args.shape, args.train, args.val, args.budget = (48, 48, 32), 3, 1, min(args.budget, 8.0)
    if args.data_seed is None:
        args.data_seed = TUNING_SEED if args.tune else HELD_OUT_SEED
    elif not args.tune and args.data_seed == TUNING_SEED:
        p.error(f"--data-seed {TUNING_SEED} is the tuning data; pass --tune")
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        p.error(f"unknown recipes {unknown}; valid recipes: {list(RECIPES)}")
    if BASELINE not in args.recipes:
        p.error(f"the recipes must include the baseline {BASELINE!r}")
    if args.test < MIN_TEST_CASES:
        p.error(f"--test {args.test}: the statistics need at least {MIN_TEST_CASES} test cases")
    if args.run_seeds is not None and not set(args.run_seeds) <= set(range(args.seeds)):
        p.error(f"--run-seeds {args.run_seeds}: seeds are 0..{args.seeds - 1}")
    if args.seeds < 3 and not args.tune:
        p.error(f"--seeds {args.seeds}: the statistics need at least 3 seeds")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("ignite", "monai", "pipeline", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("pipeline.workflows.comparison").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_all(args)
    if args.run_seeds is not None:
        print(f"seeds {args.run_seeds} done; run without --run-seeds for the report")
        return
    purpose = f"TUNING run (data seed {args.data_seed}): chooses recipes, not a result" if args.tune else "Learning benchmark"
    title = f"{purpose}: {args.kind}, {args.budget:g} s of training ({args.clock} clock) per run"
    summary, files = write_comparison(rows, out, BASELINE, title, command=" ".join(["bench/bench_learning.py"] + sys.argv[1:]))
    print((out / "report.md").read_text())
    print(f"wrote {', '.join(str(p) for p in files.values())}")


if __name__ == "__main__":
    main()
