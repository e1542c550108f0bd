"""Training recipes compared on a user's own data: each recipe trains through the bundle once per seed (optionally for
the same training time), the test list is scored with the evaluation tool, and a report gives per recipe the mean
with its 95 % interval and paired Wilcoxon tests against a baseline (:mod:`pipeline.evaluation.statistics`).

Layout of a comparison folder ``OUT``::

    OUT/<recipe>/seed<k>/            the bundle run (checkpoints/, model.pt, history.json, evaluation/)
    OUT/<recipe>/seed<k>/cases.csv   its per-case scores, written last: a run with it is finished
    OUT/mlflow.db, OUT/mlartifacts/  one MLflow store, runs named <recipe>-seed<k> and tagged recipe/seed
    OUT/results.csv                  one row per recipe, seed and test case
    OUT/summary.csv, OUT/report.md   the statistics
    OUT/comparison.png               box plots per metric and the paired differences to the baseline

A killed comparison continues where it stopped: finished runs are read back, an unfinished run resumes from its newest
checkpoint (``resume="auto"``), so the result is the one an uninterrupted comparison gives (when runs end at a number of
epochs; a time budget ends them where the clock says).
"""

from __future__ import annotations

import csv
import logging
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipeline.errors import SettingsError
from pipeline.io import write_text
from pipeline.evaluation.statistics import HIGHER_IS_BETTER, RecipeSummary, summarize_recipes
from pipeline.recipes import RECIPES, check_recipes

__all__ = [
    "METRICS",
    "MIN_TEST_CASES",
    "parse_duration",
    "run_comparison",
    "run_recipe",
    "write_comparison",
]

logger = logging.getLogger(__name__)

#: metrics of the report, in its column order
METRICS: tuple[str, ...] = tuple(HIGHER_IS_BETTER)

#: fewest test cases for the paired statistics (a Wilcoxon signed-rank test of n cases cannot go below 2 / 2**n)
MIN_TEST_CASES = 6


def _rows_of(recipe: str, seed: int, results: Sequence[Any], info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per case; a value the case could not give (failed case, a distance to an empty mask) is the
    evaluation tool's worst value (:func:`~pipeline.evaluation.worst.worst_value`) where there is one, else blank."""
    import math

    from pipeline.evaluation.worst import worst_value

    rows = []
    for r in results:
        scores = r.metrics.get(1, {})
        values = {}
        for m in METRICS:
            value = scores.get(m)
            if value is None or not math.isfinite(float(value)):
                value = worst_value(m, r.diagonal_mm) if r.diagonal_mm is not None else None
            values[m] = "" if value is None else value
        rows.append(
            {
                "recipe": recipe,
                "seed": seed,
                "case": r.case[: -len("_image")] if r.case.endswith("_image") else r.case,
                **values,
                "error": r.error or "",
                **dict(info),
            }
        )
    return rows


def _write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write rows atomically (:func:`pipeline.io.write_text`)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, text.getvalue())


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_recipe(
    recipe: str,
    seed: int,
    run_dir: str | os.PathLike,
    overrides: Mapping[str, Any],
    time_budget: float | None = None,
    clock: str = "process",
    train: Callable[..., tuple[Sequence[Any], Mapping[str, Any]]] | None = None,
    check_budget: bool = False,
) -> list[dict[str, Any]]:
    """One recipe with one seed: train (or resume), score the test list, write ``run_dir/cases.csv``; a finished run
    (``cases.csv`` there) is read back instead.

    Args:
        recipe: its name (the ``recipe`` column).
        seed: training seed.
        run_dir: the run's folder.
        overrides: the bundle overrides (dataset, recipe keys, tracking).
        time_budget: seconds of training time, or ``None`` for the bundle's epochs.
        clock: the budget's clock.
        train: ``train(run_dir, seed, time_budget, clock) -> (case results, info)`` for a recipe that does not run
            through the bundle (the benchmark's plain MONAI scripts); default: the bundle.
        check_budget: refuse a time budget that ends training before the first validation epoch (the run is removed).

    Returns:
        one row per test case: recipe, seed, case, the :data:`METRICS`, error, epochs, best_val_dice.
    """
    run_dir = Path(run_dir)
    done = run_dir / "cases.csv"
    if done.is_file():
        return read_rows(done)
    run_dir.mkdir(parents=True, exist_ok=True)
    if train is None:
        results, info = _bundle_run(recipe, seed, run_dir, overrides, time_budget, clock, check_budget)
    else:
        results, info = train(run_dir, seed, time_budget, clock)
    rows = _rows_of(recipe, seed, results, info)
    _write_csv(rows, done)
    logger.info("%s seed %d: %s epochs, mean Dice %.4f", recipe, seed, info.get("epochs"),
                sum(float(r["Dice"] or 0.0) for r in rows) / max(1, len(rows)))
    return read_rows(done)  # the same values a rerun reads (text round trip)


