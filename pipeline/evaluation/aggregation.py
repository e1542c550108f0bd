"""From per-case scores to means that move the right way.

Two rules, chosen with ``EvaluationSettings.aggregation``:

- ``"worst"`` (default): every case counts. A case that could not be scored (missing or unreadable file, other grid)
  counts as the worst value of each metric that has one (:mod:`~pipeline.evaluation.worst`): a missing prediction
  lowers the mean Dice, as it should. Both masks empty scores 1 (distances 0).
- ``"nnunet"``: nnU-Net v2's ``summary.json`` (``nnunetv2/evaluation/evaluate_predictions.py``): a score that is
  undefined because both masks are empty is NaN and each per-label mean is ``nanmean`` over the cases; a case that
  could not be scored is left out (nnU-Net scores the predictions it finds); ``foreground_mean`` is the plain mean of
  the per-label means (NaN if one of them is).

In both, an infinite distance (exactly one mask empty) counts as the volume's diagonal and is flagged per case. Each
mean says how many values it holds (``n``), how many of them are worst values (``n_worst``) and how many cases it
leaves out (``n_excluded``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.evaluation.metrics import METRICS
from pipeline.evaluation.runner import CaseResult
from pipeline.evaluation.settings import EvaluationSettings
from pipeline.evaluation.worst import DISTANCE_METRICS, SCORE_METRICS, bounded_value, worst_value

__all__ = ["Aggregate", "CaseValues", "aggregate", "metric_names"]


@dataclass
class CaseValues:
    """What one case contributes to the means.

    Attributes:
        values: label -> metric -> value (NaN: not part of the mean).
        worst: label -> metrics whose value is the worst value (an infinite distance, or a failed case).
    """

    values: dict[int, dict[str, float]] = field(default_factory=dict)
    worst: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class Aggregate:
    """The means of a run and what they hold.

    Attributes:
        cases: per result, its :class:`CaseValues`, or ``None`` when the case is left out (``"nnunet"``: failed).
        mean: label -> metric -> mean (NaN when no value).
        foreground_mean: metric -> mean of the per-label means.
        n: label -> metric -> number of values in the mean.
        n_worst: label -> metric -> how many of them are worst values.
        n_excluded: label -> metric -> cases left out of the mean.
        fallback_diagonal_mm: the worst distance used for failed cases whose headers could not be read (the largest
            diagonal of the other cases), ``None`` if there was none.
    """

    cases: list[CaseValues | None]
    mean: dict[int, dict[str, float]]
    foreground_mean: dict[str, float]
    n: dict[int, dict[str, int]]
    n_worst: dict[int, dict[str, int]]
    n_excluded: dict[int, dict[str, int]]
    fallback_diagonal_mm: float | None


def metric_names(results: Sequence[CaseResult]) -> list[str]:
    """The metrics the scored cases have, in :data:`~pipeline.evaluation.metrics.METRICS` order."""
    present = {m for r in results for per_label in r.metrics.values() for m in per_label}
    return [m for m in METRICS if m in present]


def _scored_values(result: CaseResult, names: list[str], nnunet: bool) -> CaseValues:
    out = CaseValues()
    for label, scores in result.metrics.items():
        both_empty = result.empty.get(label) == "both"
        values, worst = {}, []
        for m in names:
            value = float(scores.get(m, math.nan))
            if nnunet and both_empty and m in SCORE_METRICS + DISTANCE_METRICS:
                value = math.nan
            elif math.isinf(value):
                value, is_worst = bounded_value(m, value, result.shape, result.spacing)
                if is_worst:
                    worst.append(m)
            values[m] = value
        out.values[label], out.worst[label] = values, worst
    return out


def _failed_values(labels: Sequence[int], names: list[str], diagonal_mm: float | None) -> CaseValues:
    out = CaseValues()
    for label in labels:
        values, worst = {}, []
        for m in names:
            value = worst_value(m, math.nan if diagonal_mm is None else diagonal_mm)
            values[m] = math.nan if value is None else value
            if value is not None and not math.isnan(value):
                worst.append(m)
        out.values[label], out.worst[label] = values, worst
    return out


def aggregate(results: Sequence[CaseResult], settings: EvaluationSettings) -> Aggregate:
    """The per-label means of ``results`` under ``settings.aggregation`` (see the module's docstring)."""
    names = metric_names(results)
    if not names:  # no case scored: the metrics a full run would have, so failed cases still count
        names = [m for m in METRICS if not m.startswith("beta1") or settings.betti1]
    nnunet = settings.aggregation == "nnunet"
    diagonals = [r.diagonal_mm for r in results if r.diagonal_mm is not None]
    fallback = max(diagonals) if diagonals else None
    cases: list[CaseValues | None] = []
    for r in results:
        if r.ok:
            cases.append(_scored_values(r, names, nnunet))
        else:
            diagonal = r.diagonal_mm if r.diagonal_mm is not None else fallback
            cases.append(None if nnunet else _failed_values(settings.label_values, names, diagonal))
    mean, n, n_worst, n_excluded = {}, {}, {}, {}
    for label in settings.label_values:
        mean[label], n[label], n_worst[label], n_excluded[label] = {}, {}, {}, {}
        for m in names:
            column = [c.values[label][m] for c in cases if c is not None and label in c.values]
            kept = [v for v in column if not math.isnan(v)]
            mean[label][m] = float(np.mean(kept)) if kept else math.nan
            n[label][m] = len(kept)
            n_worst[label][m] = sum(1 for c in cases if c is not None and m in c.worst.get(label, ()))
            n_excluded[label][m] = len(results) - len(kept)
    foreground = {m: float(np.mean([mean[label][m] for label in settings.label_values])) for m in names}
    return Aggregate(cases, mean, foreground, n, n_worst, n_excluded, fallback)
