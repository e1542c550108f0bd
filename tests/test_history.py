"""History export (JSON, CSV, checkpoint decisions) and the epoch logger's history on a plain Ignite engine."""

from __future__ import annotations

import csv
import hashlib
import json
import math

import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler
from pipeline.epoch_loss import output_losses
from pipeline.epoch_summary import EpochSummaryLogger
from pipeline.history import export_history, strict_json, with_checkpoints
from pipeline.training_curves import TrainingCurves

SAVES = [
    {"epoch": 1, "iteration": 3, "file": "m_e0001.pt", "reasons": ["best"], "evicted": []},
    {"epoch": 3, "iteration": 8, "file": "m_e0003_i8.pt", "reasons": ["interval"], "evicted": []},
    {"epoch": 3, "iteration": 9, "file": "m_e0003.pt", "reasons": ["best", "last"], "evicted": ["m_e0001.pt"]},
]


def test_checkpoint_decisions_join_their_epoch():
    records = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    merged = with_checkpoints(records, SAVES)
    assert [m["checkpoint"] for m in merged] == ["m_e0001.pt", "", "m_e0003_i8.pt;m_e0003.pt"]
    assert [m["checkpoint_reasons"] for m in merged] == ["best", "", "interval;best+last"]
    assert [m["checkpoint_evicted"] for m in merged] == ["", "", "m_e0001.pt"]
    assert "checkpoint" not in records[0]  # copies


def test_json_is_strict_and_csv_has_every_column(tmp_path):
    records = [
        {"epoch": 1, "loss": float("nan"), "val_dice": 0.5},
        {"epoch": 2, "loss": 0.25, "weight_dice": 0.7, "val_hd95": float("inf")},
    ]
    json_path, csv_path = export_history(records, tmp_path / "out", "h")
    rows = json.loads(json_path.read_text())  # strict: json.loads would accept NaN, so check the text too
    assert "NaN" not in json_path.read_text() and "Infinity" not in json_path.read_text()
    assert rows == [{"epoch": 1, "loss": None, "val_dice": 0.5}, {"epoch": 2, "loss": 0.25, "weight_dice": 0.7, "val_hd95": None}]
    with open(csv_path, newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == ["epoch", "loss", "val_dice", "weight_dice", "val_hd95"]
        table = list(reader)
    assert table[0] == {"epoch": "1", "loss": "", "val_dice": "0.5", "weight_dice": "", "val_hd95": ""}
    assert float(table[1]["loss"]) == 0.25
    nested = json.loads(strict_json({"a": [1.5, math.nan, {"b": tmp_path}], "c": None}))
    assert nested == {"a": [1.5, None, {"b": str(tmp_path)}], "c": None}


def test_epoch_logger_reads_a_plain_evaluator_and_keeps_its_history(tmp_path):
    trainer = Engine(lambda engine, batch: float(batch))  # a plain process function returning a number
    evaluator = Engine(lambda engine, batch: None)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(val_dice=0.1 * trainer.state.epoch))
    trainer.add_event_handler(Events.EPOCH_COMPLETED(every=2), lambda e: evaluator.run([0]))
    log = EpochSummaryLogger(evaluator=evaluator)
    log.attach(trainer)
    trainer.run([1.0, 2.0, 6.0], max_epochs=4)
    assert [h["loss"] for h in log.history] == [3.0] * 4
    # a plain evaluator's own epoch counter stays 1: the metrics belong to the epochs it ran in
    assert [h.get("val_dice") for h in log.history] == [None, 0.2, None, 0.4]
    path = tmp_path / "state.pt"
    torch.save(log.state_dict(), path)
    other = EpochSummaryLogger()
    view = other.history
    other.load_state_dict(torch.load(path, weights_only=True))
    assert view == log.history  # the same list object, filled


def test_losses_of_every_output_shape():
    assert output_losses({"loss": torch.tensor(0.5)}) == [0.5]
    assert output_losses([{"loss": 1.0, "pred": None}, {"loss": 3.0}]) == [1.0, 3.0]
    assert output_losses(torch.tensor(2.0)) == [2.0]
    assert output_losses((torch.zeros(2), torch.ones(2))) == []  # (y_pred, y) of an evaluator-like step
    assert output_losses({"pred": 1.0}) == [] and output_losses(None) == [] and output_losses("text") == []


def test_training_curves_are_redrawn_at_each_checkpoint_save(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    trainer = Engine(lambda engine, batch: net(batch).detach().pow(2).mean().item())
    summary = EpochSummaryLogger()
    summary.attach(trainer)
    CheckpointHandler(tmp_path / "checkpoints", {"model": net}, "interval", strategy_params={"every": 2}, save_last=False).attach(trainer)
    curves = TrainingCurves(summary.history, tmp_path / "curves.png")
    curves.attach(trainer)
    pictures = []

    @trainer.on(CheckpointHandler.SAVED_CHECKPOINT)
    def seen(engine):  # after the curves' listener
        pictures.append((engine.state.epoch, hashlib.sha256(curves.path.read_bytes()).hexdigest(), list(curves.saves)))

    trainer.run([torch.ones(1, 2)], max_epochs=4)
    # saved at epochs 2 and 4 (interval), the picture redrawn then with that save marked, and once more at the end
    assert [(epoch, [s["epoch"] for s in saves]) for epoch, _, saves in pictures] == [(2, [2]), (4, [2, 4])]
    assert len({digest for _, digest, _ in pictures}) == 2 and curves.drawn == 3


def _counting_run(tmp_path, crash_at=None):
    """A trainer whose loss is the iteration number (4 per epoch), its epoch summary and per-iteration checkpoints."""
    trainer = Engine(lambda engine, batch: float(engine.state.iteration))
    if crash_at is not None:
        @trainer.on(Events.ITERATION_STARTED(once=crash_at))
        def crash(engine):
            raise KeyboardInterrupt
    summary = EpochSummaryLogger()
    summary.attach(trainer)
    CheckpointHandler(tmp_path, None, "interval", strategy_params={"every": 1, "unit": "iteration"},
                      max_checkpoints=1, resume="auto").attach(trainer)
    return trainer, summary


def test_a_resume_in_the_middle_of_an_epoch_keeps_its_loss_exact(tmp_path):
    trainer, summary = _counting_run(tmp_path / "interrupted", crash_at=6)
    try:
        trainer.run([0] * 4, max_epochs=2)
    except KeyboardInterrupt:
        pass
    trainer, summary = _counting_run(tmp_path / "interrupted")  # a new process, resumed at iteration 5
    trainer.run([0] * 4, max_epochs=2)
    # epoch 2 is the mean of iterations 5 to 8: iteration 5's loss came back with the checkpoint
    assert [(h["epoch"], h["loss"]) for h in summary.history] == [(1, 2.5), (2, 6.5)]
