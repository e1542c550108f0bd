"""Box plots of the values the means use: one panel per metric, one box per label, every case a dot.

Each panel says how many values it holds; a worst value (failed case, infinite distance) is a red cross; the cases
outside the whiskers (1.5 interquartile ranges) are named.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np

from pipeline.evaluation.aggregation import Aggregate
from pipeline.evaluation.runner import CaseResult
from pipeline.evaluation.worst import SCORE_METRICS

__all__ = ["box_plot_figure", "outliers", "plot_metrics"]

_TITLES = {"HD95_mm": "HD95 (mm)", "ASSD_mm": "ASSD (mm)", "beta0_error": "β0 error (components)"}


def outliers(values: Sequence[float]) -> list[int]:
    """Indices of the values outside the box plot's whiskers (beyond 1.5 interquartile ranges from the box)."""
    if len(values) < 4:
        return []
    q1, q3 = np.percentile(values, [25, 75])
    reach = 1.5 * (q3 - q1)
    return [i for i, v in enumerate(values) if v < q1 - reach or v > q3 + reach]


def box_plot_figure(results: Sequence[CaseResult], agg: Aggregate, metrics: Sequence[str]):
    """The matplotlib figure of the box plots (close it with ``matplotlib.pyplot.close``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted(agg.mean)
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        panels = []
        for label in labels:
            points = [(r.case, c.values[label][metric], metric in c.worst.get(label, ()))
                      for r, c in zip(results, agg.cases)
                      if c is not None and label in c.values and not math.isnan(c.values[label].get(metric, math.nan))]
            panels.append(points)
        counts = "/".join(str(len(p)) for p in panels)
        ax.set_title(f"{_TITLES.get(metric, metric.replace('_mm', ' (mm)'))}\nn = {counts}", fontsize=9)
        if not any(panels):
            ax.text(0.5, 0.5, "no value", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.boxplot([[v for _, v, _ in p] for p in panels], widths=0.5, showfliers=False)
        for i, points in enumerate(panels, start=1):
            values = [v for _, v, _ in points]
            x = i + (np.linspace(-0.12, 0.12, len(points)) if len(points) > 1 else np.zeros(len(points)))
            worst = np.array([w for _, _, w in points], dtype=bool)
            ax.scatter(x[~worst], np.asarray(values)[~worst], s=12, alpha=0.7, zorder=3)
            ax.scatter(x[worst], np.asarray(values)[worst], s=24, marker="x", color="tab:red", zorder=3)
            for j in outliers(values):
                ax.annotate(points[j][0], (x[j], values[j]), xytext=(3, 0), textcoords="offset points", fontsize=6)
        ax.set_xticks(range(1, len(labels) + 1), [f"label {k}" for k in labels])
        if metric in SCORE_METRICS:
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.set_ylim(bottom=0.0)
        ax.grid(axis="y", alpha=0.3)
    n_failed = sum(not r.ok for r in results)
    fig.suptitle(f"{len(results) - n_failed} cases scored" + (f", {n_failed} failed" if n_failed else "")
                 + " (red x: worst value)", fontsize=9)
    # fixed margins: tight_layout would draw the whole figure once more only to measure it
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.1, top=0.8, wspace=0.4)
    return fig


def plot_metrics(results: Sequence[CaseResult], agg: Aggregate, metrics: Sequence[str]) -> bytes:
    """The PNG image of the box plots."""
    fig = box_plot_figure(results, agg, metrics)
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
