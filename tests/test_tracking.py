"""MLflowTracker on real Ignite engines with a real SQLite MLflow store, read back with mlflow.MlflowClient."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler
from pipeline.errors import SettingsError
from pipeline.tracking import MLflowTracker, RESUMES_TAG, import_mlflow, resolve_tracking_uri
from torchrun import torchrun  # tests/torchrun.py

REPO = Path(__file__).resolve().parent.parent
DATA = [torch.randn(2, 4, generator=torch.Generator().manual_seed(i)) for i in range(3)]
SCORES = [0.2, 0.5, 0.4, 0.6]


class Crash(RuntimeError):
    pass


def _setup(tmp_path, fail_at: int | None = None):
    """A linear model trained by a plain Engine, a plain evaluator with scripted ``val_dice``, the losses seen."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen: dict[int, list[float]] = {}

    def step(engine, batch):
        opt.zero_grad()
        loss = (net(batch) - 1).pow(2).mean()
        loss.backward()
        opt.step()
        seen.setdefault(engine.state.epoch, []).append(loss.item())
        return loss.item()

    trainer = Engine(step)
    evaluator = Engine(lambda e, b: None)
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: e.state.metrics.update(val_dice=SCORES[trainer.state.epoch - 1])
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    if fail_at is not None:
        def crash(engine):
            if engine.state.epoch == fail_at:
                raise Crash("boom")
        trainer.add_event_handler(Events.EPOCH_COMPLETED, crash)
    return net, opt, trainer, evaluator, seen


def _tracked(tmp_path, net, opt, trainer, evaluator, note, async_save=False):
    checkpoints = CheckpointHandler(tmp_path / "checkpoints", {"model": net, "optimizer": opt, "trainer": trainer},
                                    "best", monitor="val_dice", max_checkpoints=2, async_save=async_save)
    tracker = MLflowTracker(tmp_path, run_name="tiny", params={"model": {"name": "linear", "in": 4}, "lr": 0.1},
                            artifacts=[note], checkpoint=checkpoints)
    checkpoints.to_save["tracker"] = tracker
    tracker.attach(trainer, evaluator)
    checkpoints.attach(trainer, evaluator)
    return tracker, checkpoints