def _bundle_run(
    recipe: str,
    seed: int,
    run_dir: Path,
    overrides: Mapping[str, Any],
    time_budget: float | None,
    clock: str,
    check_budget: bool,
) -> tuple[Sequence[Any], dict[str, Any]]:
    from pipeline.workflows.bundle import evaluate_bundle, train_bundle

    settings = {
        "seed": seed,
        "progress": False,
        "resume": "auto",
        "run_name": f"{recipe}-seed{seed}",
        "tracker#tags": {"recipe": recipe, "seed": str(seed)},
        **dict(overrides),
    }
    run = train_bundle(str(run_dir), settings, time_budget=time_budget, clock=clock)
    if time_budget is not None and check_budget:
        _check_budget(run, time_budget)
    data = {k: v for k, v in settings.items() if k in ("dataset_dir", "datalist", "device")}
    report = evaluate_bundle(run.best_checkpoint, run.output_dir / "evaluation", "test", data)
    return report.results, {"epochs": len(run.history), "best_val_dice": round(run.best_metric, 6)}


def _check_budget(run: Any, time_budget: float) -> None:
    """A run whose budget ended training before its first validation epoch cannot be compared: remove it and say
    how much time one epoch took.

    Raises:
        SettingsError: the budget is too small.
    """
    from pipeline.bundle import CONFIG_NAME, read_run_config

    val_interval = int(read_run_config(run.output_dir / CONFIG_NAME)["val_interval"])
    epochs = len(run.history)
    if epochs >= val_interval:
        return
    per_epoch = max((float(h.get("time_s", 0.0)) for h in run.history), default=0.0)
    shutil.rmtree(run.output_dir, ignore_errors=True)
    hint = (
        f"; one epoch took about {per_epoch:.0f} s (wall time, validation included), give at least "
        f"{1.5 * val_interval * per_epoch:.0f}s"
    ) if per_epoch else ""
    raise SettingsError(
        f"time budget {time_budget:g} s ended training after {epochs} epoch(s), before the first validation at epoch "
        f"{val_interval}{hint}."
    )


def _markdown_table(summary: Sequence[RecipeSummary], recipes: Sequence[str], baseline: str) -> str:
    lines = [f"| recipe | {' | '.join(METRICS)} |", f"| --- | {' | '.join('---' for _ in METRICS)} |"]
    for recipe in recipes:
        cells = []
        for metric in METRICS:
            s = next(x for x in summary if x.recipe == recipe and x.metric == metric)
            cell = f"{s.mean:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]"
            if recipe != baseline:
                cell += f"<br>Δ {s.diff:+.4f} [{s.diff_low:+.4f}, {s.diff_high:+.4f}], p={s.p_value:.2g}"
            cells.append(cell)
        lines.append(f"| {recipe} | {' | '.join(cells)} |")
    return "\n".join(lines)


def plot_comparison(rows: Sequence[Mapping[str, Any]], recipes: Sequence[str], baseline: str, path: Path) -> Path:
    """Box plots of each metric per recipe (per-case means over seeds) and, below, each recipe's paired differences
    to ``baseline`` per case."""
    from pipeline.evaluation.statistics import per_case_means
    from pipeline.plots import plt

    fig, axes = plt.subplots(2, len(METRICS), figsize=(3.6 * len(METRICS), 7.0), squeeze=False)
    others = [r for r in recipes if r != baseline]
    for j, metric in enumerate(METRICS):
        means = per_case_means(rows, metric)
        cases = sorted(means[baseline])
        top, bottom = axes[0][j], axes[1][j]
        top.boxplot([[means[r][c] for c in cases] for r in recipes], showmeans=True)
        top.set_xticks(range(1, len(recipes) + 1), recipes, rotation=30, ha="right", fontsize=8)
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        top.set_title(f"{metric} ({better} is better)", fontsize=9)
        diffs = [[means[r][c] - means[baseline][c] for c in cases] for r in others]
        if others:
            bottom.boxplot(diffs, showmeans=True)
            for k, d in enumerate(diffs, start=1):
                bottom.plot([k] * len(d), d, ".", color="tab:blue", alpha=0.5)
            bottom.set_xticks(range(1, len(others) + 1), others, rotation=30, ha="right", fontsize=8)
        bottom.axhline(0.0, color="grey", lw=0.8)
        bottom.set_title(f"{metric}: recipe - {baseline}, per case", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_comparison(
    rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, baseline: str, title: str, command: str = ""
) -> tuple[list[RecipeSummary], dict[str, Path]]:
    """``results.csv``, ``summary.csv``, ``report.md`` and ``comparison.png`` of a comparison.

    Args:
        rows: every recipe's :func:`run_recipe` rows.
        out_dir: the comparison folder.
        baseline: the recipe the others are tested against.
        title: the report's first line.
        command: the command that produced it, quoted in the report.

    Returns:
        the statistics and the written files.
    """
    out = Path(out_dir)
    recipes = list(dict.fromkeys(str(r["recipe"]) for r in rows))
    summary = summarize_recipes(rows, baseline, METRICS)
    files = {
        "results": _write_csv(rows, out / "results.csv"),
        "summary": _write_csv([s.__dict__ for s in summary], out / "summary.csv"),
        "plot": plot_comparison(rows, recipes, baseline, out / "comparison.png"),
    }
    n_seeds = max(s.n_seeds for s in summary)
    text = (
        f"# {title}\n\n{summary[0].n_cases} test cases x {n_seeds} seeds. Mean over the test cases (each averaged over "
        f"the seeds) [95 % t-interval]; Δ: mean paired difference to **{baseline}** [95 % t-interval], p: Wilcoxon "
        "signed-rank test, two-sided. A case that could not be scored counts as the worst value.\n\n"
        + _markdown_table(summary, recipes, baseline)
        + "\n\n![box plots and paired differences](comparison.png)\n"
        + (f"\nCommand: `{command}`\n" if command else "")
    )
    write_text(out / "report.md", text)
    files["report"] = out / "report.md"
    return summary, files


def device_override(device: str) -> dict[str, Any]:
    """The bundle's ``device`` override for ``"cpu"``/``"cuda"``/``"auto"``."""
    from pipeline.workflows.device import resolve_device

    return {"device": f"$torch.device('{resolve_device(str(device))}')"}


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float) -> float:
    """Seconds of ``"90"``, ``"90s"``, ``"20m"`` or ``"1.5h"``.

    Raises:
        SettingsError: anything else, or not > 0.
    """
    value = str(text).strip().lower()
    try:
        seconds = float(value[:-1]) * _UNITS[value[-1]] if value and value[-1] in _UNITS else float(value)
    except ValueError:
        raise SettingsError(f"time budget {text!r} is not a duration like 90s, 20m or 1.5h.") from None
    if not seconds > 0:
        raise SettingsError(f"time budget must be > 0, got {text!r}.")
    return seconds


