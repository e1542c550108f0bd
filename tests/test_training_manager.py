"""TrainingManager: the seed's loop on a real MONAI UNet, its summary, exports, plots and MLflow run (read back with
mlflow.MlflowClient), resume, and manager.attach on real Ignite engines."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer
from monai.inferers import SimpleInferer

from pipeline import TrainingManager, create_training_manager, quick_training_setup
from pipeline.networks import create_unet
from pipeline.tracking import import_mlflow
from tiny_engines import dice_evaluator  # tests/tiny_engines.py
from torchrun import torchrun  # tests/torchrun.py

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def _volume(seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright tube along z in noise, and its label (1 x 1 x size^3)."""
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(1, 1, size, size, size)
    c = size // 2 + seed % 3 - 1
    label[..., c - 2:c + 2, c - 2:c + 2, :] = 1
    return label * 2 + 0.3 * torch.randn(label.shape, generator=g), label


TRAIN = [_volume(i, 16) for i in range(3)]
VAL = [_volume(10 + i, 24) for i in range(2)]  # bigger than the 16^3 patches: sliding windows


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_unet(channels=(4, 8), strides=(2,), num_res_units=0)


COSINE = {"type": "cosine", "params": {"start_weights": {"dice": 0.5, "bce": 0.5}}}
STEP = {"type": "step", "params": {"step_size": 1, "gamma": 0.5}}  # a function of the epoch alone


def _manager(path, scheduler=COSINE, **kwargs) -> TrainingManager:
    manager = TrainingManager(path, "tiny", **kwargs)
    loss = {"type": "combined", "dice_weight": 0.8, "bce_weight": 0.2}
    if scheduler:
        loss["scheduler"] = scheduler
    manager.setup_loss_function(loss)
    manager.setup_checkpointing({"save_strategy": "best", "monitor_metric": "val_dice", "mode": "max", "max_checkpoints": 2})
    return manager


def _seed_loop(manager: TrainingManager, model, optimizer, epochs: range, seen: list | None = None) -> list[dict]:
    summaries = []
    for epoch in epochs:
        for inputs, targets in TRAIN:
            step_metrics = manager.train_step(model, (inputs, targets), optimizer, "cpu")
            (seen if seen is not None else []).append(step_metrics["loss"])
        val_metrics = manager.validation_step(model, VAL, "cpu")
        manager.save_checkpoint(model, optimizer, None, epoch, {**step_metrics, **val_metrics})  # as the seed does
        summaries.append(manager.end_epoch(epoch, step_metrics, val_metrics))
    return summaries


def _history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


