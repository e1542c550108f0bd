"""Writing the results: per-case CSV, ``summary.json`` in nnU-Net's layout, box plots (PNG) and the console text.

Every file is written next to its final name and renamed into place once all of them are complete, so a run that
fails while writing leaves the previous reports (or none), never half of them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Sequence

from pipeline.io import strict_json
from pipeline.evaluation.aggregation import Aggregate, aggregate, metric_names
from pipeline.evaluation.runner import CaseResult
from pipeline.evaluation.settings import EvaluationSettings

__all__ = [
    "CASES_CSV",
    "SUMMARY_JSON",
    "PLOT_PNG",
    "PLOT_METRICS",
    "summarize",
    "cases_csv_text",
    "format_means",
    "format_results_table",
    "write_reports",
]

CASES_CSV = "cases.csv"
SUMMARY_JSON = "summary.json"
PLOT_PNG = "evaluation.png"
#: the metrics shown in the box plots and the console
PLOT_METRICS = ("Dice", "clDice", "NSD", "HD95_mm", "ASSD_mm", "beta0_error")
#: the columns of ``cases.csv`` before the metrics
_ID_COLUMNS = ("case", "label", "status", "reason", "empty", "worst", "notes", "prediction", "reference", "spacing_mm", "seconds")
_SHORT = {"HD95_mm": "HD95 mm", "ASSD_mm": "ASSD mm", "beta0_error": "b0 err"}


def _json_value(v: float) -> float | None:
    """Finite numbers as they are; NaN (a value that is not part of the means) as ``null`` (strict JSON)."""
    return float(v) if math.isfinite(v) else None


def _by_label(table: dict[int, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    return {str(label): {m: _json_value(v) if isinstance(v, float) else v for m, v in row.items()} for label, row in table.items()}


def _case_entry(result: CaseResult, values) -> dict:
    entry = {
        "case": result.case,
        "status": "ok" if result.ok else "failed",
        "prediction_file": result.prediction,
        "reference_file": result.label,
        "spacing_mm": list(result.spacing) if result.spacing else None,
        "shape": list(result.shape) if result.shape else None,
        "diagonal_mm": result.diagonal_mm,
        "empty": {str(k): v for k, v in result.empty.items()},
        "worst": {str(k): v for k, v in values.worst.items() if v},
        "notes": list(result.notes),
        "metrics": _by_label(values.values),
    }
    if not result.ok:
        entry["reason"] = result.error
    return entry


def summarize(results: Sequence[CaseResult], settings: EvaluationSettings, agg: Aggregate | None = None) -> dict:
    """The ``summary.json`` content.

    nnU-Net's keys: ``metric_per_case`` (per case: ``prediction_file``, ``reference_file`` and ``metrics`` per label,
    the values the means use), ``mean`` (per label) and ``foreground_mean`` (the mean of the per-label means), by
    the rule of ``settings.aggregation`` (:mod:`~pipeline.evaluation.aggregation`). Extra keys: per case ``case``,
    ``status`` (and ``reason``), ``spacing_mm``, ``shape``, ``diagonal_mm``, ``empty``, ``worst`` (the metrics
    standing at their worst value) and ``notes``; ``n``, ``n_worst`` and ``n_excluded`` per label and metric;
    ``n_cases``, ``n_scored``, ``n_failed``, ``failed`` (case and reason) and ``settings``. A value that is not part
    of the means (NaN) is ``null``.
    """
    agg = agg or aggregate(results, settings)
    scored = [r for r in results if r.ok]
    return {
        "metric_per_case": [_case_entry(r, c) for r, c in zip(results, agg.cases) if c is not None],
        "mean": _by_label(agg.mean),
        "foreground_mean": {m: _json_value(v) for m, v in agg.foreground_mean.items()},
        "n": _by_label(agg.n),
        "n_worst": _by_label(agg.n_worst),
        "n_excluded": _by_label(agg.n_excluded),
        "n_cases": len(results),
        "n_scored": len(scored),
        "n_failed": len(results) - len(scored),
        "failed": [{"case": r.case, "reason": r.error} for r in results if not r.ok],
        "settings": {**settings.as_dict(), "definitions": "docs/evaluation.md"},
    }


def cases_csv_text(results: Sequence[CaseResult], agg: Aggregate) -> str:
    """``cases.csv``: one row per case and label, the id columns then every metric (the values the means use; ``nan``
    where a value is not part of them). A case left out of the means has one row with its reason."""
    names = metric_names(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_ID_COLUMNS, *names])
    for r, values in zip(results, agg.cases):
        spacing = "x".join(f"{s:.4g}" for s in r.spacing) if r.spacing else ""
        tail = [r.prediction or "", r.label or "", spacing, f"{r.seconds:.3f}"]
        status, reason, notes = ("ok", "", "; ".join(r.notes)) if r.ok else ("failed", r.error, "")
        if values is None:
            writer.writerow([r.case, "", status, reason, "", "", notes, *tail, *[""] * len(names)])
            continue
        for label, row in values.values.items():
            head = [r.case, label, status, reason, r.empty.get(label, ""), " ".join(values.worst.get(label, [])), notes]
            writer.writerow(head + tail + [repr(float(row[m])) if m in row else "" for m in names])
    return buffer.getvalue()


def format_results_table(results: Sequence[CaseResult]) -> str:
    """A plain-text table: per case and label Dice, clDice, NSD, HD95, ASSD (as measured: ``inf`` with one empty
    mask) and the component counts, with the empty flag and (on a case's first row) its notes; failed cases with
    their reason."""
    header = f"{'case':<24} {'label':>5} {'Dice':>7} {'clDice':>7} {'NSD':>7} {'HD95 mm':>8} {'ASSD mm':>8} {'b0 pred/ref':>12}  note"
    lines = [header, "-" * len(header)]
    for r in results:
        if not r.ok:
            lines.append(f"{r.case:<24} {'':>5} {'FAILED':>7}  {r.error}")
            continue
        for i, (label, s) in enumerate(r.metrics.items()):
            b0 = f"{s['beta0_pred']:.0f}/{s['beta0_ref']:.0f}"
            notes = ([f"empty: {r.empty[label]}"] if r.empty.get(label) else []) + (r.notes if i == 0 else [])
            lines.append(
                f"{r.case:<24} {label:>5} {s['Dice']:>7.4f} {s['clDice']:>7.4f} {s['NSD']:>7.4f} "
                f"{s['HD95_mm']:>8.3f} {s['ASSD_mm']:>8.3f} {b0:>12}  {'; '.join(notes)}"
            )
    return "\n".join(lines)


def _counts(table: dict, label: str, metrics: Sequence[str]) -> str:
    parts = [f"{m} {table[label][m]}" for m in metrics if table[label].get(m)]
    return ", ".join(parts)


def format_means(summary: dict) -> str:
    """The console's closing lines: per label the means and ``n``, then the worst values standing in and the cases
    left out of the means."""
    shown = [m for m in PLOT_METRICS if m in summary["foreground_mean"]]
    settings = summary["settings"]
    rule = "failed cases count as worst" if settings["aggregation"] == "worst" else "nnU-Net v2: both empty -> NaN, nanmean, failed cases left out"
    lines = [f"means ({settings['aggregation']}: {rule}) over {summary['n_cases']} cases: "
             f"{summary['n_scored']} scored, {summary['n_failed']} failed"]
    lines.append(f"{'label':<11}" + "".join(f"{_SHORT.get(m, m):>9}" for m in shown) + f"{'n':>5}")
    rows = [(label, summary["mean"][label], max(summary["n"][label].values(), default=0)) for label in summary["mean"]]
    if len(rows) > 1:
        rows.append(("foreground", summary["foreground_mean"], None))
    for label, means, n in rows:
        values = "".join(f"{'n/a':>9}" if means.get(m) is None else f"{means[m]:>9.4f}" for m in shown)
        lines.append(f"{label:<11}{values}" + (f"{n:>5}" if n is not None else ""))
    for label in summary["mean"]:
        worst, excluded = _counts(summary["n_worst"], label, shown), _counts(summary["n_excluded"], label, shown)
        prefix = f"label {label}: " if len(summary["mean"]) > 1 else ""
        lines.append(f"{prefix}worst values in the means: {worst or 'none'}; excluded from the means: {excluded or 'none'}")
    return "\n".join(lines)


def _write_all(texts: dict[Path, bytes]) -> None:
    """Write every file next to its name, then rename them all into place."""
    temporary = {}
    try:
        for path, data in texts.items():
            tmp = path.with_name(f".{path.name}.partial")
            tmp.write_bytes(data)
            temporary[path] = tmp
        for path, tmp in temporary.items():
            os.replace(tmp, path)
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)


def write_reports(results: Sequence[CaseResult], settings: EvaluationSettings, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``cases.csv``, ``summary.json`` and ``evaluation.png`` into ``out_dir`` (created if needed).

    Returns:
        ``{"csv": ..., "summary": ..., "plot": ...}``.
    """
    from pipeline.evaluation.plots import plot_metrics

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(results, settings)
    summary = summarize(results, settings, agg)
    files = {"csv": out / CASES_CSV, "summary": out / SUMMARY_JSON, "plot": out / PLOT_PNG}
    _write_all({
        files["csv"]: cases_csv_text(results, agg).encode(),
        files["summary"]: strict_json(summary).encode(),
        files["plot"]: plot_metrics(results, agg, PLOT_METRICS),
    })
    return files
