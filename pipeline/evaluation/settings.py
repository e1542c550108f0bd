"""How cases are scored and averaged: the evaluation tool's settings (standard library only, so the command line can
check them before anything heavy is imported)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pipeline.errors import SettingsError

__all__ = ["AGGREGATIONS", "EvaluationSettings", "GEOMETRY_TOLERANCE_MM"]

#: largest distance (mm) between corresponding voxel centres of two grids that still counts as the same grid
GEOMETRY_TOLERANCE_MM = 1e-3
#: how the per-case values are averaged (see :mod:`pipeline.evaluation.aggregation`)
AGGREGATIONS = ("worst", "nnunet")


@dataclass(frozen=True)
class EvaluationSettings:
    """How cases are scored and averaged.

    Args:
        tolerance_mm: NSD tolerance in mm.
        labels: label values to score in multi-label files; ``None`` for binary files (scored as label 1).
        betti1: also compute the first Betti numbers (tunnels) from the Euler characteristic.
        geometry_tolerance_mm: largest distance in mm between corresponding voxel centres of the prediction's grid
            (after a lossless reorientation) and the label's grid.
        threshold: binary files only: a prediction voxel ``>= threshold`` is foreground (probability maps);
            ``None`` requires 0/1 values.
        nonzero: binary files only: every nonzero voxel is foreground, in each file separately (0/255 against 0/1).
        aggregation: ``"worst"`` (a failed or missing case counts as the worst value) or ``"nnunet"`` (nnU-Net v2's
            ``summary.json``: both-empty scores are NaN, ``nanmean``, failed cases left out).

    Raises:
        SettingsError: a value out of range or a combination that cannot work, naming the option.
    """

    tolerance_mm: float = 1.0
    labels: tuple[int, ...] | None = None
    betti1: bool = False
    geometry_tolerance_mm: float = GEOMETRY_TOLERANCE_MM
    threshold: float | None = None
    nonzero: bool = False
    aggregation: str = "worst"

    def __post_init__(self) -> None:
        if not self.tolerance_mm >= 0:
            raise SettingsError(f"tolerance_mm must be >= 0 (mm), got {self.tolerance_mm}.")
        if not self.geometry_tolerance_mm >= 0:
            raise SettingsError(f"geometry_tolerance_mm must be >= 0 (mm), got {self.geometry_tolerance_mm}.")
        if self.labels is not None and (not self.labels or any(int(v) < 1 for v in self.labels)):
            raise SettingsError(f"labels must be one or more label values >= 1, got {self.labels}.")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise SettingsError(f"labels must be distinct, got {self.labels}.")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise SettingsError(f"threshold must be a finite number, got {self.threshold}.")
        if self.labels is not None and (self.threshold is not None or self.nonzero):
            raise SettingsError("threshold and nonzero are for binary files; with labels each value is its own class.")
        if self.threshold is not None and self.nonzero:
            raise SettingsError("give either threshold (probability maps) or nonzero (any nonzero value), not both.")
        if self.aggregation not in AGGREGATIONS:
            raise SettingsError(f"aggregation must be one of {list(AGGREGATIONS)}, got {self.aggregation!r}.")

    @property
    def label_values(self) -> tuple[int, ...]:
        """The label values scored (``(1,)`` for binary files)."""
        return tuple(int(v) for v in self.labels) if self.labels is not None else (1,)

    def as_dict(self) -> dict:
        """The settings as JSON values (``labels`` as the scored values, ``binary`` for binary files)."""
        values = asdict(self)
        values["labels"] = list(self.label_values)
        values["binary"] = self.labels is None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "EvaluationSettings":
        """The settings :meth:`as_dict` wrote."""
        fields = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        fields["labels"] = None if values.get("binary", fields.get("labels") is None) else tuple(fields["labels"])
        return cls(**fields)