def run_comparison(
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipes: Sequence[str],
    seeds: int = 3,
    time_budget: float | None = None,
    epochs: int | None = None,
    baseline: str | None = None,
    clock: str = "process",
    device: str = "auto",
    overrides: Mapping[str, Any] | None = None,
    command: str = "",
) -> tuple[list[RecipeSummary], dict[str, Path]]:
    """Train every recipe with every seed through the bundle on ``dataset_dir``, score its test list and write the
    comparison into ``out_dir`` (see the module docstring); a rerun continues a killed comparison.

    Args:
        dataset_dir: the user's dataset (its ``plan.json`` is used when there is one).
        out_dir: the comparison folder.
        recipes: names from :data:`pipeline.recipes.RECIPES`; the first is the baseline unless ``baseline`` is given.
        seeds: training seeds per recipe (0 .. seeds-1).
        time_budget: seconds of training time per run (:class:`~pipeline.time_budget.TimeBudget`), or ``None``.
        epochs: epochs per run (default: the plan's or the bundle's); with a budget, the most a run may take.
        baseline: the recipe the others are tested against.
        clock: the budget's clock, ``"process"`` or ``"wall"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        overrides: more bundle overrides for every run (e.g. a smaller ``network_def#channels``).
        command: the command line, quoted in the report.

    Raises:
        SettingsError: unknown recipes, a baseline not among them, seeds < 1, too few test cases for the statistics,
            a time budget that ends training before the first validation.
        DatasetError: no test list, or a broken dataset.
    """
    from pipeline.data import load_datalist, resolve_datalist

    recipes = check_recipes(recipes)
    baseline = baseline or recipes[0]
    if baseline not in recipes:
        raise SettingsError(f"baseline {baseline!r} is not among the recipes {recipes}.")
    if seeds < 1:
        raise SettingsError(f"seeds must be >= 1, got {seeds}.")
    if epochs is not None and epochs < 1:
        raise SettingsError(f"epochs must be >= 1, got {epochs}.")
    n_test = len(load_datalist(dataset_dir, "test"))
    if n_test < MIN_TEST_CASES:
        raise SettingsError(
            f"the 'test' list of {resolve_datalist(dataset_dir)} has {n_test} cases; the paired statistics need at "
            f"least {MIN_TEST_CASES} (a Wilcoxon signed-rank test of fewer cannot reach p < 0.05)."
        )
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "tracking_uri": f"sqlite:///{out.resolve()}/mlflow.db",
        "experiment_name": "compare",
        **device_override(device),
        **dict(overrides or {}),
    }
    rows: list[dict[str, Any]] = []
    try:
        for seed in range(seeds):
            for recipe in recipes:
                settings = {**RECIPES[recipe], **common, **({"epochs": epochs} if epochs is not None else {})}
                run_dir = out / recipe / f"seed{seed}"
                rows += run_recipe(recipe, seed, run_dir, settings, time_budget, clock, check_budget=True)
    except SettingsError:
        if created and not rows:  # bad input found by the first run: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    title = f"Recipes compared on {Path(dataset_dir).resolve().name}"
    if time_budget is not None:
        title += f", {time_budget:g} s of training ({clock} clock) per run"
    return write_comparison(rows, out, baseline, title, command)
