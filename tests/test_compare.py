"""``vessel-pipeline compare`` end to end on tiny data: two recipes x two seeds through the bundle, the report's numbers
against the runs' cases.csv, a real kill in the middle and a rerun, and the bad-input messages."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.evaluation.statistics import mean_ci
from pipeline.phantoms import PhantomConfig, write_phantom_dataset
from pipeline.workflows.comparison import parse_duration, run_comparison

ROOT = Path(__file__).resolve().parent.parent
#: a tiny network on 16-voxel patches, two epochs
TINY = {
    "network_def#channels": [8, 16, 32],
    "network_def#strides": [2, 2],
    "patch_size": [16, 16, 16],
    "num_samples": 2,
    "val_interval": 1,
    "validate#evaluator#extra_metrics": [],
}
RECIPES = ["default", "pre_plan"]


@pytest.fixture(scope="module")
def compare_data(tmp_path_factory) -> Path:
    """2 training, 1 validation and 6 test phantoms of 24x24x24, one vessel tree each."""
    out = tmp_path_factory.mktemp("compare_data")
    write_phantom_dataset(out, 9, PhantomConfig(shape=(24, 24, 24), n_trees=1), seed=11, fractions=(2, 1, 6))
    return out


def _compare(data: Path, out: Path):
    return run_comparison(data, out, RECIPES, seeds=2, epochs=2, device="cpu", overrides=TINY)


@pytest.fixture(scope="module")
def uninterrupted(compare_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    summary, files = _compare(compare_data, out)
    return out, summary, files


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_numbers_match_the_runs_cases(uninterrupted):
    out, summary, files = uninterrupted
    assert {p.name for p in files.values()} == {"results.csv", "summary.csv", "comparison.png", "report.md"}
    results = _csv(out / "results.csv")
    assert len(results) == 2 * 2 * 6 and {r["recipe"] for r in results} == set(RECIPES)
    for recipe in RECIPES:
        runs = [_csv(out / recipe / f"seed{s}" / "cases.csv") for s in (0, 1)]
        assert all(int(r["epochs"]) == 2 for run in runs for r in run)
        # mean over cases of the per-case seed means, from the runs' own files
        per_case = {}
        for run in runs:
            for row in run:
                per_case.setdefault(row["case"], []).append(float(row["Dice"]))
        expected = mean_ci([sum(v) / len(v) for v in per_case.values()])
        found = next(s for s in summary if s.recipe == recipe and s.metric == "Dice")
        assert (found.mean, found.ci_low, found.ci_high) == pytest.approx(expected)
        assert f"| {recipe} | {found.mean:.4f} [{found.ci_low:.4f}, {found.ci_high:.4f}]" in (out / "report.md").read_text()
    other = next(s for s in summary if s.recipe == "pre_plan" and s.metric == "Dice")
    assert other.n_cases == 6 and other.n_seeds == 2 and 0.0 < other.p_value <= 1.0
    # one MLflow store, one run per recipe and seed, tagged
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{out}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("compare").experiment_id])
    assert sorted((r.data.tags["recipe"], r.data.tags["seed"]) for r in runs) == sorted(
        (r, str(s)) for r in RECIPES for s in (0, 1)
    )


def test_killed_comparison_continues_to_the_same_report(compare_data, uninterrupted, tmp_path):
    """The uninterrupted comparison's folder without its last run and reports: a rerun in a child process reads the
    three finished runs back and trains the last one; it is killed during that training, then run again."""
    out = tmp_path / "out"
    shutil.copytree(uninterrupted[0], out)
    last = out / "pre_plan" / "seed1"
    shutil.rmtree(last)
    for name in ("results.csv", "summary.csv", "report.md", "comparison.png"):
        (out / name).unlink()
    code = (
        "import sys, json; from pipeline.workflows.comparison import run_comparison; "
        f"run_comparison(sys.argv[1], sys.argv[2], {RECIPES!r}, seeds=2, epochs=2, device='cpu', "
        "overrides=json.loads(sys.argv[3]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(compare_data), str(out), json.dumps(TINY)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300  # killed once the last run has its epoch-1 checkpoint, during epoch 2
    while not list((last / "checkpoints").glob("*.pt")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list((last / "checkpoints").glob("*.pt")) and not (last / "cases.csv").is_file()
    assert not (out / "results.csv").exists()

    _compare(compare_data, out)
    for name in ("results.csv", "summary.csv"):
        assert (out / name).read_text() == (uninterrupted[0] / name).read_text()
    assert (out / "pre_plan" / "seed1" / "cases.csv").read_text() == (
        uninterrupted[0] / "pre_plan" / "seed1" / "cases.csv"
    ).read_text()


def test_bad_input_is_one_line(compare_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compare", "--dataset-dir", str(compare_data), "--recipes", "default", "fancy", "--out", str(out)]) == 2
    assert "unknown recipes ['fancy']; valid recipes: ['default', 'pre_plan', 'cldice', 'skeleton_recall']" in capsys.readouterr().err
    few = tmp_path / "few"
    write_phantom_dataset(few, 4, PhantomConfig(shape=(24, 24, 24), n_trees=1), seed=3, fractions=(2, 1, 1))
    assert main(["compare", "--dataset-dir", str(few), "--out", str(out)]) == 2
    assert "has 1 cases; the paired statistics need at least 6" in capsys.readouterr().err
    assert main(["compare", "--dataset-dir", str(compare_data), "--time-budget", "soon", "--out", str(out)]) == 2
    assert "time budget 'soon' is not a duration like 90s, 20m or 1.5h" in capsys.readouterr().err
    assert not out.exists()
    assert parse_duration("20m") == 1200.0 and parse_duration("1.5h") == 5400.0 and parse_duration("90") == 90.0


def test_a_budget_too_small_for_one_validation(compare_data, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Exception, match=r"ended training after 1 epoch\(s\), before the first validation at epoch 2"):
        run_comparison(compare_data, out, RECIPES, seeds=1, time_budget=0.01, device="cpu",
                       overrides={**TINY, "val_interval": 2})
    assert not out.exists()
