"""Regenerate the README's pictures: ``python docs/figures.py [RUN_DIR]``.

Writes ``docs/images/phantoms.png`` (MIPs of four sample volumes), ``docs/images/loss_schedules.png`` (the four
loss-weight schedules on one scripted history of term losses and validation Dice) and, when a training run folder is
given (default ``runs/demo``), copies its ``training_curves.png`` to ``docs/images/demo_training_curves.png``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.plots import plot_volume_previews
from pipeline.schedules import create_schedule

ROOT = Path(__file__).resolve().parent.parent


#: the example of docs/schedules.md: the vessel_cldice preset and one parameter set per schedule
SCHEDULE_EXAMPLES = {
    "cosine": {"start_weights": {"dice": 0.7, "bce": 0.3, "cldice": 0.0}, "warmup_epochs": 15, "epochs": 10},
    "step": {"gamma": 0.7, "step_size": 8, "min_weight": {"dice": 0.2}},
    "adaptive": {"temperature": 0.5},
    "performance": {"patience": 3, "cooldown": 2, "shift": 0.1, "min_weight": {"dice": 0.25, "bce": 0.1}},
}


def scripted_history(epochs: int = 60) -> tuple[list[dict[str, float]], list[float]]:
    """Term losses that fall at different rates (clDice late) and a validation Dice that plateaus at epoch ~25."""
    t = np.arange(1, epochs + 1)
    losses = [
        {"dice": 0.15 + 0.8 * np.exp(-e / 8), "bce": 0.05 + 0.3 * np.exp(-e / 4), "cldice": 0.2 + 0.7 / (1 + np.exp((e - 25) / 5))}
        for e in t
    ]
    dice = [float(0.85 * (1 - np.exp(-min(e, 25) / 6)) + 0.002 * np.sin(e)) for e in t]
    return losses, dice


def plot_schedule_examples(path: Path, epochs: int = 60) -> Path:
    """The weights each schedule gives the vessel_cldice preset over the same scripted history."""
    import matplotlib.pyplot as plt

    losses, dice = scripted_history(epochs)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    for ax, (name, params) in zip(axes, SCHEDULE_EXAMPLES.items()):
        schedule = create_schedule(name, {"dice": 0.5, "bce": 0.2, "cldice": 0.3}, params)
        rows = [dict(schedule.weights)]
        for epoch in range(1, epochs):
            schedule.epoch_completed(epoch, losses[epoch - 1])
            schedule.evaluation_completed(dice[epoch - 1])
            rows.append(dict(schedule.weights))
        for term in rows[0]:
            ax.plot(range(1, epochs + 1), [r[term] for r in rows], drawstyle="steps-post", label=term)
        ax.set_title(name)
        ax.text(0.02, 0.02, "\n".join(f"{k}={v}" for k, v in params.items()), transform=ax.transAxes, fontsize=7,
                va="bottom", family="monospace")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("weight in force")
    axes[0].legend(loc="center right")
    fig.suptitle("loss-weight schedules on vessel_cldice (scripted term losses; validation Dice plateaus at epoch 25)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(run_dir: str = "runs/demo") -> None:
    images, labels, names = [], [], []
    for i in range(4):
        name = f"coronary_{i:03d}"
        images.append(np.asarray(nib.load(ROOT / "data_samples" / f"{name}_image.nii.gz").dataobj))
        labels.append(np.asarray(nib.load(ROOT / "data_samples" / f"{name}_label.nii.gz").dataobj))
        names.append(name)
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    print(plot_volume_previews(images, labels, names, out / "phantoms.png"))
    print(plot_schedule_examples(out / "loss_schedules.png"))
    curves = Path(run_dir) / "training_curves.png"
    if curves.is_file():
        print(shutil.copy(curves, out / "demo_training_curves.png"))


if __name__ == "__main__":
    main(*sys.argv[1:])
