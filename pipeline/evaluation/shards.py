"""Spreading an evaluation over jobs: ``evaluate --shard I/N`` scores every N-th case into a partial result, and
``evaluate --merge`` combines the N partial results into the reports one run gives.

A partial result (``partial.json``) holds the settings, the shard, the names of all cases of the run (so a merge can
tell that every case was scored once, by the same settings) and the per-case results. Merging checks all of that
before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Sequence

from pipeline.errors import InputError
from pipeline.io import write_json
from pipeline.evaluation.pairing import CasePair
from pipeline.evaluation.runner import CaseResult, evaluate_pairs
from pipeline.evaluation.settings import EvaluationSettings

__all__ = ["PARTIAL_JSON", "merge_partials", "report_merged", "score_shard"]

PARTIAL_JSON = "partial.json"
_FORMAT = "vessel-pipeline partial evaluation 1"


def _encode(result: CaseResult) -> dict:
    entry = asdict(result)
    entry["metrics"] = {str(k): {m: v if math.isfinite(v) else repr(v) for m, v in s.items()} for k, s in result.metrics.items()}
    entry["empty"] = {str(k): v for k, v in result.empty.items()}
    return entry


def _decode(entry: dict) -> CaseResult:
    known = {f.name for f in fields(CaseResult)}
    values = {k: v for k, v in entry.items() if k in known}
    values["metrics"] = {int(k): {m: float(v) for m, v in s.items()} for k, s in entry["metrics"].items()}
    values["empty"] = {int(k): v for k, v in entry["empty"].items()}
    for key in ("spacing", "shape"):
        values[key] = None if entry.get(key) is None else tuple(entry[key])
    return CaseResult(**values)


def score_shard(
    pairs: Sequence[CasePair], shard: tuple[int, int], settings: EvaluationSettings, workers: int, out_dir: str | os.PathLike
):
    """Score the cases of one shard (every N-th case of the case list, from the I-th) and write
    ``partial.json`` to ``out_dir``.

    Returns:
        an object with ``results`` and ``n_failed``.
    """
    from pipeline.evaluation.report import format_results_table
    from pipeline.evaluation.tool import EvaluationReport

    index, count = shard
    ordered = list(pairs)
    mine = ordered[index - 1 :: count]
    results = evaluate_pairs(mine, settings, workers)
    partial = {
        "format": _FORMAT,
        "shard": [index, count],
        "settings": settings.as_dict(),
        "cases": [p.case for p in ordered],
        "results": [_encode(r) for r in results],
    }
    path = Path(out_dir) / PARTIAL_JSON
    write_json(path, partial)
    print(f"\nshard {index}/{count}: {len(mine)} of {len(ordered)} cases\n")
    print(format_results_table(results))
    print(f"\nwrote {path}; combine all {count} with: vessel-pipeline evaluate --merge DIR... --out DIR")
    if any(not r.ok for r in results):
        print(f"error: {sum(not r.ok for r in results)} of {len(results)} cases could not be scored (see the table).", file=sys.stderr)
    return EvaluationReport(results=results, summary={}, files={"partial": path})


def _read_partial(folder: str | os.PathLike) -> dict:
    path = Path(folder) / PARTIAL_JSON if Path(folder).is_dir() else Path(folder)
    try:
        partial = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no partial result '{path}' (written by evaluate --shard I/N --out DIR).") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"partial result '{path}' cannot be read: {e}.") from None
    if not isinstance(partial, dict) or partial.get("format") != _FORMAT:
        raise InputError(f"'{path}' is not a partial result of evaluate --shard (format {_FORMAT!r}).")
    partial["path"] = str(path)
    return partial


def merge_partials(folders: Sequence[str | os.PathLike]) -> tuple[list[CaseResult], EvaluationSettings]:
    """The results of a sharded run, in the order one run gives, and its settings.

    Raises:
        InputError: a partial result is missing or unreadable; the partial results differ in settings, number of
            shards or case list; a shard is missing or given twice.
    """
    partials = [_read_partial(f) for f in folders]
    first = partials[0]
    for other in partials[1:]:
        for key, what in (("settings", "settings"), ("cases", "case lists"), ("shard", "numbers of shards")):
            mine, theirs = (first[key][1], other[key][1]) if key == "shard" else (first[key], other[key])
            if mine != theirs:
                detail = ""
                if key == "settings":
                    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                    detail = ": " + ", ".join(f"{k} {mine.get(k)!r} vs {theirs.get(k)!r}" for k in differ)
                raise InputError(f"partial results '{first['path']}' and '{other['path']}' have different {what}{detail}; "
                                 "merge the shards of one run.")
    count = first["shard"][1]
    seen: dict[int, str] = {}
    for partial in partials:
        index = partial["shard"][0]
        if index in seen:
            raise InputError(f"shard {index}/{count} is given twice: '{seen[index]}' and '{partial['path']}'.")
        seen[index] = partial["path"]
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise InputError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: give all {count} partial results.")
    by_case = {entry["case"]: _decode(entry) for partial in partials for entry in partial["results"]}
    absent = [c for c in first["cases"] if c not in by_case]
    if absent:
        raise InputError(f"the partial results lack case(s) {absent[:5]}; score them again with their shard.")
    return [by_case[c] for c in first["cases"]], EvaluationSettings.from_dict(first["settings"])


def report_merged(results: list[CaseResult], settings: EvaluationSettings, out_dir: str | os.PathLike | None):
    """The report of the merged run, its files written to ``out_dir`` as one run writes them."""
    from pipeline.evaluation.report import summarize, write_reports
    from pipeline.evaluation.tool import EvaluationReport

    files = write_reports(results, settings, out_dir) if out_dir is not None else {}
    return EvaluationReport(results=results, summary=summarize(results, settings), files=files)
