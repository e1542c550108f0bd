"""The original API's front doors: CheckpointManager, AutoCheckpointManager and the config presets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.checkpoint import (
    CHECKPOINT_PRESETS,
    AutoCheckpointManager,
    CheckpointHandler,
    CheckpointManager,
    create_checkpoint_manager,
    get_checkpoint_preset,
)
from pipeline.errors import CheckpointError


def _model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)
    return model, optimizer, scheduler


def _train_epoch(model, optimizer, scheduler):
    optimizer.zero_grad()
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()


def test_seed_loop_with_best_strategy(tmp_path):
    model, optimizer, scheduler = _model_and_optimizer()
    manager = CheckpointManager(tmp_path, "my_model", save_strategy="best", max_checkpoints=2, monitor_metric="val_dice", mode="max")
    paths = []
    for epoch, dice in enumerate([0.60, 0.70, 0.65, 0.80], start=1):
        _train_epoch(model, optimizer, scheduler)
        paths.append(manager.save_checkpoint(model, optimizer, scheduler, epoch, {"val_dice": dice, "val_loss": 1 - dice}))
    assert [p.name for p in paths] == [f"my_model_e{e:04d}_i{e:08d}.pt" for e in range(1, 5)]
    listed = manager.list_checkpoints()
    assert [(c["epoch"], c["reasons"]) for c in listed] == [(2, ["best"]), (4, ["best"])]
    assert manager.get_best_checkpoint_path().name == "my_model_e0004_i00000004.pt"
    summary = manager.get_checkpoint_summary()
    assert summary["total_checkpoints"] == 2 and summary["best_metric"] == 0.8 and summary["best_epoch"] == 4
    assert summary["strategy"] == "best" and summary["total_size_bytes"] == sum(c["size"] for c in listed)

    fresh, fresh_opt, fresh_sched = _model_and_optimizer()
    info = manager.load_checkpoint(manager.get_best_checkpoint_path(), fresh, fresh_opt, fresh_sched)
    assert info["epoch"] == 4 and info["metrics"] == {"val_dice": 0.8, "val_loss": pytest.approx(0.2)}
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_sched.last_epoch == 4 and fresh_opt.param_groups[0]["lr"] == pytest.approx(1e-2 / 16)


def test_save_optimizer_and_scheduler_switches(tmp_path):
    model, optimizer, scheduler = _model_and_optimizer()
    manager = CheckpointManager(tmp_path, "m", "epoch", save_optimizer=False, save_scheduler=False, monitor_metric=None)
    path = manager.save_checkpoint(model, optimizer, scheduler, 1, {})
    state = manager.store.load(path)["state"]
    assert set(state) == {"model", "epoch", "rng", "checkpointer"}
    with pytest.raises(CheckpointError, match="has no optimizer state"):
        manager.load_checkpoint(path, model, optimizer)


def test_auto_manager_adaptive_and_state_roundtrip(tmp_path):
    model, optimizer, _ = _model_and_optimizer()
    manager = AutoCheckpointManager(tmp_path, "auto", auto_strategy="adaptive", max_checkpoints=3)
    for epoch, dice in enumerate([0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], start=1):
        manager.save_checkpoint(model, optimizer, None, epoch, {"val_dice": dice})
    assert manager.strategy.gap == 4 and manager.strategy.last_saved_epoch == 5
    # the newest (epoch 7, "last") and best (epoch 2) stay; adaptive saves at 3 and 5
    assert [(c["epoch"], c["reasons"]) for c in manager.list_checkpoints()] == [
        (2, ["best"]), (3, ["adaptive"]), (5, ["adaptive"]), (7, ["last"])
    ]
    again = AutoCheckpointManager(tmp_path, "auto", auto_strategy="adaptive", max_checkpoints=3)
    again.load_checkpoint("last", model)
    assert again.strategy.state_dict() == manager.strategy.state_dict()


def test_presets_are_the_seed_configs():
    assert get_checkpoint_preset("best") == {"save_strategy": "best", "monitor_metric": "val_dice", "mode": "max", "max_checkpoints": 3}
    assert get_checkpoint_preset("adaptive") == {"manager_type": "auto", "auto_strategy": "adaptive", "max_checkpoints": 5}
    assert get_checkpoint_preset("performance_based")["max_checkpoints"] == 3
    preset = get_checkpoint_preset("epoch")
    preset["max_checkpoints"] = 99
    assert CHECKPOINT_PRESETS["epoch"]["max_checkpoints"] == 5  # callers get copies


@pytest.mark.parametrize("name", sorted(CHECKPOINT_PRESETS))
def test_every_preset_builds_a_working_manager(tmp_path, name):
    model, optimizer, scheduler = _model_and_optimizer()
    manager = create_checkpoint_manager(tmp_path, "m", name)
    assert isinstance(manager, AutoCheckpointManager) == (CHECKPOINT_PRESETS[name].get("manager_type") == "auto")
    for epoch in range(1, 4):
        manager.save_checkpoint(model, optimizer, scheduler, epoch, {"val_dice": 0.1 * epoch}, max_epochs=3)
    assert manager.list_checkpoints()  # the newest is always there
    assert manager.load_checkpoint(None, model)["epoch"] == 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: get_checkpoint_preset("fastest"), r"unknown checkpoint preset 'fastest'; valid presets: \['adaptive', 'all'"),
        (lambda d: create_checkpoint_manager(d, "m", {"manager_type": "smart"}), r"unknown manager_type 'smart'; valid: \['standard', 'auto'\]"),
        (lambda d: AutoCheckpointManager(d, "m", auto_strategy="best"), r"unknown auto_strategy 'best'; valid: \['adaptive', 'performance_based', 'time_based'\]"),
        (lambda d: CheckpointManager(d, "m", save_strategy="top"), r"unknown checkpoint strategy 'top'"),
        (lambda d: CheckpointManager(d, "m", mode="highest"), r"mode must be one of \['max', 'min'\]"),
        (lambda d: CheckpointManager(d, "m", max_checkpoints=-1), "max_checkpoints must be a whole number >= 1"),
        (lambda d: CheckpointManager(d, "m", "best", monitor_metric=None), "'best' needs monitor_metric"),
        (lambda d: CheckpointManager(d, "m", "interval", every=0), "every must be a whole number >= 1"),
        (lambda d: CheckpointManager(d, "m", "epoch", evry=2), r"unknown parameter\(s\) \['evry'\]"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path)


def test_missing_monitored_metric_and_empty_folder(tmp_path):
    model, optimizer, _ = _model_and_optimizer()
    manager = CheckpointManager(tmp_path, "m")
    with pytest.raises(ValueError, match=r"'val_dice' is not among the metrics produced: \['dice'\]"):
        manager.save_checkpoint(model, optimizer, None, 1, {"dice": 0.5})
    assert manager.list_checkpoints() == []
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        manager.load_checkpoint(None, model)
    with pytest.raises(CheckpointError, match=r"one of \['auto', 'best', 'last'\] or a checkpoint file, got 'Best'"):
        manager.load_checkpoint("Best", model)


def test_a_second_loop_in_the_same_folder_must_say_what_to_do(tmp_path):
    model, optimizer, _ = _model_and_optimizer()
    CheckpointManager(tmp_path, "m", "epoch", monitor_metric=None).save_checkpoint(model, optimizer, None, 1, {})
    again = CheckpointManager(tmp_path, "m", "epoch", monitor_metric=None)
    with pytest.raises(ValueError, match="from an earlier run"):
        again.save_checkpoint(model, optimizer, None, 1, {})
    assert again.load_checkpoint(None, model, optimizer)["epoch"] == 1  # resuming continues the same folder
    assert again.save_checkpoint(model, optimizer, None, 2, {}).name == "m_e0002_i00000002.pt"
    replacing = CheckpointManager(tmp_path, "m", "epoch", monitor_metric=None, existing="replace")
    replacing.save_checkpoint(model, optimizer, None, 1, {})
    assert [c["file"] for c in replacing.list_checkpoints()] == ["m_e0001_i00000001-1.pt"]


def test_regular_strategies_need_no_metrics_and_auto_defaults_are_the_strategies(tmp_path):
    model, optimizer, _ = _model_and_optimizer()
    manager = create_checkpoint_manager(tmp_path / "epoch", "m", "epoch")  # monitor_metric stays 'val_dice'
    assert manager.save_checkpoint(model, epoch=1) is not None
    assert manager.save_checkpoint(model, epoch=2, metrics={"loss": 1.0}) is not None
    timed = AutoCheckpointManager(tmp_path / "time", "m", auto_strategy="time_based")
    assert timed.save_checkpoint(model, epoch=1, metrics={"loss": 1.0}) is not None
    assert timed.strategy.max_checkpoints == 3  # TimeStrategy's own default
    assert AutoCheckpointManager(tmp_path / "p", "m", auto_strategy="performance_based").strategy.max_checkpoints == 3
    assert AutoCheckpointManager(tmp_path / "a", "m", auto_strategy="adaptive", max_checkpoints=None).strategy.max_checkpoints is None


def test_manager_clock_counts_the_time_before_the_first_save(tmp_path):
    import time

    model, _, _ = _model_and_optimizer()
    manager = AutoCheckpointManager(tmp_path, "m", auto_strategy="time_based", interval_seconds=0.05, milestones=())
    time.sleep(0.06)
    path = manager.save_checkpoint(model, epoch=1, metrics={"val_dice": 0.1})
    assert manager.list_checkpoints()[0]["reasons"] == ["time"] and path is not None


def test_a_resumed_loop_draws_the_same_random_numbers_and_async_saves_land(tmp_path):
    """Dropout and shuffling in a hand-written loop: train 2+2 epochs with a reload in between, as a new process
    would, against 4 straight; with async_save the saves are the same files."""
    def loop(manager, net, opt, epochs, start=1):
        for epoch in range(start, start + epochs):
            for index in torch.randperm(6).tolist():  # shuffling with torch's generator
                opt.zero_grad()
                x = torch.full((1, 4), float(index))
                torch.nn.functional.dropout(net(x), 0.5).pow(2).mean().backward()
                opt.step()
            manager.save_checkpoint(net, opt, None, epoch, {"val_dice": float(epoch)})

    def fresh(folder, **kwargs):
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 4)
        return CheckpointManager(folder, "m", "epoch", max_checkpoints=2, **kwargs), net, torch.optim.SGD(net.parameters(), lr=0.01)

    manager, net, opt = fresh(tmp_path / "straight")
    loop(manager, net, opt, 4)
    straight = net.weight.detach().clone()

    manager, net, opt = fresh(tmp_path / "split", async_save=True)
    loop(manager, net, opt, 2)
    manager.flush()
    torch.manual_seed(123)  # a new process: other generators until the checkpoint's are restored
    manager, net, opt = fresh(tmp_path / "split", async_save=True)
    assert manager.load_checkpoint("auto", net, opt)["epoch"] == 2
    loop(manager, net, opt, 2, start=3)
    manager.flush()
    assert torch.equal(net.weight, straight)
    assert [c["epoch"] for c in manager.list_checkpoints()] == [3, 4]


def test_handler_and_manager_share_one_settings_object(tmp_path):
    manager = CheckpointManager(tmp_path, "m", save_strategy="interval", every=2, max_checkpoints=2, disk_budget=10**6, existing="keep")
    net = torch.nn.Linear(2, 1)
    handler = CheckpointHandler(tmp_path, {"model": net}, settings=manager.settings)
    assert handler.settings is manager.settings and handler.strategy is manager.strategy
    assert (handler.checkpointer.store.model_name, handler.checkpointer.disk_budget, handler.checkpointer.existing) == ("m", 10**6, "keep")
    # the handler's own arguments build the same settings
    by_arguments = CheckpointHandler(tmp_path / "b", {"model": net}, "interval", "m", max_checkpoints=2,
                                     strategy_params={"every": 2}, disk_budget=10**6, existing="keep").settings
    assert dataclasses.replace(by_arguments, strategy=None) == dataclasses.replace(manager.settings, strategy=None)
    assert (by_arguments.strategy.every, by_arguments.strategy.max_checkpoints) == (2, 2)
