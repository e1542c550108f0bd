"""Writing the results: per-case CSV, ``summary.json`` in nnU-Net's layout, box plots (PNG) and a console table."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.evaluation.metrics import METRICS
from pipeline.evaluation.runner import CaseResult, EvaluationSettings

__all__ = [
    "CASES_CSV",
    "SUMMARY_JSON",
    "PLOT_PNG",
    "PLOT_METRICS",
    "summarize",
    "write_cases_csv",
    "write_summary",
    "plot_metrics",
    "format_results_table",
    "write_reports",
]

CASES_CSV = "cases.csv"
SUMMARY_JSON = "summary.json"
PLOT_PNG = "evaluation.png"
#: the metrics shown in the box plots and the console table
PLOT_METRICS = ("Dice", "clDice", "NSD", "HD95_mm", "ASSD_mm", "beta0_error")
_TITLES = {"HD95_mm": "HD95 (mm)", "ASSD_mm": "ASSD (mm)", "beta0_error": "β0 error (components)"}
_UNIT_RANGE = ("Dice", "IoU", "Precision", "Recall", "clDice", "NSD")
#: the columns of ``cases.csv`` before the metrics
_ID_COLUMNS = ("case", "label", "status", "reason", "empty", "prediction", "reference", "spacing_mm", "seconds")


def _metric_names(results: Sequence[CaseResult]) -> list[str]:
    present = {m for r in results for per_label in r.metrics.values() for m in per_label}
    return [m for m in METRICS if m in present]


def _json_value(v: float) -> float | None:
    """Finite numbers as they are; ``inf``/``NaN`` as ``null`` (strict JSON), explained by the ``empty`` flag."""
    return float(v) if math.isfinite(v) else None


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def summarize(results: Sequence[CaseResult], settings: EvaluationSettings) -> dict:
    """The ``summary.json`` content.

    nnU-Net's keys: ``metric_per_case`` (per scored case: ``prediction_file``, ``reference_file``, ``metrics`` per
    label; a case that could not be scored is only listed under ``failed``),
    ``mean`` (per label: the mean of each metric over the scored cases) and ``foreground_mean`` (the mean of the
    per-label means). Means use finite values only; ``nonfinite`` counts the values left out (distances of cases
    with one empty mask). Extra keys: ``case``, ``spacing_mm`` and ``empty`` per case, ``failed`` (case and reason),
    ``n_cases``, ``n_failed`` and ``settings``.
    """
    names = _metric_names(results)
    labels = settings.label_values
    per_case = []
    for r in results:
        if not r.ok:
            continue  # nnU-Net lists scored cases only; failed ones are under "failed" with their reason
        per_case.append({
            "case": r.case,
            "prediction_file": r.prediction,
            "reference_file": r.label,
            "spacing_mm": list(r.spacing) if r.spacing else None,
            "empty": {str(k): v for k, v in r.empty.items()},
            "metrics": {str(k): {m: _json_value(v) for m, v in scores.items()} for k, scores in r.metrics.items()},
        })
    scored = [r for r in results if r.ok]
    mean, nonfinite = {}, {}
    for label in labels:
        columns = {m: [r.metrics[label][m] for r in scored if m in r.metrics.get(label, {})] for m in names}
        mean[str(label)] = {m: _mean(v) for m, v in columns.items()}
        nonfinite[str(label)] = {m: sum(not math.isfinite(x) for x in v) for m, v in columns.items() if any(not math.isfinite(x) for x in v)}
    foreground = {m: _mean([mean[str(k)][m] for k in labels if mean[str(k)][m] is not None]) for m in names}
    return {
        "metric_per_case": per_case,
        "mean": mean,
        "foreground_mean": foreground,
        "nonfinite": nonfinite,
        "n_cases": len(results),
        "n_failed": len(results) - len(scored),
        "failed": [{"case": r.case, "reason": r.error} for r in results if not r.ok],
        "settings": {
            "tolerance_mm": settings.tolerance_mm,
            "labels": list(labels),
            "binary": settings.labels is None,
            "geometry_tolerance_mm": settings.geometry_tolerance_mm,
            "definitions": "docs/evaluation.md",
        },
    }


def write_summary(summary: dict, path: str | os.PathLike) -> Path:
    """Write ``summary`` as strict JSON (no NaN/Infinity tokens)."""
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return path


def write_cases_csv(results: Sequence[CaseResult], path: str | os.PathLike) -> Path:
    """One row per case and label: ``case, label, status, reason, empty, prediction, reference, spacing_mm,
    seconds`` then every metric (``inf``/``nan`` written as such). A failed case has one row with its reason."""
    names = _metric_names(results)
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*_ID_COLUMNS, *names])
        for r in results:
            spacing = "x".join(f"{s:.4g}" for s in r.spacing) if r.spacing else ""
            base = [r.prediction or "", r.label or "", spacing, f"{r.seconds:.3f}"]
            if not r.ok:
                writer.writerow([r.case, "", "failed", r.error, "", *base, *[""] * len(names)])
                continue
            for label, scores in r.metrics.items():
                row = [r.case, label, "ok", "", r.empty.get(label, ""), *base]
                writer.writerow(row + [repr(float(scores[m])) if m in scores else "" for m in names])
    return path


def plot_metrics(results: Sequence[CaseResult], path: str | os.PathLike, metrics: Sequence[str] = PLOT_METRICS) -> Path:
    """Box plots, one panel per metric and one box per label, with each case as a dot (finite values only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in results if r.ok]
    labels = sorted({k for r in scored for k in r.metrics})
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = [[r.metrics[k][metric] for r in scored if k in r.metrics and math.isfinite(r.metrics[k].get(metric, math.nan))] for k in labels]
        if any(data):
            ax.boxplot(data, widths=0.5, showfliers=False)
            for i, values in enumerate(data, start=1):
                jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
                ax.scatter(i + np.asarray(jitter), values, s=12, alpha=0.7, zorder=3)
            ax.set_xticks(range(1, len(labels) + 1), [f"label {k}" for k in labels])
        else:
            ax.text(0.5, 0.5, "no finite value", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(_TITLES.get(metric, metric.replace("_mm", " (mm)")), fontsize=10)
        if metric in _UNIT_RANGE:
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.set_ylim(bottom=0.0)
        ax.grid(axis="y", alpha=0.3)
    n_failed = len(results) - len(scored)
    fig.suptitle(f"{len(scored)} cases scored" + (f", {n_failed} failed" if n_failed else ""), fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_results_table(results: Sequence[CaseResult]) -> str:
    """A plain-text table: per case and label Dice, clDice, NSD, HD95, ASSD and the component counts; failed cases
    with their reason."""
    header = f"{'case':<24} {'label':>5} {'Dice':>7} {'clDice':>7} {'NSD':>7} {'HD95 mm':>8} {'ASSD mm':>8} {'b0 pred/ref':>12}  note"
    lines = [header, "-" * len(header)]
    for r in results:
        if not r.ok:
            lines.append(f"{r.case:<24} {'':>5} {'FAILED':>7}  {r.error}")
            continue
        for label, s in r.metrics.items():
            b0 = f"{s['beta0_pred']:.0f}/{s['beta0_ref']:.0f}"
            note = f"empty: {r.empty[label]}" if r.empty.get(label) else ""
            lines.append(
                f"{r.case:<24} {label:>5} {s['Dice']:>7.4f} {s['clDice']:>7.4f} {s['NSD']:>7.4f} "
                f"{s['HD95_mm']:>8.3f} {s['ASSD_mm']:>8.3f} {b0:>12}  {note}"
            )
    return "\n".join(lines)


def write_reports(results: Sequence[CaseResult], settings: EvaluationSettings, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``cases.csv``, ``summary.json`` and ``evaluation.png`` into ``out_dir`` (created if needed).

    Returns:
        ``{"csv": ..., "summary": ..., "plot": ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "csv": write_cases_csv(results, out / CASES_CSV),
        "summary": write_summary(summarize(results, settings), out / SUMMARY_JSON),
        "plot": plot_metrics(results, out / PLOT_PNG),
    }