def test_seed_loop_summary_exports_plots_and_mlflow(tmp_path):
    manager = _manager(tmp_path, enable_mlflow=True)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = manager.train_step(model, TRAIN[0], optimizer, "cpu")
    assert set(step) == {"loss", "dice_loss", "bce_loss", "dice", "lr"}
    assert step["loss"] == pytest.approx(0.5 * step["dice_loss"] + 0.5 * step["bce_loss"], rel=1e-5)  # cosine start
    seen_losses: list[float] = []
    summaries = _seed_loop(manager, model, optimizer, range(3), seen_losses)
    export = manager.finish()

    history = manager.history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[2]["loss"] == pytest.approx(sum(seen_losses[-3:]) / 3)  # the epoch mean, not the last step's
    assert history[0]["steps"] == 4 and history[1]["steps"] == 3  # the extra step above belongs to epoch 1
    assert [h["weight_dice"] for h in history][0] == pytest.approx(0.5)
    assert history[-1]["weight_dice"] > history[0]["weight_dice"]  # cosine: from 0.5 towards 0.8
    assert all(0.0 <= h["val_dice"] <= 1.0 for h in history)
    assert summaries[0]["checkpoint_path"] is not None  # the first epoch is always the best so far

    summary = manager.get_training_summary()
    assert summary["training_progress"]["total_epochs"] == 3
    assert summary["training_progress"]["total_steps"] == 10
    best = max(h["val_dice"] for h in history)
    assert summary["model_info"]["best_metric"] == pytest.approx(best)
    assert summary["model_info"]["best_epoch"] == next(h["epoch"] for h in history if h["val_dice"] == best)
    on_disk = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert summary["checkpoint_info"]["total_checkpoints"] == len(on_disk) >= 1
    assert summary["loss_info"]["scheduler"] == "cosine"
    assert manager.get_checkpoint_summary()["decisions"][0]["epoch"] == 1

    payload = json.loads(export.read_text())
    assert len(payload["history"]) == 3 and payload["summary"]["training_progress"]["total_epochs"] == 3
    with open(tmp_path / "tiny_history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "dice_loss", "bce_loss", "weight_dice", "weight_bce", "val_dice", "time_s", "checkpoint",
            "checkpoint_reasons"} <= set(rows[0])
    assert rows[0]["checkpoint_reasons"] == "best"
    assert json.loads((tmp_path / "tiny_history.json").read_text())[2]["epoch"] == 3
    png = tmp_path / "tiny_training_curves.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert matplotlib.image.imread(png).shape[1] > 1000  # three panels

    client = import_mlflow().MlflowClient(manager.tracker.tracking_uri)
    experiment = client.get_experiment_by_name("vessel-segmentation")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [manager.tracker.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    params = run.data.params
    assert params["loss.dice_weight"] == "0.8" and params["loss.scheduler.type"] == "cosine"
    assert params["checkpoint.save_strategy"] == "best" and params["model.class"] == "UNet"
    for key in ("loss", "dice_loss", "bce_loss", "weight_dice", "weight_bce", "val_dice", "time_s"):
        assert [s for s, _ in _history(client, run.info.run_id, key)] == [1, 2, 3], key
    assert [v for _, v in _history(client, run.info.run_id, "weight_dice")] == pytest.approx([h["weight_dice"] for h in history])
    assert _history(client, run.info.run_id, "checkpoint_saved")[0] == (1, 1.0)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"tiny_history.json", "tiny_history.csv", "tiny_training_curves.png", "tiny_training_data.json", "best_model"} <= artifacts
    best_file = manager.checkpoint_manager.get_best_checkpoint_path().name
    assert [a.path for a in client.list_artifacts(run.info.run_id, "best_model")] == [f"best_model/{best_file}"]


def test_resume_continues_history_schedule_and_mlflow_run(tmp_path):
    first = _manager(tmp_path, enable_mlflow=True, plots=False)
    model, optimizer = _net(), None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _seed_loop(first, model, optimizer, range(2))  # then the process dies: no finish()
    run_id = first.tracker.run_id
    weights_next = dict(first.loss_function.weights)

    second = _manager(tmp_path, enable_mlflow=True, plots=False)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = second.resume(model, optimizer)
    assert start == 2
    assert dict(second.loss_function.weights) == weights_next
    assert [h["epoch"] for h in second.history] == [1, 2]
    _seed_loop(second, model, optimizer, range(start, 3))
    second.finish()
    assert second.tracker.run_id == run_id
    client = second.tracker.client
    assert len(client.search_runs([client.get_experiment_by_name("vessel-segmentation").experiment_id])) == 1
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["pipeline.resumes"] == "1"
    assert [s for s, _ in _history(client, run_id, "val_dice")] == [1, 2, 3]
    assert [h["epoch"] for h in second.history] == [1, 2, 3]
    assert second.get_training_summary()["training_progress"]["total_epochs"] == 3


def _ignite_run(manager: TrainingManager, epochs: int, resume: str | None = None, on_epoch_started=None) -> TrainingManager:
    """The seed's loop as a plain Ignite engine (the manager's own step and validation), the manager attached."""
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Engine(manager.process_function(model, optimizer, "cpu"))
    evaluator = Engine(lambda engine, batch: None)
    evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(manager.validation_step(model, VAL, "cpu")))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    manager.roi_size = (16, 16, 16)
    manager.attach(trainer, evaluator, to_save={"model": model, "optimizer": optimizer, "trainer": trainer}, resume=resume)
    if on_epoch_started is not None:
        trainer.add_event_handler(Events.EPOCH_STARTED, on_epoch_started)
    trainer.run(TRAIN, max_epochs=epochs)
    return manager


