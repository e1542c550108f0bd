"""PNG figures, written atomically: training curves and phantom previews."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.io import write_bytes  # noqa: E402

__all__ = ["plot_training_curves", "plot_volume_previews"]


def plot_training_curves(history: Sequence[dict[str, float]], path: str | Path, title: str = "training") -> Path:
    """Training loss and validation metrics per epoch, the best validation epoch marked (distances in mm, lower is
    better, on a second axis); with a loss-weight schedule
    also each term's mean loss and a third panel of the term weights over the epochs; with checkpoint decisions the
    epochs a checkpoint was saved (and those saved as best) marked on the validation panel.

    Args:
        history: one dict per epoch with ``epoch``, ``loss`` and optionally ``val_*`` metrics, ``<term>_loss``,
            ``weight_<term>`` (as :class:`pipeline.epoch_summary.EpochSummaryLogger` records them) and
            ``checkpoint_reasons`` (as :func:`pipeline.history.with_checkpoints` adds them).
        path: PNG file to write.
        title: figure title.

    Returns:
        the path written.
    """
    epochs = [h["epoch"] for h in history]
    terms = list(dict.fromkeys(k[len("weight_"):] for h in history for k in h if k.startswith("weight_")))
    fig, axes = plt.subplots(1, 3 if terms else 2, figsize=(15 if terms else 10, 3.8))
    ax_loss, ax_val = axes[0], axes[1]
    ax_loss.plot(epochs, [h["loss"] for h in history], color="black", label="training loss")
    for term in terms:
        pts = [(h["epoch"], h[f"{term}_loss"]) for h in history if f"{term}_loss" in h]
        if pts:
            ax_loss.plot(*zip(*pts), ls="--", lw=1, label=f"{term} term")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss" + (" (terms unweighted)" if terms else ""))
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    names = sorted({k for h in history for k in h if k.startswith("val_")})
    scores = [n for n in names if not n.endswith("_mm")]  # Dice, NSD, ...: 0 to 1, higher is better
    distances = [n for n in names if n.endswith("_mm")]  # HD95, ASSD in mm: lower is better, on their own axis
    ax_mm = ax_val.twinx() if distances else None
    lines = []
    for index, name in enumerate(names):
        pts = [(h["epoch"], h[name]) for h in history if name in h and h[name] is not None and np.isfinite(h[name])]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax = ax_val if name in scores else ax_mm
        lines += ax.plot(xs, ys, marker="o", ms=3, ls="-" if name in scores else ":", color=f"C{index}", label=name)
        best = int(np.argmax(ys) if name in scores else np.argmin(ys))
        ax.scatter([xs[best]], [ys[best]], s=80, facecolors="none", edgecolors="red", zorder=3)
        ax.annotate(f"best {ys[best]:.3f}", (xs[best], ys[best]), textcoords="offset points", xytext=(-40, -15), fontsize=8)
    marked = _mark_checkpoints(ax_val, history)
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("score (higher is better)" if distances else "metric")
    ax_val.set_ylim(0, 1)
    ax_val.set_title("validation" + (" and checkpoints" if marked else ""))
    ax_val.grid(alpha=0.3)
    if ax_mm is not None:
        ax_mm.set_ylabel("distance in mm (lower is better)")
        ax_mm.set_ylim(bottom=0)
    handles = lines + [h for h in ax_val.collections if h.get_label() and not h.get_label().startswith("_")]
    if handles:
        ax_val.legend(handles=handles, loc="lower right", fontsize=8)
    if terms:
        ax_w = axes[2]
        for index, term in enumerate(terms):  # equal weights overlap: line styles and widths tell them apart
            ax_w.plot(epochs, [h.get(f"weight_{term}", np.nan) for h in history], drawstyle="steps-post", label=term,
                      ls=("-", "--", ":", "-.")[index % 4], lw=2.5 - 0.4 * (index % 4))
        ax_w.set_xlabel("epoch")
        ax_w.set_ylabel("weight")
        ax_w.set_ylim(bottom=0)
        ax_w.set_title("loss weights in force")
        ax_w.grid(alpha=0.3)
        ax_w.legend(fontsize=8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=100)


def _mark_checkpoints(ax: plt.Axes, history: Sequence[dict]) -> bool:
    """Triangles along the top of ``ax`` at the epochs a checkpoint was saved, stars below them where it was saved as
    best."""
    saved = [h["epoch"] for h in history if h.get("checkpoint_reasons")]
    best = [h["epoch"] for h in history if "best" in str(h.get("checkpoint_reasons", "")).replace(";", "+").split("+")]
    if saved:
        ax.scatter(saved, [0.97] * len(saved), marker="v", color="grey", s=30, label="checkpoint saved", zorder=3)
    if best:
        ax.scatter(best, [0.91] * len(best), marker="*", color="green", s=60, label="saved as best", zorder=3)
    return bool(saved)


def plot_volume_previews(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], names: Sequence[str], path: str | Path
) -> Path:
    """Maximum-intensity projections (axis 2) of CT volumes with the label outline, one column per volume."""
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, image, label, name in zip(axes[0], images, labels, names):
        ax.imshow(np.asarray(image).max(axis=2).T, cmap="gray", vmin=-150, vmax=500, origin="lower")
        ax.contour(np.asarray(label).max(axis=2).T, levels=[0.5], colors="red", linewidths=0.6, origin="lower")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("maximum-intensity projection (HU -150..500), label outline in red", fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi=90)


def _save(fig: plt.Figure, path: str | Path, dpi: int) -> Path:
    """Render ``fig`` as PNG and write it atomically (a viewer or a tracker never reads half a picture); close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return write_bytes(path, buffer.getvalue())
