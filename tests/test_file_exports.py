"""Files a later command reads: one strict JSON writer for every export, and every export written atomically."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.history import export_history, write_history_csv, write_history_json
from pipeline.io import write_json

ROOT = Path(__file__).resolve().parents[1]
#: JSON that is not a file: the checkpoint handler's decisions broadcast between processes
NOT_FILES = {"pipeline/checkpoint/state/distributed.py"}


def _strict_load(text: str):
    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def json_dumpers() -> set[str]:
    """The files of ``pipeline/`` (but ``pipeline/io``) that call ``json.dump`` or ``json.dumps``."""
    found = set()
    for path in (ROOT / "pipeline").rglob("*.py"):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("pipeline/io/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(func, ast.Attribute) and func.attr in ("dump", "dumps") and getattr(func.value, "id", "") == "json":
                found.add(name)
    return found


def test_every_json_export_goes_through_the_one_strict_writer():
    found = json_dumpers()
    assert not found - NOT_FILES, f"write JSON with pipeline.io.write_json: {sorted(found - NOT_FILES)}"


def test_non_finite_numbers_are_null_at_any_depth(tmp_path):
    value = {"loss": math.inf, "nested": [{"hd95": -math.inf, "nan": math.nan}], "np": np.float32(0.5),
             "tensor": torch.tensor(2.0), "path": tmp_path, 3: (1, 2)}
    path = write_json(tmp_path / "x.json", value)
    assert _strict_load(path.read_text()) == {
        "loss": None, "nested": [{"hd95": None, "nan": None}], "np": 0.5, "tensor": 2.0, "path": str(tmp_path), "3": [1, 2],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot be written")


def test_a_failed_export_leaves_the_previous_files_whole(tmp_path):
    records = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]
    json_path, csv_path = export_history(records, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    broken = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": Unprintable()}]
    for write, path in ((write_history_json, json_path), (write_history_csv, csv_path)):
        with pytest.raises(RuntimeError, match="cannot be written"):
            write(broken, path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
