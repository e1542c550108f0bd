"""Statistics for comparing training recipes on the same test cases: mean with a 95 % confidence interval and paired
Wilcoxon signed-rank tests against a baseline (pure functions on per-case scores; scipy).

Scores of one recipe over several training seeds are first averaged per case, so each test case is one paired
observation (the seeds' spread is reported separately). Rows should carry the evaluation tool's worst values already
(:mod:`pipeline.evaluation.worst`: 0 for scores, the field-of-view diagonal for distances); a value still missing or
not finite (a count such as the Betti-0 error of a case that failed) counts as the worst any recipe got, 0 for scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from pipeline.errors import SettingsError

__all__ = [
    "HIGHER_IS_BETTER",
    "RecipeSummary",
    "mean_ci",
    "paired_wilcoxon",
    "per_case_means",
    "summarize_recipes",
]

#: metric -> whether a higher value is better (the metrics a comparison reports)
HIGHER_IS_BETTER: dict[str, bool] = {"Dice": True, "clDice": True, "NSD": True, "HD95_mm": False, "beta0_error": False}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided Student-t confidence interval.

    Returns:
        ``(mean, low, high)``; the interval is the mean itself for fewer than two values or no spread.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise SettingsError("mean_ci needs at least one value.")
    mean = float(x.mean())
    if x.size < 2 or float(x.std()) == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def paired_wilcoxon(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of ``a - b`` (pairs in order); 1.0 when all pairs are equal.

    Raises:
        SettingsError: sequences of different lengths.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise SettingsError(f"paired samples must have the same length, got {x.size} and {y.size}.")
    if np.allclose(x, y, rtol=0.0, atol=1e-12):
        return 1.0
    return float(stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided").pvalue)


def _fill_worst(rows: list[dict], metric: str) -> None:
    finite = [float(r[metric]) for r in rows if _finite(r.get(metric))]
    if HIGHER_IS_BETTER.get(metric, True):
        worst = 0.0
    else:
        worst = max(finite) if finite else 0.0
    for r in rows:
        if not _finite(r.get(metric)):
            r[metric] = worst


def _finite(value) -> bool:
    try:
        return value is not None and value != "" and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def per_case_means(rows: Iterable[Mapping], metric: str) -> dict[str, dict[str, float]]:
    """``recipe -> case -> mean over seeds`` of ``metric`` (rows with ``recipe``, ``seed``, ``case`` and metrics;
    a missing or non-finite value counts as the worst, see the module docstring)."""
    rows = [dict(r) for r in rows]
    _fill_worst(rows, metric)
    sums: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        sums.setdefault(str(r["recipe"]), {}).setdefault(str(r["case"]), []).append(float(r[metric]))
    return {recipe: {case: float(np.mean(v)) for case, v in cases.items()} for recipe, cases in sums.items()}


@dataclass(frozen=True)
class RecipeSummary:
    """One recipe's result for one metric.

    Attributes:
        recipe, metric: what it is about.
        n_cases, n_seeds: paired test cases and training seeds.
        mean, ci_low, ci_high: mean over cases (each averaged over seeds) and its 95 % t-interval.
        seed_sd: standard deviation of the per-seed means (training noise).
        diff, diff_low, diff_high: mean paired difference to the baseline and its 95 % t-interval.
        p_value: Wilcoxon signed-rank p-value against the baseline (1.0 for the baseline itself).
    """

    recipe: str
    metric: str
    n_cases: int
    n_seeds: int
    mean: float
    ci_low: float
    ci_high: float
    seed_sd: float
    diff: float
    diff_low: float
    diff_high: float
    p_value: float


def summarize_recipes(
    rows: Sequence[Mapping], baseline: str, metrics: Sequence[str] = tuple(HIGHER_IS_BETTER)
) -> list[RecipeSummary]:
    """Every recipe against ``baseline`` on every metric, paired by test case.

    Args:
        rows: one per (recipe, seed, case) with the metric values.
        baseline: the recipe the others are tested against.
        metrics: metric names.

    Raises:
        SettingsError: no rows of ``baseline``, or recipes scored on different cases.
    """
    recipes = list(dict.fromkeys(str(r["recipe"]) for r in rows))
    if baseline not in recipes:
        raise SettingsError(f"baseline {baseline!r} has no results; recipes with results: {recipes}.")
    out = []
    for metric in metrics:
        filled = [dict(r) for r in rows]
        _fill_worst(filled, metric)
        means = per_case_means(filled, metric)
        cases = sorted(means[baseline])
        base = [means[baseline][c] for c in cases]
        for recipe in recipes:
            if sorted(means[recipe]) != cases:
                raise SettingsError(f"recipe {recipe!r} was scored on other cases than {baseline!r}.")
            values = [means[recipe][c] for c in cases]
            by_seed: dict[str, list[float]] = {}
            for r in filled:
                if str(r["recipe"]) == recipe:
                    by_seed.setdefault(str(r["seed"]), []).append(float(r[metric]))
            seed_means = [float(np.mean(v)) for v in by_seed.values()]
            mean, lo, hi = mean_ci(values)
            diff, dlo, dhi = mean_ci(np.subtract(values, base))
            out.append(
                RecipeSummary(
                    recipe=recipe, metric=metric, n_cases=len(cases), n_seeds=len(by_seed), mean=mean, ci_low=lo,
                    ci_high=hi, seed_sd=float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else 0.0,
                    diff=diff, diff_low=dlo, diff_high=dhi,
                    p_value=1.0 if recipe == baseline else paired_wilcoxon(values, base),
                )
            )
    return out
