"""Recipe statistics: t-intervals, paired Wilcoxon signed-rank tests, seeds averaged per case, failures as worst."""

from __future__ import annotations

import math

import pytest

from pipeline.errors import SettingsError
from pipeline.evaluation.statistics import mean_ci, paired_wilcoxon, per_case_means, summarize_recipes


def test_mean_ci_is_the_student_t_interval():
    mean, low, high = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * math.sqrt(5.0 / 3.0) / 2.0  # t(0.975, 3) * sd / sqrt(n)
    assert mean == 2.5 and low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    assert mean_ci([0.7]) == (0.7, 0.7, 0.7) and mean_ci([0.3, 0.3]) == (0.3, 0.3, 0.3)


def test_paired_wilcoxon():
    a = [0.1 * i for i in range(1, 13)]
    assert paired_wilcoxon([x + 0.05 for x in a], a) == pytest.approx(2 / 2**12)  # exact: all 12 differences positive
    assert paired_wilcoxon(a, a) == 1.0
    with pytest.raises(SettingsError, match="same length, got 12 and 11"):
        paired_wilcoxon(a, a[:-1])


def _rows(recipe: str, offset: float, seeds=(0, 1), n_cases: int = 12) -> list[dict]:
    return [
        {"recipe": recipe, "seed": s, "case": f"c{c:02d}", "Dice": 0.5 + 0.02 * c + offset + 0.01 * s,
         "HD95_mm": 2.0 - offset}
        for s in seeds for c in range(n_cases)
    ]


def test_recipes_against_the_baseline_paired_by_case():
    rows = _rows("base", 0.0) + _rows("better", 0.1)
    rows[5]["HD95_mm"] = float("inf")  # base, seed 0, c05: an empty prediction
    found = {(s.recipe, s.metric): s for s in summarize_recipes(rows, "base", ["Dice", "HD95_mm"])}
    better = found["better", "Dice"]
    assert better.n_cases == 12 and better.n_seeds == 2
    assert better.diff == pytest.approx(0.1) and better.diff_low == pytest.approx(0.1)  # the same gain on every case
    assert better.p_value == pytest.approx(2 / 2**12) and found["base", "Dice"].p_value == 1.0
    assert better.seed_sd == pytest.approx(0.01 / math.sqrt(2))  # two seed means 0.01 apart
    # the infinite HD95 counts as the worst finite one (2.0): its case mean stays 2.0
    assert per_case_means(rows, "HD95_mm")["base"]["c05"] == 2.0
    assert found["better", "HD95_mm"].diff == pytest.approx(-0.1)


def test_missing_baseline_or_cases_are_named():
    with pytest.raises(SettingsError, match="baseline 'plain' has no results; recipes with results: \\['base'\\]"):
        summarize_recipes(_rows("base", 0.0), "plain", ["Dice"])
    with pytest.raises(SettingsError, match="recipe 'short' was scored on other cases than 'base'"):
        summarize_recipes(_rows("base", 0.0) + _rows("short", 0.0, n_cases=11), "base", ["Dice"])