def test_attach_resume_continues_the_mlflow_run_and_history(tmp_path):
    first = _ignite_run(_manager(tmp_path, STEP, enable_mlflow=True, plots=False), 2)
    second = _ignite_run(_manager(tmp_path, STEP, enable_mlflow=True, plots=False), 3, resume="auto")
    assert second.tracker.run_id == first.tracker.run_id
    assert [h["epoch"] for h in second.history] == [1, 2, 3]
    # the step schedule went on: dice's raw weight halved after each epoch, the sum kept at 1: 0.8, 0.4/0.6, 0.2/0.4
    assert [h["weight_dice"] for h in second.history] == pytest.approx([0.8, 0.4 / 0.6, 0.5])
    client = second.tracker.client
    assert len(client.search_runs([client.get_experiment_by_name("vessel-segmentation").experiment_id])) == 1
    run = client.get_run(first.tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["pipeline.resumes"] == "1"
    assert [s for s, _ in _history(client, run.info.run_id, "loss")] == [1, 2, 3]


def test_attach_on_a_plain_engine_matches_the_manual_loop(tmp_path):
    manual = _manager(tmp_path / "manual", STEP, plots=False)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _seed_loop(manual, model, optimizer, range(3))

    ignite = _ignite_run(_manager(tmp_path / "ignite", STEP), 3)

    keys = ("loss", "dice_loss", "bce_loss", "weight_dice", "weight_bce", "val_dice")
    for m, i in zip(manual.history, ignite.history, strict=True):
        assert m["epoch"] == i["epoch"]
        assert {k: i[k] for k in keys} == pytest.approx({k: m[k] for k in keys}, rel=1e-5, abs=1e-6)

    def saves(manager):
        return [(s["file"], [r for r in s["reasons"] if r != "final"]) for s in manager.checkpoint_manager.checkpointer.history]

    assert saves(ignite) == saves(manual)
    assert ignite.get_checkpoint_summary()["total_checkpoints"] == manual.get_checkpoint_summary()["total_checkpoints"]
    assert ignite.get_training_summary()["training_progress"]["total_steps"] == 9
    assert (tmp_path / "ignite" / "tiny_history.csv").is_file()
    assert (tmp_path / "ignite" / "tiny_training_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_attach_on_a_monai_trainer_tracks_weights_terms_and_key_metric(tmp_path):
    manager = _manager(tmp_path, scheduler=None, enable_mlflow=True, plots=False)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batches = [{"image": x, "label": y} for x, y in TRAIN]
    evaluator = dice_evaluator(model, [{"image": x[..., :16, :16, :16], "label": y[..., :16, :16, :16]} for x, y in VAL])
    trainer = SupervisedTrainer(
        device="cpu", max_epochs=2, train_data_loader=batches, network=model, optimizer=optimizer,
        loss_function=torch.nn.MSELoss(), inferer=SimpleInferer(),
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run(e.state.epoch))
    manager.attach(trainer, evaluator)
    assert trainer.loss_function is manager.loss_function
    trainer.run()

    assert manager.checkpoint_manager.strategy.monitor == "val_mean_dice"
    assert [h["epoch"] for h in manager.history] == [1, 2] and "val_mean_dice" in manager.history[1]
    client = manager.tracker.client
    run = client.get_run(manager.tracker.run_id)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["weight_dice"] == pytest.approx(0.8) and metrics["weight_bce"] == pytest.approx(0.2)
    assert metrics["loss"] == pytest.approx(0.8 * metrics["dice_loss"] + 0.2 * metrics["bce_loss"], rel=1e-4)
    assert [s for s, _ in _history(client, run.info.run_id, "val_mean_dice")] == [1, 2]
    assert run.data.params["model.class"] == "UNet"
    best = manager.get_training_summary()["model_info"]["best_metric"]
    assert best == pytest.approx(max(h["val_mean_dice"] for h in manager.history))
    assert "best_model" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_presets_and_one_line_setups(tmp_path):
    quick = quick_training_setup(tmp_path / "q", "m")
    assert dict(quick.loss_function.weights) == {"dice": 0.7, "bce": 0.3}
    assert quick.checkpoint_manager.save_strategy == "best" and quick.tracker is None
    advanced = create_training_manager(tmp_path / "a", "m", loss_preset="focal_segmentation", checkpoint_preset="adaptive", enhanced=True)
    assert dict(advanced.loss_function.weights) == {"dice": 0.6, "bce": 0.4}
    assert advanced.checkpoint_manager.save_strategy == "adaptive"
    assert advanced.tracker.tracking_uri == f"sqlite:///{(tmp_path / 'a' / 'mlflow.db').resolve()}"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m.setup_loss_function("no_such_preset"), r"unknown loss preset 'no_such_preset'; valid presets: \[.*default_segmentation"),
        (lambda m: m.setup_loss_function({"type": "combined", "dice_wieght": 1.0}), r"unknown key\(s\) \['dice_wieght'\].*valid keys"),
        (lambda m: m.setup_loss_function({"dice_weight": 1.0, "scheduler": {"type": "nope"}}), r"nope.*adaptive"),
        (lambda m: m.setup_checkpointing("no_such_preset"), r"unknown checkpoint preset 'no_such_preset'; valid presets: \[.*adaptive"),
        (lambda m: m.setup_checkpointing({"save_strategy": "best", "max_checkpionts": 3}), r"max_checkpionts.*valid"),
        (lambda m: m.setup_checkpointing({"manager_type": "magic"}), r"unknown manager_type 'magic'; valid: \['standard', 'auto'\]"),
        (lambda m: m.setup_loss_function(42), r"must be a dict or a preset name"),
    ],
)
def test_bad_configuration_is_named(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(TrainingManager(tmp_path))


def test_calls_before_set_up_and_unwritable_folder(tmp_path):
    manager = TrainingManager(tmp_path)
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"loss_function is not set up: call setup_loss_function\(config\) first"):
        manager.train_step(model, TRAIN[0], optimizer)
    with pytest.raises(ValueError, match=r"checkpoint_manager is not set up: call setup_checkpointing\(config\) first"):
        manager.save_checkpoint(model, optimizer, None, 0, {"val_dice": 0.5})
    with pytest.raises(ValueError, match="roi_size"):
        manager.validation_step(model, VAL, "cpu")
    quick = quick_training_setup(tmp_path / "q")
    with pytest.raises(ValueError, match="plain Ignite engine needs to_save"):
        quick.attach(Engine(lambda e, b: None))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"model_dir '.*a_file/out' is not a writable folder"):
        TrainingManager(blocker / "out")


