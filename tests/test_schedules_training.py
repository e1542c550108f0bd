"""Loss presets and loss-weight schedules through the command line (the bundle's train.json)."""

from __future__ import annotations

import json

import pytest

from pipeline.checkpoint import CheckpointStore
from pipeline.cli import main
from pipeline.schedules import CosineSchedule


def test_train_with_a_skeleton_recall_preset_and_a_cosine_schedule(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    params = json.dumps({"end_weights": {"skeleton_recall": 1.0}})
    code = main(["train", "--dataset-dir", str(tiny_dataset), "--output-dir", str(run), "--epochs", "3",
                 "--val-interval", "1", "--patch-size", "32", "32", "32", "--no-progress", "--device", "cpu",
                 "--set", "network_def#channels=[4,8,16]", "--set", "network_def#strides=[2,2]", "--set", "mlflow=false",
                 "--loss", "vessel_skeleton_recall", "--loss-schedule", "cosine", "--loss-schedule-params", params])
    assert code == 0
    history = json.loads((run / "history.json").read_text())
    # the weights in force each epoch: a cosine over the run's 3 epochs (the end weights in the last), the sum kept at 1.5
    replay = CosineSchedule({"dice": 0.5, "bce": 0.5, "skeleton_recall": 0.5}, end_weights={"skeleton_recall": 1.0}, epochs=2)
    for record in history:
        expected = replay.weights_after(record["epoch"] - 1)
        assert {t: record[f"weight_{t}"] for t in expected} == pytest.approx(expected, abs=1e-12)
        assert sum(record[f"weight_{t}"] for t in expected) == pytest.approx(1.5)
        # the skeleton channels reached the loss: its term was computed every epoch
        assert 0.0 <= record["skeleton_recall_loss"] <= 1.0 and 0.0 <= record["dice_loss"] <= 1.0
    assert history[0]["weight_skeleton_recall"] < history[2]["weight_skeleton_recall"]
    config = json.loads((run / "config.json").read_text())  # the config the run executed
    assert (config["loss_preset"], config["loss_schedule"], config["loss_schedule_params"]) == ("vessel_skeleton_recall", "cosine", {"end_weights": {"skeleton_recall": 1.0}})
    # the checkpoint carries the schedule's state (plain numbers: the store loads it with weights_only=True)
    store = CheckpointStore(run / "checkpoints", "unet", recover=False)
    state = store.load(store.newest())["state"]["loss_schedule_handler"]
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert state["schedule"]["epoch"] == 3 and state["schedule"]["epochs"] == 2
    assert history[2]["weight_skeleton_recall"] == pytest.approx(0.75)  # 1.0 of 2.0, scaled to the sum 1.5
    assert (run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--loss", "vessel_cldce"], "unknown loss preset 'vessel_cldce'; valid presets: ['default_segmentation'"),
        (["--loss", "vessel_cldice", "--loss-schedule", "linear"], "unknown loss-weight schedule 'linear'; valid types"),
        (["--loss", "vessel_cldice", "--loss-schedule", "step", "--loss-schedule-params", "{\"gama\": 2}"],
         "unknown parameter(s) ['gama'] for the 'step' loss-weight schedule"),
        (["--loss", "vessel_cldice", "--loss-schedule", "step", "--loss-schedule-params", "[2]"],
         "--loss-schedule-params must be a JSON object"),
        (["--loss", "vessel_cldice", "--loss-schedule", "step", "--loss-schedule-params", "{gamma: 2}"],
         "--loss-schedule-params must be a JSON object like"),
        (["--loss", "vessel_cldice", "--loss-schedule-params", "{\"patience\": 3}"],
         "unknown parameter(s) ['patience'] for the 'cosine' loss-weight schedule"),  # the preset's default: a cosine
        (["--loss", "default_segmentation", "--loss-schedule-params", "{\"patience\": 3}"],
         "are given without a loss_schedule to take them"),  # the preset's default: constant weights
        (["--loss", "vessel_cldice", "--loss-schedule", "cosine", "--epochs", "1"],
         "warmup_epochs=0 leaves no epoch of a 1-epoch run to anneal"),
        (["--loss", "vessel_cldice", "--loss-schedule", "cosine", "--epochs", "10", "--loss-schedule-params",
          "{\"warmup_epochs\": 12}"], "warmup_epochs=12 leaves no epoch of a 10-epoch run to anneal"),
    ],
)
def test_bad_loss_options_exit_2_before_training(tmp_path, capsys, args, message):
    assert main(["train", "--output-dir", str(tmp_path / "run"), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was started
