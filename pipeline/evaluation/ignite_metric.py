"""Ignite metric over the evaluation tool's metric functions, with the voxel spacing of each volume.

The same :func:`~pipeline.evaluation.metrics.binary_metrics` scores validation batches, so a validation HD95 in mm is
the HD95 that ``vessel-pipeline evaluate`` reports for the same mask pair on the same grid. The metrics of one group
(HD95 and NSD: the same surface distances) are computed once per mask pair when several ``VesselMetric`` score it.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable, Sequence

import numpy as np
import torch
from ignite.engine import Engine
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from pipeline.evaluation.geometry import spacing_of
from pipeline.evaluation.metrics import METRICS, binary_metrics
from pipeline.evaluation.worst import DISTANCE_METRICS, bounded_value

__all__ = ["VesselMetric", "spacing_from_tensor"]


class _LastPair:
    """The metric groups computed so far for the last mask pair scored, keyed by a digest of both masks' bits, the
    spacing and the tolerance: validation attaches ``HD95_mm`` and ``NSD`` as two metrics of one evaluator, and both
    come from the same surface distances, which a full-size volume makes costly."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the last pair."""
        self.key: tuple | None = None
        self.scores: dict[str, float] = {}

    def score(self, pred: np.ndarray, label: np.ndarray, spacing: tuple, tolerance_mm: float, metric: str) -> float:
        key = (_digest(pred), _digest(label), pred.shape, tuple(spacing), tolerance_mm)
        if key != self.key:
            self.key, self.scores = key, {}
        if metric not in self.scores:
            self.scores.update(binary_metrics(pred, label, spacing, tolerance_mm, metrics=[metric]))
        return self.scores[metric]


def _digest(mask: np.ndarray) -> bytes:
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest()


_LAST_PAIR = _LastPair()


def spacing_from_tensor(t: torch.Tensor, index: int | None = None) -> tuple[float, float, float]:
    """Voxel size (mm) of a MONAI ``MetaTensor`` from its affine (``index``: item of a batched affine).

    Raises:
        ValueError: the tensor carries no affine; pass ``spacing`` to :class:`VesselMetric` instead.
    """
    affine = getattr(t, "affine", None)
    if affine is None:
        raise ValueError(
            f"a {type(t).__name__} without an affine has no voxel spacing; use MONAI MetaTensors (LoadImaged keeps the "
            "affine) or give VesselMetric(spacing=...)."
        )
    affine = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if affine.ndim == 3:
        affine = affine[0 if index is None else index]
    return spacing_of(affine)


class VesselMetric(Metric):
    """The mean over cases (and channels) of one metric of :func:`~pipeline.evaluation.metrics.binary_metrics`,
    e.g. ``"Dice"``, ``"clDice"``, ``"HD95_mm"``, ``"ASSD_mm"``, ``"NSD"`` or ``"beta0_error"``.

    ``update`` takes ``(y_pred, y)``: batched ``(B, C, X, Y, Z)`` tensors or lists of ``(C, X, Y, Z)`` tensors (what
    ``monai.handlers.from_engine(["pred", "label"])`` gives after MONAI's engines decollate a batch). Values ``> 0.5``
    are foreground. The spacing of each item is read from the affine of its ``MetaTensor`` (prediction first, then
    label) unless ``spacing`` is given.

    A distance that cannot be measured (exactly one mask empty: ``inf``) counts as the worst value, the diagonal of
    the volume's field of view in mm (:mod:`pipeline.evaluation.worst`, the rule of the evaluation tool's means), so
    predicting nothing for a hard case makes the mean worse, never better. How many values were such worst values is
    :attr:`worst_cases` after :meth:`compute`; for a distance metric, :meth:`attach` publishes it as
    ``<name>_worst_cases`` next to the metric (MLflow and the history see it). Works under ``ignite.distributed`` (sums are all-reduced).

    Args:
        metric: one of :data:`~pipeline.evaluation.metrics.METRICS`.
        tolerance_mm: NSD tolerance in mm.
        spacing: fixed voxel size in mm, or ``None`` to read it from each tensor.
        include_background: score channel 0 too (single-channel binary predictions need ``True``).
        output_transform: maps the engine's output to ``(y_pred, y)``.
        device: where the accumulators live.
    """

    def __init__(
        self,
        metric: str = "Dice",
        tolerance_mm: float = 1.0,
        spacing: Sequence[float] | None = None,
        include_background: bool = True,
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}.")
        self.metric = metric
        self.tolerance_mm = float(tolerance_mm)
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.include_background = include_background
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = torch.tensor(0.0, dtype=torch.float64, device=self._device)
        self._count = torch.tensor(0, dtype=torch.long, device=self._device)
        self._worst = torch.tensor(0, dtype=torch.long, device=self._device)

    def _items(self, y_pred, y):
        if isinstance(y_pred, torch.Tensor) and isinstance(y, torch.Tensor) and y_pred.ndim == 5:
            return [(y_pred[b], y[b], b) for b in range(y_pred.shape[0])], True
        if isinstance(y_pred, (list, tuple)) and isinstance(y, (list, tuple)) and len(y_pred) == len(y):
            return [(p, t, None) for p, t in zip(y_pred, y)], False
        raise ValueError(
            "VesselMetric expects (y_pred, y) as two (B, C, X, Y, Z) tensors or two lists of (C, X, Y, Z) tensors, "
            f"got {type(y_pred).__name__} and {type(y).__name__}."
        )

    def _spacing(self, pred: torch.Tensor, label: torch.Tensor, batched: bool, index: int | None, y_pred, y):
        if self.spacing is not None:
            return self.spacing
        for source in ((y_pred, y) if batched else (pred, label)):
            if getattr(source, "affine", None) is not None:
                return spacing_from_tensor(source, index)
        return spacing_from_tensor(pred)

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        y_pred, y = output[0], output[1]
        items, batched = self._items(y_pred, y)
        for pred, label, index in items:
            if pred.shape != label.shape or pred.ndim != 4:
                raise ValueError(f"prediction and label must both be (C, X, Y, Z), got {tuple(pred.shape)} and {tuple(label.shape)}.")
            spacing = self._spacing(pred, label, batched, index, y_pred, y)
            p = (torch.as_tensor(pred).detach().cpu() > 0.5).numpy()
            t = (torch.as_tensor(label).detach().cpu() > 0.5).numpy()
            for c in range(0 if self.include_background else 1, p.shape[0]):
                value = _LAST_PAIR.score(p[c], t[c], spacing, self.tolerance_mm, self.metric)
                value, worst = bounded_value(self.metric, value, p[c].shape, spacing)
                self._sum += value
                self._count += 1
                self._worst += int(worst)

    @sync_all_reduce("_sum", "_count", "_worst")
    def compute(self) -> float:
        self.worst_cases = int(self._worst)
        return float(self._sum / self._count) if int(self._count) else math.nan

    def completed(self, engine: Engine, name: str) -> None:
        """Put the mean in ``engine.state.metrics[name]`` and, for a distance, the number of worst values in
        ``engine.state.metrics[name + "_worst_cases"]``."""
        super().completed(engine, name)
        if self.metric in DISTANCE_METRICS:
            engine.state.metrics[f"{name}_worst_cases"] = self.worst_cases