SEED_NO_FINISH = """
import sys, torch
sys.path[:0] = [{repo!r}, {tests!r}]
from pipeline import create_training_manager
from test_training_manager import TRAIN, VAL, _net
manager = create_training_manager(sys.argv[1], "seed", enhanced=True, plots=True)
model = _net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(2):  # the seed's Full Featured loop: no finish(), summary and export at the end
    for inputs, targets in TRAIN[:2]:
        step_metrics = manager.train_step(model, (inputs, targets), optimizer, "cpu")
    val_metrics = manager.validation_step(model, VAL[:1], "cpu")
    manager.save_checkpoint(model, optimizer, None, epoch, val_metrics)
    manager.end_epoch(epoch, step_metrics, val_metrics)
manager.get_training_summary()
manager.export_training_data()
print(manager.tracker.run_id)
"""


def test_seed_loop_without_finish_logs_its_exports_and_ends_the_run_at_exit(tmp_path, caplog):
    script = tmp_path / "seed_loop.py"
    script.write_text(SEED_NO_FINISH.format(repo=str(REPO), tests=str(REPO / "tests")))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split()[-1]
    client = import_mlflow().MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"seed_history.json", "seed_history.csv", "seed_training_curves.png", "seed_training_data.json",
            "best_model", "checkpoints"} <= artifacts
    best = Path(json.loads((out / "seed_training_data.json").read_text())["summary"]["checkpoint_info"]["best_checkpoint"])
    assert [a.path for a in client.list_artifacts(run_id, "best_model")] == [f"best_model/{best.name}"]
    assert [s for s, _ in _history(client, run_id, "checkpoint_saved")][0] == 1
    assert {"loss", "dice", "lr", "val_dice", "weight_dice"} <= set(run.data.metrics)
    assert not {"epoch", "steps"} & set(run.data.metrics)  # the step of every metric, not metrics of their own

    caplog.set_level(logging.WARNING, logger="pipeline.tracking.mlflow_tracker")
    fresh = create_training_manager(out, "seed", enhanced=True, plots=False)
    fresh.tracker.start()
    fresh.finish()
    assert not [r for r in caplog.records if "never ended" in r.getMessage()]


def _order_loop(manager, model, optimizer, epochs, end_first: bool) -> tuple[list, list]:
    paths, summaries = [], []
    for epoch in epochs:
        for inputs, targets in TRAIN[:2]:
            step_metrics = manager.train_step(model, (inputs, targets), optimizer, "cpu")
        val_metrics = manager.validation_step(model, VAL[:1], "cpu")
        if end_first:
            summaries.append(manager.end_epoch(epoch, step_metrics, val_metrics))
            paths.append(manager.save_checkpoint(model, optimizer, None, epoch, {**step_metrics, **val_metrics}))
        else:
            paths.append(manager.save_checkpoint(model, optimizer, None, epoch, {**step_metrics, **val_metrics}))
            summaries.append(manager.end_epoch(epoch, step_metrics, val_metrics))
    return paths, summaries


