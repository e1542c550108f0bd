"""A dataset's fingerprint: the statistics a training plan is derived from (nnU-Net's idea).

Spacing, shape, foreground intensities and class balance come from MONAI's
:class:`monai.apps.auto3dseg.DataAnalyzer` (the per-case statistics of Auto3DSeg); the vessel radius distribution,
which it does not compute, comes from the labels' distance transform (:func:`~pipeline.data.vessel_radius.vessel_radii`).
Only labelled cases (the ``training`` and ``validation`` lists) are read; the test list stays unseen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import nibabel as nib
import numpy as np

from pipeline.data.datalist import check_items, load_datalist, resolve_datalist
from pipeline.io.nifti import spacing_of
from pipeline.data.vessel_radius import vessel_radii
from pipeline.errors import DatasetError

__all__ = ["DatasetFingerprint", "FINGERPRINT_SPLITS", "compute_fingerprint", "summarize"]

logger = logging.getLogger(__name__)

#: the labelled lists a fingerprint reads
FINGERPRINT_SPLITS: tuple[str, ...] = ("training", "validation")

#: percentiles (in %) stored for the vessel radius distribution
RADIUS_PERCENTILES: tuple[float, ...] = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass(frozen=True)
class DatasetFingerprint:
    """Statistics of the labelled cases of a dataset (RAS axis order, like MONAI's ``Orientationd("RAS")``).

    Attributes:
        n_cases: cases analysed.
        spacing_median: median voxel size (mm) per axis.
        spacing_min, spacing_max: smallest and largest voxel size per axis over the cases.
        spacing_p10: 10th percentile of the voxel size per axis (nnU-Net's choice for the coarse axis of
            anisotropic data).
        shape_median: median array shape per axis.
        intensity: foreground (vessel) intensities: ``p00_5``, ``p50``, ``p99_5`` (mean over cases of each case's
            percentile, as DataAnalyzer summarises them), and ``mean``/``std`` pooled over all foreground voxels.
        foreground_fraction: share of vessel voxels per case: ``mean``, ``min``, ``max``.
        radius_mm: vessel radius percentiles (``p05`` ... ``p95``) over all centreline voxels of all cases, mm.
        source: how it was computed (analyser, MONAI version, lists read, seconds).
    """

    n_cases: int
    spacing_median: tuple[float, float, float]
    spacing_min: tuple[float, float, float]
    spacing_max: tuple[float, float, float]
    spacing_p10: tuple[float, float, float]
    shape_median: tuple[int, int, int]
    intensity: dict[str, float]
    foreground_fraction: dict[str, float]
    radius_mm: dict[str, float]
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DatasetFingerprint":
        """Inverse of :meth:`to_dict`.

        Raises:
            DatasetError: missing keys.
        """
        missing = [f for f in cls.__dataclass_fields__ if f not in data and f != "source"]
        if missing:
            raise DatasetError(f"fingerprint lacks {missing}; recompute it with 'vessel-pipeline plan'.")
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("spacing_median", "spacing_min", "spacing_max", "spacing_p10"):
            values[key] = tuple(float(v) for v in values[key])
        values["shape_median"] = tuple(int(v) for v in values["shape_median"])
        return cls(**values)


@contextlib.contextmanager
def _quiet_analyzer() -> Iterator[None]:
    """No INFO lines from DataAnalyzer (the caller logs one summary line) and not the deprecation notice of its own
    ``Orientationd``; its progress bar stays."""
    log = logging.getLogger("monai.apps.auto3dseg.data_analyzer")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="monai")
            yield
    finally:
        log.setLevel(level)


def _run_analyzer(items: list[dict[str, str]], device: str) -> list[dict[str, Any]]:
    """DataAnalyzer's per-case statistics of ``items`` (its YAML output goes to a temporary folder)."""
    from monai.apps.auto3dseg import DataAnalyzer

    with tempfile.TemporaryDirectory() as tmp, _quiet_analyzer():
        analyzer = DataAnalyzer(
            {"training": items}, "", output_path=str(Path(tmp) / "datastats.yaml"), device=device, worker=0
        )
        cases = analyzer.get_all_case_stats()["stats_by_cases"]
    if len(cases) != len(items):  # DataAnalyzer skips a case it cannot read, with an INFO line only
        done = {str(c["image_filepath"]) for c in cases}
        lost = [it["image"] for it in items if it["image"] not in done]
        raise DatasetError(f"DataAnalyzer could not analyse {len(lost)} of {len(items)} cases, e.g. '{lost[0]}'.")
    return cases


def _first(stat: Any) -> dict[str, float]:
    """DataAnalyzer stores one statistics dict per channel in a list."""
    return stat[0] if isinstance(stat, list) else stat


def _case_radii(label_path: str) -> np.ndarray:
    img = nib.load(label_path)
    return vessel_radii(np.asarray(img.dataobj), spacing_of(img.affine))


def _mm(values: np.ndarray) -> tuple[float, ...]:
    """Spacings rounded to 0.1 µm (NIfTI headers store float32: 0.4 reads back as 0.4000000059604645)."""
    return tuple(round(float(v), 4) for v in values)


def summarize(cases: Sequence[Mapping[str, Any]], radii: np.ndarray) -> dict[str, Any]:
    """The fingerprint's statistics from DataAnalyzer's per-case records and the pooled radii (pure).

    Args:
        cases: DataAnalyzer's ``stats_by_cases`` entries.
        radii: vessel radii (mm) of all cases' centreline voxels.

    Returns:
        the :class:`DatasetFingerprint` fields except ``source``.
    """
    spacing = np.array([c["image_stats"]["spacing"] for c in cases], dtype=np.float64)
    shape = np.array([c["image_stats"]["shape"][0] for c in cases], dtype=np.float64)
    fg = [_first(c["image_foreground_stats"]["intensity"]) for c in cases]
    fraction = np.array([float(c["label_stats"]["label"][-1]["foreground_percentage"]) for c in cases])
    counts = fraction * shape.prod(axis=1)
    if counts.sum() <= 0:
        raise DatasetError("the labelled cases hold no vessel voxel; a plan needs labels with foreground.")
    means = np.array([f["mean"] for f in fg])
    stds = np.array([f["stdev"] for f in fg])
    weights = counts / counts.sum()
    pooled_mean = float((weights * means).sum())
    pooled_std = float(np.sqrt((weights * (stds**2 + (means - pooled_mean) ** 2)).sum()))
    radius = {f"p{q:02.0f}": round(float(np.percentile(radii, q)), 4) if len(radii) else 0.0 for q in RADIUS_PERCENTILES}
    return {
        "n_cases": len(cases),
        "spacing_median": _mm(np.median(spacing, axis=0)),
        "spacing_min": _mm(spacing.min(axis=0)),
        "spacing_max": _mm(spacing.max(axis=0)),
        "spacing_p10": _mm(np.percentile(spacing, 10, axis=0)),
        "shape_median": tuple(int(round(v)) for v in np.median(shape, axis=0)),
        "intensity": {
            "p00_5": float(np.mean([f["percentile_00_5"] for f in fg])),
            "p50": float(np.mean([f["median"] for f in fg])),
            "p99_5": float(np.mean([f["percentile_99_5"] for f in fg])),
            "mean": pooled_mean,
            "std": pooled_std,
        },
        "foreground_fraction": {"mean": float(fraction.mean()), "min": float(fraction.min()), "max": float(fraction.max())},
        "radius_mm": radius,
    }


def compute_fingerprint(
    dataset_dir: str | os.PathLike,
    datalist: str | os.PathLike | None = None,
    splits: Sequence[str] = FINGERPRINT_SPLITS,
    device: str = "cpu",
) -> DatasetFingerprint:
    """Analyse the labelled cases of a dataset.

    Args:
        dataset_dir: the dataset folder.
        datalist: its MSD-style datalist (default ``dataset_dir/dataset.json``).
        splits: the lists read; a list the datalist lacks is skipped, but at least one must exist.
        device: where DataAnalyzer computes (``"cpu"`` or ``"cuda"``).

    Returns:
        the fingerprint.

    Raises:
        DatasetError: no labelled list, a broken file, or labels without any vessel voxel.
    """
    resolve_datalist(dataset_dir, datalist)  # a missing folder or datalist is named as such
    items: list[dict[str, str]] = []
    errors, counts = [], {}
    for split in splits:
        try:
            found = load_datalist(dataset_dir, split, datalist)
        except DatasetError as e:
            errors.append(str(e))
            continue
        items += found
        counts[split] = len(found)
    if not items:
        raise DatasetError(f"no labelled case to analyse in lists {list(splits)}: {errors[0] if errors else ''}")
    check_items(items)
    start = time.perf_counter()
    cases = _run_analyzer(items, device)
    analyzer_seconds = time.perf_counter() - start
    radii = np.concatenate([_case_radii(it["label"]) for it in items])
    stats = summarize(cases, radii)
    import monai

    source = {
        "analyzer": "monai.apps.auto3dseg.DataAnalyzer",
        "monai": monai.__version__,
        "cases_per_list": counts,
        "analyzer_seconds": round(analyzer_seconds, 2),
        "radius_seconds": round(time.perf_counter() - start - analyzer_seconds, 2),
    }
    logger.info(
        "fingerprint of %d cases: median spacing %s mm, median shape %s, vessel radius median %.2f mm (%.1f s)",
        stats["n_cases"], [round(s, 3) for s in stats["spacing_median"]], list(stats["shape_median"]),
        stats["radius_mm"]["p50"], time.perf_counter() - start,
    )
    return DatasetFingerprint(**stats, source=source)