def _history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async_save"])
def test_run_params_metrics_checkpoints_and_artifacts(tmp_path, async_save):
    note = tmp_path / "note.txt"
    note.write_text("an artifact\n")
    net, opt, trainer, evaluator, seen = _setup(tmp_path)
    tracker, checkpoints = _tracked(tmp_path, net, opt, trainer, evaluator, note, async_save)
    logged_when_saved = []

    @trainer.on(CheckpointHandler.SAVED_CHECKPOINT)
    def saved(engine):  # attached after the tracker: it has logged the save when the event reaches here
        history = import_mlflow().MlflowClient(tracker.tracking_uri).get_metric_history(tracker.run_id, "checkpoint_saved")
        logged_when_saved.append((engine.state.saved_checkpoint["epoch"], sorted(m.step for m in history)))

    trainer.run(DATA, max_epochs=4)
    # the tracker logs each save when the checkpoint handler announces it, not at the next epoch's start
    assert logged_when_saved[:3] == [(1, [1]), (2, [1, 2]), (3, [1, 2, 3])]

    assert tracker.tracking_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    client = import_mlflow().MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name("vessel-segmentation")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [tracker.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params == {"model.name": "linear", "model.in": "4", "lr": "0.1"}
    losses = _history(client, tracker.run_id, "loss")
    assert [s for s, _ in losses] == [1, 2, 3, 4]
    assert [v for _, v in losses] == pytest.approx([sum(seen[e]) / len(seen[e]) for e in (1, 2, 3, 4)])
    assert _history(client, tracker.run_id, "val_dice") == [(1, 0.2), (2, 0.5), (3, 0.4), (4, 0.6)]
    # best at 1, 2, 4; "last" at 3 (the checkpoint handler's save_last)
    saved = _history(client, tracker.run_id, "checkpoint_saved")
    best = _history(client, tracker.run_id, "checkpoint_best")
    assert [s for s, _ in saved] == [1, 2, 3, 4]
    assert best == [(1, 1.0), (2, 1.0), (3, 0.0), (4, 1.0)]
    artifacts = {a.path for a in client.list_artifacts(tracker.run_id)}
    assert {"note.txt", "checkpoints", "best_model"} <= artifacts
    best_files = [a.path for a in client.list_artifacts(tracker.run_id, "best_model")]
    assert best_files == [f"best_model/{checkpoints.best_checkpoint.name}"]
    local = client.download_artifacts(tracker.run_id, "checkpoints/history.json", str(tmp_path / "dl"))
    assert '"reasons"' in Path(local).read_text()
    assert str(experiment.artifact_location).startswith((tmp_path / "mlartifacts").resolve().as_uri())


def test_resume_continues_the_same_run(tmp_path, caplog):
    note = tmp_path / "note.txt"
    note.write_text("x")
    net, opt, trainer, evaluator, _ = _setup(tmp_path, fail_at=3)
    tracker, _ = _tracked(tmp_path, net, opt, trainer, evaluator, note)
    with pytest.raises(Crash), caplog.at_level(logging.WARNING, "pipeline.checkpoint"):
        trainer.run(DATA, max_epochs=4)
    exception_file = "model_e0003_i00000009_exception.pt"  # named as such, logged clearly
    assert f"training stopped by Crash at epoch 3, iteration 9: exception checkpoint {tmp_path / 'checkpoints' / exception_file}" in caplog.text
    first = tracker.run_id
    client = import_mlflow().MlflowClient(tracker.tracking_uri)
    assert client.get_run(first).info.status == "FAILED"
    assert "Crash: boom" in client.get_run(first).data.tags["pipeline.error"]

    # a new process: new objects, resumed from the checkpoint (the tracker's run id comes with it)
    net, opt, trainer, evaluator, _ = _setup(tmp_path)
    tracker, checkpoints = _tracked(tmp_path, net, opt, trainer, evaluator, note)
    assert tracker.run_id is None
    checkpoints.resume("auto")
    assert tracker.run_id == first
    with caplog.at_level(logging.WARNING, "pipeline.tracking"):
        trainer.run(DATA, max_epochs=4)
    assert f"continuing MLflow run {first}, left FAILED by a training that crashed" in caplog.text
    assert tracker.run_id == first
    runs = client.search_runs([client.get_experiment_by_name("vessel-segmentation").experiment_id])
    assert len(runs) == 1
    run = client.get_run(first)
    assert run.info.status == "FINISHED" and "pipeline.error" not in run.data.tags  # the finished run has no error left
    assert run.data.tags[RESUMES_TAG] == "1"
    # the resumed epoch 3 keeps its plain name next to the exception checkpoint of the same position (no "-1")
    saved = [record["file"] for record in checkpoints.checkpointer.history]
    assert "model_e0003_i00000009.pt" in saved and not [f for f in saved if "-" in f]
    assert (tmp_path / "checkpoints" / exception_file).is_file()
    # epoch 3 crashed before its metrics were logged; the resumed run trains it again from the epoch-2 checkpoint
    assert [s for s, _ in _history(client, first, "loss")] == [1, 2, 3, 4]
    # saves: best 1, best 2, the exception checkpoint at 3 (logged by the failed run), then last 3, best 4
    best = _history(client, first, "checkpoint_best")
    assert sorted(set(best)) == [(1, 1.0), (2, 1.0), (3, 0.0), (4, 1.0)] and best[-2:] == [(3, 0.0), (4, 1.0)]


def test_fresh_start_is_not_appended_to_a_crashed_run(tmp_path, caplog):
    crashed = MLflowTracker(tmp_path)
    crashed.start()  # the process dies here: the run stays RUNNING
    fresh = MLflowTracker(tmp_path)
    with caplog.at_level(logging.WARNING, "pipeline.tracking"):
        fresh.start()
    assert fresh.run_id != crashed.run_id
    assert "never ended" in caplog.text and crashed.run_id in caplog.text
    client = fresh.client
    assert client.get_run(fresh.run_id).data.tags["pipeline.unfinished_runs_before"] == crashed.run_id
    fresh.end()
    assert client.get_run(fresh.run_id).info.status == "FINISHED"
    assert client.get_run(crashed.run_id).info.status == "RUNNING"


def test_tracking_uri_argument_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(tmp_path / "a") == f"sqlite:///{(tmp_path / 'a' / 'mlflow.db').resolve()}"
    elsewhere = f"sqlite:///{tmp_path / 'central' / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    tracker = MLflowTracker(tmp_path / "a", params={"x": 1})
    assert tracker.tracking_uri == elsewhere
    tracker.start()
    tracker.log_metrics({"m": 0.5, "not_a_number": "text"}, step=1)
    tracker.end()
    assert (tmp_path / "central" / "store.db").is_file() and not (tmp_path / "a" / "mlflow.db").exists()
    client = import_mlflow().MlflowClient(elsewhere)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics == {"m": 0.5} and run.data.params == {"x": "1"}
    location = client.get_experiment(run.info.experiment_id).artifact_location
    assert location == (tmp_path / "central" / "mlartifacts").resolve().as_uri()
    assert MLflowTracker(tmp_path, tracking_uri="sqlite:///x.db").tracking_uri == "sqlite:///x.db"


def test_offline_telemetry_off_and_no_connection(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    import_mlflow()
    from mlflow.telemetry.client import get_telemetry_client

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert get_telemetry_client() is None
    attempts = []

    def refuse(sock, address, *args):
        attempts.append(address)
        raise OSError(f"test: no network ({address})")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise OSError(f"test: no name lookup ({host})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    tracker = MLflowTracker(tmp_path, params={"a": 1})
    tracker.start()
    tracker.log_metrics({"loss": 0.5}, 1)
    (tmp_path / "f.txt").write_text("x")
    tracker.artifacts = [tmp_path / "f.txt"]
    tracker.log_artifacts()
    tracker.end()
    assert attempts == []


def test_state_is_plain_and_logging_needs_a_run(tmp_path):
    tracker = MLflowTracker(tmp_path)
    with pytest.raises(SettingsError, match="start"):
        tracker.log_metrics({"a": 1.0}, 1)
    tracker.start()
    state = tracker.state_dict()
    assert state == {"run_id": tracker.run_id, "checkpoints_logged": 0}
    path = tmp_path / "s.pt"
    torch.save(state, path)
    other = MLflowTracker(tmp_path)
    other.load_state_dict(torch.load(path, weights_only=True))
    assert other.start() == tracker.run_id
    other.end()
    with pytest.raises(SettingsError, match="experiment_name"):
        MLflowTracker(tmp_path, experiment_name="")


def test_only_rank_0_talks_to_mlflow_under_torchrun(tmp_path):
    proc = torchrun(str(REPO / "tests" / "tracking_ddp_child.py"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["run_id"] and ranks[0]["store"]
    assert ranks[1]["run_id"] is None and not ranks[1]["store"] and not (tmp_path / "model_rank1").exists()
    run = import_mlflow().MlflowClient(f"sqlite:///{tmp_path / 'model_rank0' / 'mlflow.db'}").get_run(ranks[0]["run_id"])
    assert run.info.status == "FINISHED" and run.data.params == {"rank": "0"}
    # the epoch loss is the mean over both processes (rank 0's losses 1, 2 and rank 1's 2, 3), in MLflow and in the
    # history of each; only rank 0 logs the epoch line
    assert run.data.metrics["loss"] == pytest.approx(2.0)
    assert ranks[0]["history_loss"] == ranks[1]["history_loss"] == [pytest.approx(2.0)] * 2
    assert [line.split("  ")[:2] for line in ranks[0]["lines"]] == [["epoch 1/2", "loss 2.0000"], ["epoch 2/2", "loss 2.0000"]]
    assert ranks[1]["lines"] == []


def test_a_new_sqlite_store_starts_from_the_migrated_template(tmp_path, monkeypatch):
    """A new store is a copy of the empty template (same schema version, no experiment of its own); MLflow adds its
    Default experiment on opening it, located where it would put it in a database it built itself."""
    import sqlite3

    from pipeline.tracking.mlflow_store import empty_store_template, mlflow_client

    monkeypatch.chdir(tmp_path)
    template = empty_store_template()
    db = tmp_path / "store" / "mlflow.db"
    client = mlflow_client(f"sqlite:///{db}")
    (default,) = client.search_experiments()
    assert (default.experiment_id, default.name) == ("0", "Default")
    assert default.artifact_location == str(tmp_path / "mlruns" / "0")
    version = "SELECT version_num FROM alembic_version"
    with sqlite3.connect(template) as a, sqlite3.connect(db) as b:
        assert a.execute(version).fetchall() == b.execute(version).fetchall()
        assert a.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "loss", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    assert not [p.name for p in db.parent.iterdir() if p.name != "mlflow.db"]  # no temporary copy left