def _every_epoch(path, **kwargs) -> TrainingManager:
    manager = TrainingManager(path, "tiny", plots=False, **kwargs)
    manager.setup_loss_function({"type": "combined", "dice_weight": 0.8, "bce_weight": 0.2, "scheduler": STEP})
    manager.setup_checkpointing({"save_strategy": "epoch", "max_checkpoints": 5})
    return manager


@pytest.mark.parametrize("end_first", [False, True])
def test_either_order_closes_each_epoch_once_and_checkpoints_hold_epoch_means(tmp_path, end_first):
    manager = _every_epoch(tmp_path)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    paths, summaries = _order_loop(manager, model, optimizer, range(3), end_first)
    # one step of the schedule per epoch: 0.8, then dice's raw weight halved, the sum kept at 1
    assert [h["weight_dice"] for h in manager.history] == pytest.approx([0.8, 0.4 / 0.6, 0.5])
    assert [p.name for p in paths] == [f"tiny_e000{e}_i0000000{2 * e}.pt" for e in (1, 2, 3)]
    expected = [None] * 3 if end_first else [str(p) for p in paths]
    assert [s["checkpoint_path"] for s in summaries] == expected  # this epoch's file, never the previous one's
    saved = manager.checkpoint_manager.list_checkpoints()
    assert [c["metrics"]["loss"] for c in saved] == pytest.approx([h["loss"] for h in manager.history])  # epoch means
    assert [c["metrics"]["dice"] for c in saved] == pytest.approx([h["dice"] for h in manager.history])

    resumed = _every_epoch(tmp_path)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    assert resumed.resume(model, optimizer, None, "last") == 3
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3] and all("loss" in h for h in resumed.history)
    assert resumed.get_training_summary()["training_progress"]["total_epochs"] == 3
    assert dict(resumed.loss_function.weights) == pytest.approx(dict(manager.loss_function.weights))


def test_resume_stretches_a_cosine_lr_schedule_to_the_new_length(tmp_path):
    first = _every_epoch(tmp_path)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1, eta_min=1e-4)
    for inputs, targets in TRAIN[:1]:
        first.train_step(model, (inputs, targets), optimizer, "cpu")
    cosine.step()
    first.save_checkpoint(model, optimizer, cosine, 0, {"val_dice": 0.5})

    second = _every_epoch(tmp_path)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2, eta_min=1e-4)
    assert second.resume(model, optimizer, cosine, num_epochs=2) == 1
    assert cosine.T_max == 2
    cosine.step()  # the last epoch's end: at eta_min, not back up at the initial 1e-2
    assert cosine.get_last_lr()[0] == pytest.approx(1e-4)


def test_attach_plots_each_epoch_with_its_checkpoint_and_records_lr(tmp_path):
    from pipeline.plots import plot_training_curves

    png = tmp_path / "tiny_training_curves.png"
    compared = []

    def compare(engine):  # after the manager's refresh at this epoch's start
        if engine.state.epoch > 1:
            expected = plot_training_curves(manager.records(), tmp_path / "expected.png", title="tiny: training")
            compared.append(png.read_bytes() == expected.read_bytes())

    manager = _manager(tmp_path, STEP, enable_mlflow=True, plots=True)
    _ignite_run(manager, 3, on_epoch_started=compare)
    assert compared == [True, True]
    assert manager.records()[0]["checkpoint_reasons"] == "best"
    final = plot_training_curves(manager.records(), tmp_path / "expected.png", title="tiny: training")
    assert png.read_bytes() == final.read_bytes()
    assert [h["lr"] for h in manager.history] == [1e-2] * 3  # as the hand-written loop records it
    client = manager.tracker.client
    assert [(s, v) for s, v in _history(client, manager.tracker.run_id, "lr")] == [(1, 1e-2), (2, 1e-2), (3, 1e-2)]
    assert not {"epoch", "steps"} & set(client.get_run(manager.tracker.run_id).data.metrics)


DDP_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
import ignite.distributed as idist
from pipeline import TrainingManager

