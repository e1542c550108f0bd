"""The three examples of examples/ run as they are, with tiny settings: the tiny phantoms of conftest.py (the same
kind of data as data_samples/, smaller), one or two epochs, a two-level UNet."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from monai.utils import set_determinism

from pipeline.tracking import import_mlflow

REPO = Path(__file__).resolve().parents[1]
TINY = ["--patch", "32", "32", "16", "--channels", "4", "8", "--max-cases", "2", "--device", "cpu"]


@pytest.fixture
def data(tiny_dataset) -> list[str]:
    return ["--data-dir", str(tiny_dataset)]


def _run(script: str, out: Path, *args: str) -> str:
    """Run an example in a new Python process, as a user would."""
    env = {**os.environ, "VESSEL_EXAMPLE_EPOCHS": "2", "MLFLOW_TRACKING_URI": ""}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), "--out", str(out), *TINY, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def run_here(monkeypatch, capsys):
    """Run an example as ``__main__`` in this process (saves the imports of a new process)."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(script: str, out: Path, *args: str) -> str:
        monkeypatch.setattr(sys, "argv", [script, "--out", str(out), *TINY, *args])
        capsys.readouterr()
        runpy.run_path(str(REPO / "examples" / script), run_name="__main__")
        set_determinism(seed=None)
        return capsys.readouterr().out

    return run


def _run_of(out: Path):
    client = import_mlflow().MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("vessel-segmentation").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_quick_start(tmp_path, data):
    out = tmp_path / "quick"
    stdout = _run("quick_start.py", out, *data)  # epochs from VESSEL_EXAMPLE_EPOCHS
    assert "epoch 2:" in stdout and "epoch 3:" not in stdout
    data = json.loads((out / "coronary_unet_v1_training_data.json").read_text())
    assert data["summary"]["training_progress"]["total_epochs"] == 2
    assert data["summary"]["checkpoint_info"]["total_checkpoints"] == len(list((out / "checkpoints").glob("*.pt"))) >= 1
    assert (out / "coronary_unet_v1_training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "mlflow.db").exists()  # quick setup: MLflow off


def test_advanced_setup_on_monai_engines(tmp_path, data, run_here):
    out = tmp_path / "advanced"
    stdout = run_here("advanced_setup.py", out, *data, "--epochs", "1")
    assert "trained 1 epochs" in stdout
    client, run = _run_of(out)
    assert run.info.status == "FINISHED" and run.info.run_name == "coronary_unet_focal"
    assert run.data.params["loss.bce_config.gamma"] == "2.0"
    assert run.data.params["checkpoint.auto_strategy"] == "adaptive"
    assert {"loss", "val_mean_dice", "weight_dice", "weight_bce", "dice_loss", "bce_loss"} <= set(run.data.metrics)
    assert "best_model" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_full_featured_setup_and_its_resume(tmp_path, data, run_here):
    out = tmp_path / "full"
    stdout = run_here("full_featured_setup.py", out, *data, "--epochs", "1")
    assert "Total epochs: 1" in stdout
    _, first = _run_of(out)
    # run again with more epochs: it resumes from the checkpoint and continues the same MLflow run
    stdout = run_here("full_featured_setup.py", out, *data, "--epochs", "2")
    assert "Total epochs: 2" in stdout and "epoch 1:" not in stdout
    client, run = _run_of(out)
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["pipeline.resumes"] == "1"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_dice")] == [1, 2]
    assert run.data.params["loss.scheduler.type"] == "adaptive"
