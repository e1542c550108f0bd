"""A training plan derived from a dataset's fingerprint, written as ``DATASET_DIR/plan.json``.

The rules follow nnU-Net's experiment planning, scaled to this project's network and machines:

- **target spacing**: the median spacing; for anisotropic data (coarsest / finest median spacing > 3) the coarse
  axis takes the 10th percentile instead. When every case is already within ``resample_tolerance`` of the median on
  every axis, nothing is resampled (``pixdim`` is ``None``) — resampling would only blur.
- **normalisation** (CT): clip to the 0.5–99.5 percentiles of the foreground (vessel) intensities, then divide by their
  standard deviation (nnU-Net's z-score, shifted so that the lower clip bound is 0). In the bundle this is the
  three-number ``hu_window`` ``[low, high, std]`` (see :mod:`transforms.intensity`).
- **patch and batch**: the patch starts at the median image shape (at the target spacing), divisible by the network's
  total stride; while ``min_patches`` of them do not fit into the memory budget (``bytes_per_voxel`` per patch voxel,
  measured for the bundle's UNet in training), the axis longest in mm loses one stride step. The patches per step
  then fill the budget up to ``max_patches``; on a CPU the work per step is also capped (``cpu_voxels_per_step``).
- **learning rate and epochs**: the bundle's AdamW at ``learning_rate``; epochs so that training takes about
  ``target_steps`` optimiser steps, within ``[min_epochs, max_epochs]``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.data.fingerprint import DatasetFingerprint, compute_fingerprint
from pipeline.errors import DatasetError, SettingsError
from pipeline.io import write_json

__all__ = [
    "PLAN_NAME",
    "PLAN_SCHEMA_VERSION",
    "Plan",
    "PlanSettings",
    "load_plan",
    "make_plan",
    "memory_budget",
    "plan_dataset",
    "plan_overrides",
    "write_plan",
]

PLAN_NAME = "plan.json"

#: raise when a field changes meaning; :func:`load_plan` refuses other versions
PLAN_SCHEMA_VERSION = 1

#: the bundle keys a plan sets (see :func:`plan_overrides`)
PLANNED_KEYS: tuple[str, ...] = (
    "pixdim", "hu_window", "patch_size", "batch_size", "num_samples", "learning_rate", "epochs"
)


@dataclass(frozen=True)
class PlanSettings:
    """What the planner may use.

    Args:
        device: ``"cpu"`` or ``"cuda"``: which memory the budget is for.
        memory_bytes: the memory budget for one training step (``None``: :func:`memory_budget` of ``device``).
        strides: the network's down-sampling strides; patches are divisible by their product.
        bytes_per_voxel: training memory per patch voxel (forward and backward, float32).
        min_patches, max_patches: patches per optimiser step.
        cpu_voxels_per_step: on a CPU, the most patch voxels per step (the work of one step, not memory, is the limit
            there); the default is 4 patches of 64×64×48.
        resample_tolerance: relative spacing difference from the median below which nothing is resampled.
        anisotropy: coarsest / finest median spacing above which the coarse axis takes its 10th percentile.
        learning_rate: initial learning rate of the bundle's AdamW.
        target_steps, min_epochs, max_epochs: training length.
        samples_per_volume: patches drawn from one volume per step (``num_samples``), at most.
    """

    device: str = "cpu"
    memory_bytes: int | None = None
    strides: tuple[int, ...] = (2, 2, 2)
    bytes_per_voxel: float = 320.0
    min_patches: int = 2
    max_patches: int = 8
    cpu_voxels_per_step: int = 4 * 64 * 64 * 48
    resample_tolerance: float = 0.1
    anisotropy: float = 3.0
    learning_rate: float = 2e-3
    target_steps: int = 1000
    min_epochs: int = 30
    max_epochs: int = 1000
    samples_per_volume: int = 4

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise SettingsError(f"device must be 'cpu' or 'cuda', got {self.device!r}.")
        if self.memory_bytes is not None and self.memory_bytes <= 0:
            raise SettingsError(f"memory_bytes must be > 0, got {self.memory_bytes}.")
        if not 1 <= self.min_patches <= self.max_patches:
            raise SettingsError(f"need 1 <= min_patches <= max_patches, got {self.min_patches}, {self.max_patches}.")
        if not 1 <= self.min_epochs <= self.max_epochs:
            raise SettingsError(f"need 1 <= min_epochs <= max_epochs, got {self.min_epochs}, {self.max_epochs}.")
        for name in ("bytes_per_voxel", "learning_rate", "target_steps", "cpu_voxels_per_step", "samples_per_volume"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be > 0, got {getattr(self, name)}.")

    @property
    def divisor(self) -> int:
        return math.prod(int(s) for s in self.strides)


@dataclass(frozen=True)
class Plan:
    """The training settings that follow from a dataset, with the fingerprint they came from.

    Attributes:
        pixdim: target spacing (mm, RAS order), ``None`` for no resampling.
        hu_window: ``[low, high, std]``: clip, then scale by the foreground's standard deviation.
        patch_size: patch (and sliding-window) size in voxels.
        batch_size: volumes per step; each gives ``num_samples`` patches.
        num_samples: patches per volume and step.
        learning_rate: initial learning rate.
        epochs: training epochs.
        fingerprint: :meth:`DatasetFingerprint.to_dict` of the data.
        reasons: one line per decision, for people.
        memory: the budget and the estimate the patch and batch were sized for.
        schema_version: :data:`PLAN_SCHEMA_VERSION`.
        created: UTC time stamp.
    """

    pixdim: list[float] | None
    hu_window: list[float]
    patch_size: list[int]
    batch_size: int
    num_samples: int
    learning_rate: float
    epochs: int
    fingerprint: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PLAN_SCHEMA_VERSION
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_budget(device: str) -> int:
    """Bytes one training step may use: half of the GPU's memory, or a quarter of the machine's RAM."""
    if device == "cuda":
        import torch

        return int(0.5 * torch.cuda.get_device_properties(0).total_memory)
    return int(0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _target_spacing(fp: DatasetFingerprint, s: PlanSettings, reasons: list[str]) -> list[float] | None:
    median = list(fp.spacing_median)
    spread = max(
        max(abs(lo - m), abs(hi - m)) / m for lo, hi, m in zip(fp.spacing_min, fp.spacing_max, median)
    )
    if spread <= s.resample_tolerance:
        reasons.append(
            f"no resampling: every case's spacing is within {spread:.1%} of the median {_fmt(median)} mm "
            f"(tolerance {s.resample_tolerance:.0%})"
        )
        return None
    target = median[:]
    coarse = max(range(3), key=lambda i: median[i])
    if median[coarse] / min(median) > s.anisotropy:
        target[coarse] = fp.spacing_p10[coarse]
        reasons.append(f"anisotropic data: axis {coarse} resampled to its 10th-percentile spacing {target[coarse]:.3g} mm")
    reasons.append(f"resampling to {_fmt(target)} mm: spacings differ by up to {spread:.0%} from the median")
    return [round(v, 4) for v in target]


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:.3g}" for v in values)


def _patch_and_batch(
    shape: Sequence[float], spacing: Sequence[float], s: PlanSettings, budget: int, reasons: list[str]
) -> tuple[list[int], int]:
    d = s.divisor
    patch = [max(d, int(n // d) * d) for n in shape]
    voxel_cap = budget / s.bytes_per_voxel
    if s.device == "cpu":
        voxel_cap = min(voxel_cap, s.cpu_voxels_per_step)
    while math.prod(patch) * s.min_patches > voxel_cap and max(patch) > d:
        axis = max((i for i in range(3) if patch[i] > d), key=lambda i: patch[i] * spacing[i])
        patch[axis] -= d
    patches = int(max(s.min_patches, min(s.max_patches, voxel_cap // math.prod(patch))))
    reasons.append(
        f"patch {_fmt(patch)} voxels ({_fmt([p * sp for p, sp in zip(patch, spacing)])} mm) from the median shape "
        f"{_fmt(shape)} at the target spacing; {patches} patches per step fit the {s.device} budget"
    )
    return patch, patches


def make_plan(fingerprint: DatasetFingerprint, settings: PlanSettings | None = None, n_training: int | None = None) -> Plan:
    """The plan for a dataset (pure: no file or device is read unless ``settings.memory_bytes`` is ``None``).

    Args:
        fingerprint: the dataset's statistics.
        settings: the planner's rules and limits.
        n_training: cases in the training list (default: all cases of the fingerprint), for the epochs.

    Returns:
        the plan.
    """
    s = settings or PlanSettings()
    reasons: list[str] = []
    fp = fingerprint
    pixdim = _target_spacing(fp, s, reasons)
    spacing = list(fp.spacing_median) if pixdim is None else pixdim
    shape = [n * m / t for n, m, t in zip(fp.shape_median, fp.spacing_median, spacing)]
    budget = s.memory_bytes if s.memory_bytes is not None else memory_budget(s.device)
    patch, patches = _patch_and_batch(shape, spacing, s, budget, reasons)
    num_samples = min(s.samples_per_volume, patches)
    batch_size = max(1, patches // num_samples)
    radius = fp.radius_mm.get("p50", 0.0)
    if radius and radius / min(spacing) < 1.0:
        reasons.append(f"warning: the median vessel radius {radius:.2f} mm is under one voxel ({min(spacing):.3g} mm)")
    it = fp.intensity
    low, high = it["p00_5"], it["p99_5"]
    std = max(float(it["std"]), 1e-6)
    reasons.append(
        f"CT normalisation: clip to the vessel 0.5-99.5 percentiles [{low:.1f}, {high:.1f}] HU, then divide by their "
        f"std {std:.1f} (z-score with the clip floor at 0)"
    )
    n_train = n_training or fp.n_cases
    steps_per_epoch = math.ceil(n_train / batch_size)
    epochs = min(s.max_epochs, max(s.min_epochs, math.ceil(s.target_steps / steps_per_epoch)))
    reasons.append(
        f"{epochs} epochs of {steps_per_epoch} steps ({n_train} training volumes, batch {batch_size}) for about "
        f"{s.target_steps} steps, learning rate {s.learning_rate:g}"
    )
    return Plan(
        pixdim=pixdim,
        hu_window=[round(low, 3), round(high, 3), round(std, 3)],
        patch_size=patch,
        batch_size=batch_size,
        num_samples=num_samples,
        learning_rate=s.learning_rate,
        epochs=epochs,
        fingerprint=fp.to_dict(),
        reasons=reasons,
        memory={
            "device": s.device,
            "budget_bytes": int(budget),
            "estimated_bytes": int(math.prod(patch) * patches * s.bytes_per_voxel),
            "bytes_per_voxel": s.bytes_per_voxel,
        },
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def write_plan(plan: Plan, dataset_dir: str | os.PathLike) -> Path:
    """Write ``dataset_dir/plan.json`` atomically (a temporary file, flushed, then renamed over the old one)."""
    path = Path(dataset_dir) / PLAN_NAME
    write_json(path, plan.to_dict())
    return path


def load_plan(dataset_dir: str | os.PathLike) -> Plan | None:
    """The plan in ``dataset_dir/plan.json``, or ``None`` when there is none.

    Raises:
        DatasetError: a plan that is not valid JSON, of another schema version, or lacks planned keys.
    """
    path = Path(dataset_dir) / PLAN_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as e:
        raise DatasetError(f"plan '{path}' cannot be read: {e}; rerun 'vessel-pipeline plan'.") from None
    if not isinstance(data, dict) or data.get("schema_version") != PLAN_SCHEMA_VERSION:
        version = data.get("schema_version") if isinstance(data, dict) else None
        raise DatasetError(
            f"plan '{path}' has schema_version {version!r}, this version reads {PLAN_SCHEMA_VERSION}; "
            "rerun 'vessel-pipeline plan'."
        )
    known = set(Plan.__dataclass_fields__)
    missing = [k for k in PLANNED_KEYS + ("fingerprint",) if k not in data]
    if missing:
        raise DatasetError(f"plan '{path}' lacks {missing}; rerun 'vessel-pipeline plan'.")
    return Plan(**{k: v for k, v in data.items() if k in known})


def plan_overrides(plan: Plan | Mapping[str, Any] | None) -> dict[str, Any]:
    """The bundle overrides of a plan: ``pixdim``, ``hu_window``, ``patch_size``, ``batch_size``, ``num_samples``,
    ``learning_rate`` and ``epochs`` (``{}`` for no plan). The one place a plan becomes bundle settings."""
    if plan is None:
        return {}
    values = plan.to_dict() if isinstance(plan, Plan) else dict(plan)
    return {k: values[k] for k in PLANNED_KEYS}


def plan_dataset(
    dataset_dir: str | os.PathLike, datalist: str | os.PathLike | None = None, settings: PlanSettings | None = None
) -> tuple[Plan, Path]:
    """Fingerprint the labelled cases of ``dataset_dir``, make its plan and write ``dataset_dir/plan.json``.

    Returns:
        the plan and the written path.

    Raises:
        DatasetError: see :func:`~pipeline.data.fingerprint.compute_fingerprint`.
    """
    s = settings or PlanSettings()
    fingerprint = compute_fingerprint(dataset_dir, datalist, device=s.device)
    n_training = fingerprint.source.get("cases_per_list", {}).get("training")
    plan = make_plan(fingerprint, s, n_training=n_training)
    return plan, write_plan(plan, dataset_dir)
