"""The three examples of examples/ run as they are, with tiny settings: the tiny ``tubes`` phantoms of conftest.py
(the same files and datalist shape as the ``ccta`` crops of data_samples/, smaller), one or two epochs, a two-level
UNet."""

from __future__ import annotations

import json
import logging
import runpy
import sys
from pathlib import Path

import pytest
from monai.utils import set_determinism

from pipeline.tracking import import_mlflow

REPO = Path(__file__).resolve().parents[1]
#: loggers the examples quiet (restored after each run, so other tests see the usual levels)
QUIETED = ("ignite.engine.engine.SupervisedTrainer", "ignite.engine.engine.SupervisedEvaluator")
TINY = ["--patch", "32", "32", "16", "--channels", "4", "8", "--max-cases", "2", "--device", "cpu"]


@pytest.fixture
def data(tiny_dataset) -> list[str]:
    return ["--data-dir", str(tiny_dataset)]


@pytest.fixture
def run_here(monkeypatch, capsys):
    """Run an example file as ``__main__``, as ``python examples/<script>`` does, in this process (a new process
    would spend most of the test importing torch and MONAI again)."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("VESSEL_EXAMPLE_EPOCHS", "2")

    def run(script: str, out: Path, *args: str) -> str:
        monkeypatch.setattr(sys, "argv", [script, "--out", str(out), *TINY, *args])
        levels = {name: logging.getLogger(name).level for name in QUIETED}
        capsys.readouterr()
        try:
            runpy.run_path(str(REPO / "examples" / script), run_name="__main__")
        finally:
            set_determinism(seed=None)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
        return capsys.readouterr().out

    return run


def _run_of(out: Path):
    client = import_mlflow().MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("vessel-segmentation").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_quick_start(tmp_path, data, run_here):
    out = tmp_path / "quick"
    stdout = run_here("quick_start.py", out, *data)  # epochs from VESSEL_EXAMPLE_EPOCHS
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
    # the LR cosine (T_max 1 in the first run) stretched to 2 epochs: it ends at eta_min instead of climbing back up
    assert "next lr 1.00e-04" in stdout.split("epoch 2:")[1].splitlines()[0]
    client, run = _run_of(out)
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["pipeline.resumes"] == "1"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_dice")] == [1, 2]
    assert run.data.params["loss.scheduler.type"] == "adaptive"