def training(local_rank, out):
    rank = idist.get_rank()
    manager = TrainingManager(Path(out) / f"rank{{rank}}", "ddp", plots=True)
    manager.end_epoch(0, {{"loss": 0.5}}, {{"val_dice": 0.25}})
    manager.plot()
    manager.export_training_data()
    idist.barrier()

with idist.Parallel(backend="gloo") as parallel:
    parallel.run(training, sys.argv[1])
"""


def test_only_rank_0_writes_history_plots_and_exports_under_torchrun(tmp_path):
    script = tmp_path / "ddp_child.py"
    script.write_text(DDP_CHILD.format(repo=str(REPO)))
    proc = torchrun(str(script), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == [
        "ddp_history.csv", "ddp_history.json", "ddp_training_curves.png", "ddp_training_data.json"]
    assert list((tmp_path / "rank1").iterdir()) == []
    assert json.loads((tmp_path / "rank0" / "ddp_history.json").read_text())[0]["val_dice"] == 0.25


def test_bad_preset_creates_no_folder_and_a_failed_with_block_exports(tmp_path):
    with pytest.raises(ValueError, match="unknown loss preset 'nope'"):
        create_training_manager(tmp_path / "never", loss_preset="nope")
    with pytest.raises(ValueError, match="unknown checkpoint preset 'nope'"):
        create_training_manager(tmp_path / "never", checkpoint_preset="nope")
    assert not (tmp_path / "never").exists()

    manager = _every_epoch(tmp_path / "failed", enable_mlflow=True)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with pytest.raises(RuntimeError, match="diverged"):
        with manager:
            _order_loop(manager, model, optimizer, range(1), end_first=True)
            raise RuntimeError("diverged")
    assert [r["epoch"] for r in json.loads((tmp_path / "failed" / "tiny_history.json").read_text())] == [1]
    client = manager.tracker.client
    run = client.get_run(manager.tracker.run_id)
    assert run.info.status == "FAILED"
    assert _history(client, run.info.run_id, "checkpoint_saved") == [(1, 1.0)]  # saved after end_epoch: still logged
    assert "tiny_history.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_attach_training_handlers_on_a_plain_ignite_engine(tmp_path):
    """The README's second way: the project's handlers on a user's own Ignite loop. A loss without a schedule
    publishes its constant weights and term means through the same schedule handler; the checkpoint holds the
    schedule and the epoch log, and a new process resumes the history."""
    from ignite.engine import Engine

    from pipeline import CheckpointHandler, attach_training_handlers, create_loss_function, load_training_state

    def setup():
        torch.manual_seed(0)
        model = torch.nn.Conv3d(1, 1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = create_loss_function("default_segmentation")
        batches = [(torch.randn(2, 1, 8, 8, 8), (torch.rand(2, 1, 8, 8, 8) > 0.7).float()) for _ in range(2)]

        def step(engine, batch):
            opt.zero_grad()
            value = loss(model(batch[0]), batch[1])
            value.backward()
            opt.step()
            return value.item()

        trainer = Engine(step)
        checkpoints = CheckpointHandler(tmp_path / "checkpoints", {"model": model, "optimizer": opt}, "epoch",
                                        max_checkpoints=1, resume="auto")
        return trainer, attach_training_handlers(trainer, loss=loss, checkpoints=checkpoints), batches

    trainer, handlers, batches = setup()
    trainer.run(batches, max_epochs=2)
    assert handlers.schedule.schedule.name == "constant" and trainer.state.loss_weights == {"dice": 0.7, "bce": 0.3}
    history = handlers.epoch_log.history
    assert [(h["epoch"], h["weight_dice"], h["weight_bce"]) for h in history] == [(1, 0.7, 0.3), (2, 0.7, 0.3)]
    assert all(0.0 <= h["dice_loss"] <= 1.0 and h["bce_loss"] > 0.0 for h in history)
    state = load_training_state(handlers.checkpoints.last_checkpoint)
    assert {"model", "optimizer", "loss_schedule_handler", "epoch_summary_logger"} <= set(state)

    trainer, resumed, batches = setup()  # a new process: resumed from the checkpoint, the history goes on
    trainer.run(batches, max_epochs=3)
    assert [h["epoch"] for h in resumed.epoch_log.history] == [1, 2, 3]
    assert resumed.epoch_log.history[:2] == history
