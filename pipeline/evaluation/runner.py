"""Scoring many cases: one case per task, optionally in worker processes; a bad case is reported, never fatal."""

from __future__ import annotations

import logging
import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from pipeline.errors import InputError, SettingsError
from pipeline.evaluation.geometry import load_volume, spacing_of, volume_diagonal_mm
from pipeline.evaluation.loading import load_pair
from pipeline.evaluation.metrics import binary_metrics, empty_flag
from pipeline.evaluation.pairing import CasePair
from pipeline.evaluation.settings import EvaluationSettings

__all__ = ["CaseResult", "EvaluationSettings", "evaluate_case", "evaluate_pairs", "failed"]

logger = logging.getLogger(__name__)


@dataclass
class CaseResult:
    """The scores of one case, or why it could not be scored.

    Attributes:
        case: case name.
        prediction: prediction file (``None`` if missing).
        label: label file (``None`` if missing).
        metrics: label value -> metric name -> value; empty when the case failed.
        empty: label value -> ``""``, ``"pred"``, ``"label"`` or ``"both"`` (see :func:`empty_flag`).
        spacing: voxel size in mm from the label's header.
        shape: the label's shape.
        diagonal_mm: the diagonal of the label's field of view (the worst distance, see
            :mod:`~pipeline.evaluation.worst`); for a failed case from whichever header could be read, else ``None``.
        notes: what the scores should be read with (reorientation, header warnings, absent or unrequested labels).
        error: the reason the case failed, ``None`` if it was scored.
        seconds: time spent on the case.
    """

    case: str
    prediction: str | None
    label: str | None
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    empty: dict[int, str] = field(default_factory=dict)
    spacing: tuple[float, ...] | None = None
    shape: tuple[int, ...] | None = None
    diagonal_mm: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def _blank(pair: CasePair) -> CaseResult:
    return CaseResult(
        pair.case,
        None if pair.prediction is None else str(pair.prediction),
        None if pair.label is None else str(pair.label),
    )


def _header_diagonal(pair: CasePair) -> float | None:
    """The field-of-view diagonal of a failed case, from the label's header, else the prediction's."""
    for path, role in ((pair.label, "label"), (pair.prediction, "prediction")):
        try:
            if path is not None and path.is_file():
                img = load_volume(str(path), role)
                spacing = spacing_of(img.affine)
                if all(s > 1e-6 for s in spacing):
                    return volume_diagonal_mm(img.shape, spacing)
        except (InputError, OSError, ValueError):
            continue
    return None


def evaluate_case(pair: CasePair, settings: EvaluationSettings = EvaluationSettings()) -> CaseResult:
    """Read, check and score one case; never raises for one case's sake.

    A file that fails a check gives a failed result with the reason. Anything else that goes wrong is a bug: it is
    logged with its traceback and the case fails with ``internal error: ...``, so the other cases are still scored.
    """
    start = time.perf_counter()
    result = _blank(pair)
    try:
        loaded = load_pair(pair, settings)
        result.spacing, result.shape, result.notes = loaded.spacing, loaded.shape, loaded.notes
        result.diagonal_mm = volume_diagonal_mm(loaded.shape, loaded.spacing)
        for value, (pred, ref) in loaded.masks.items():
            scores = binary_metrics(pred, ref, loaded.spacing, settings.tolerance_mm, betti1=settings.betti1)
            result.metrics[value] = scores
            result.empty[value] = empty_flag(scores["n_pred"], scores["n_ref"])
    except InputError as e:
        result.metrics, result.empty, result.error = {}, {}, str(e).splitlines()[0]
    except Exception as e:  # a bug, not bad input: keep the traceback in the log, score the other cases
        logger.exception("internal error while scoring %s", pair.case)
        result.metrics, result.empty = {}, {}
        result.error = f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
    if not result.ok:
        result.diagonal_mm = _header_diagonal(pair)
    result.seconds = time.perf_counter() - start
    return result


def _log(result: CaseResult) -> None:
    if result.ok:
        logger.debug("%s scored in %.1f s", result.case, result.seconds)
    else:
        logger.warning("%s FAILED: %s", result.case, result.error)


def evaluate_pairs(
    pairs: Iterable[CasePair], settings: EvaluationSettings = EvaluationSettings(), workers: int = 1
) -> list[CaseResult]:
    """Score every pair, in order, with ``workers`` processes (1: in this process).

    Workers are forked (on platforms that can fork), so they start in milliseconds and share the imported modules;
    the metric code is numpy/scipy/scikit-image only and uses no thread pool that a fork could break.

    Args:
        pairs: the cases.
        settings: scoring settings.
        workers: number of processes.

    Returns:
        one :class:`CaseResult` per pair, failed ones included.
    """
    pairs = list(pairs)
    if workers < 1:
        raise SettingsError(f"workers must be >= 1, got {workers}.")
    if workers == 1 or len(pairs) < 2:
        results = []
        for pair in pairs:
            results.append(evaluate_case(pair, settings))
            _log(results[-1])
        return results
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with warnings.catch_warnings():
        # Python >= 3.12 warns when forking a process that has threads (torch's thread pool, once torch ran an op):
        # a child could inherit a lock held by one of them. The workers only run numpy/scipy/scikit-image code that
        # takes no such lock, so the fork is safe here.
        warnings.filterwarnings("ignore", message=".*multi-threaded, use of fork", category=DeprecationWarning)
        found = _run_pool(pairs, settings, workers, context)
        for i, result in enumerate(found):
            if result is None:  # its pool broke: score it again alone, so only a case that kills its worker fails
                found[i] = _run_pool([pairs[i]], settings, 1, context)[0]
    results = []
    for pair, result in zip(pairs, found):
        if result is None:
            result = _blank(pair)
            result.error = "worker process failed: it died while scoring this case (killed, e.g. for lack of memory?)"
        _log(result)
        results.append(result)
    return results


def _run_pool(pairs: list[CasePair], settings: EvaluationSettings, workers: int, context) -> list[CaseResult | None]:
    """Results in order; None for a case whose worker pool broke (a worker died) before it was scored."""
    found: list[CaseResult | None] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(pairs)), mp_context=context) as pool:
        futures = [pool.submit(evaluate_case, pair, settings) for pair in pairs]
        for pair, future in zip(pairs, futures):
            try:
                found.append(future.result())
            except BrokenProcessPool:
                found.append(None)
            except Exception as e:  # e.g. a result that cannot be sent back
                result = _blank(pair)
                result.error = f"worker process failed: {type(e).__name__}: {e}"
                found.append(result)
    return found


def failed(results: Sequence[CaseResult]) -> list[CaseResult]:
    """The results of the cases that could not be scored."""
    return [r for r in results if not r.ok]
