"""The checkpoint handler on real engines: a plain Ignite Engine and MONAI's SupervisedTrainer/SupervisedEvaluator."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer
from monai.inferers import SimpleInferer
from monai.losses import DiceLoss

from pipeline.checkpoint import CheckpointHandler, CheckpointStore
from pipeline.io import atomic
from pipeline.checkpoint.checkpointer import Checkpointer
from pipeline.checkpoint.strategies import CheckpointEvent, EpochStrategy, PerformanceStrategy
from pipeline.errors import CheckpointError, SettingsError
from tiny_engines import validated_trainer  # tests/tiny_engines.py

DATA = [torch.randn(2, 4, generator=torch.Generator().manual_seed(i)) for i in range(3)]


def _plain_setup(scores=None):
    """A linear model trained by a plain Engine; a plain evaluator Engine reports scripted ``val_dice`` values."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        loss = (net(batch) - 1).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    trainer = Engine(step)
    evaluator = Engine(lambda e, b: None)
    if scores is not None:
        values = iter(scores)
        evaluator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(val_dice=next(values)))
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    return net, opt, trainer, evaluator


@pytest.mark.parametrize("async_save", [False, True])
def test_each_save_fires_saved_checkpoint_with_what_was_saved(tmp_path, async_save):
    net, opt, trainer, evaluator = _plain_setup([0.2, 0.5, 0.4])
    handler = CheckpointHandler(tmp_path, {"model": net}, "best", monitor="val_dice", max_checkpoints=1, async_save=async_save)
    handler.attach(trainer, evaluator)
    heard = []

    @trainer.on(CheckpointHandler.SAVED_CHECKPOINT)
    def listen(engine):
        saved = engine.state.saved_checkpoint
        heard.append((engine.state.epoch, saved["epoch"], saved["reasons"], saved["evicted"], saved["path"].is_file(),
                      [h["file"] for h in saved["history"]][-1] == saved["file"]))

    trainer.run(DATA, max_epochs=3)
    # one event per file, once it is on disk: a written one at once, a background one at the first event of the
    # training thread after its write completed (at the latest the next epoch's start)
    assert [h[1:] for h in heard] == [
        (1, ["best"], [], True, True),
        (2, ["best"], ["model_e0001_i00000003.pt"], True, True),
        (3, ["last"], [], True, True),
    ]
    assert all(saved <= when <= saved + async_save for when, saved, *_ in heard)


def test_best_on_a_plain_engine_saves_last_and_final(tmp_path):
    net, opt, trainer, evaluator = _plain_setup([0.2, 0.5, 0.4, 0.6, 0.6])
    handler = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt, "trainer": trainer}, "best", monitor="val_dice", max_checkpoints=2)
    handler.attach(trainer, evaluator)
    trainer.run(DATA, max_epochs=5)
    # epoch 1, 2, 4 best (top 2 kept: 2, 4); 3 and 5 "last" (3 evicted once 4 was newer); 5 is final
    assert [(e.epoch, e.reasons, e.score) for e in handler.checkpoints] == [
        (2, ["best"], 0.5),
        (4, ["best"], 0.6),
        (5, ["final", "last"], 0.6),
    ]
    assert handler.best_checkpoint.name == "model_e0004_i00000012.pt"  # tie at 0.6: the first to reach it
    assert handler.last_checkpoint.name == "model_e0005_i00000015.pt"
    payload = handler.store.load(handler.store.newest())
    assert payload["state"]["trainer"]["iteration"] == 15
    assert torch.equal(payload["state"]["model"]["weight"], net.weight)
    assert set(payload["state"]) == {"model", "optimizer", "trainer", "checkpointer", "rng"}  # rng: found from the trainer
    assert payload["state"]["checkpointer"]["strategy"] == {"best": 0.6, "best_epoch": 4}
    history = [(h["epoch"], h["reasons"], h["evicted"]) for h in handler.checkpointer.history]
    assert history == [
        (1, ["best"], []),
        (2, ["best"], []),
        (3, ["last"], []),
        (4, ["best"], ["model_e0001_i00000003.pt", "model_e0003_i00000009.pt"]),
        (5, ["last"], []),
    ]
    # the checkpoint's copy of the history includes its own save
    assert [h["file"] for h in payload["state"]["checkpointer"]["history"]][-1] == "model_e0005_i00000015.pt"


def test_checkpoint_is_taken_after_handlers_attached_later(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    handler = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt, "lr_scheduler": sched}, "epoch")
    handler.attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: sched.step())  # attached after the checkpoint handler
    trainer.run(DATA, max_epochs=2)
    state = handler.store.load(handler.store.newest())["state"]
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.025)  # both epochs' steps are in it
    assert state["lr_scheduler"]["last_epoch"] == 2


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    CheckpointHandler(tmp_path / "straight", {"model": net, "optimizer": opt, "trainer": trainer}, "epoch").attach(trainer)
    trainer.run(DATA, max_epochs=4)
    straight = net.weight.detach().clone()

    net, opt, trainer, _ = _plain_setup()
    first = CheckpointHandler(tmp_path / "split", {"model": net, "optimizer": opt, "trainer": trainer}, "epoch", max_checkpoints=1)
    first.attach(trainer)
    trainer.run(DATA, max_epochs=2)
    assert first.resume("auto") is not None  # nothing in memory changes: it is the state just saved

    net, opt, trainer, _ = _plain_setup()  # a new process, in effect
    second = CheckpointHandler(tmp_path / "split", {"model": net, "optimizer": opt, "trainer": trainer}, "epoch", max_checkpoints=1)
    second.attach(trainer)
    entry = second.resume("auto")
    assert (entry.epoch, trainer.state.epoch, trainer.state.iteration) == (2, 2, 6)
    trainer.run(DATA, max_epochs=4)
    assert torch.equal(net.weight, straight)
    assert [h["epoch"] for h in second.checkpointer.history] == [1, 2, 3, 4]  # the first run's saves included
    # the same folder continues: retention of the resumed run also covers the first run's files
    # (the first run's final checkpoint stays: "final" is never evicted)
    assert [(e.epoch, e.reasons) for e in second.checkpoints] == [(2, ["epoch", "final"]), (4, ["epoch", "final"])]


def test_monai_trainer_and_evaluator_with_key_metric(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 1, 3, padding=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    volume = torch.rand(1, 1, 8, 8, 8)
    label = (volume > 0.5).float()
    batches = [{"image": volume, "label": label}] * 2
    trainer, evaluator = validated_trainer(net, batches, DiceLoss(sigmoid=True), opt, max_epochs=4, val_interval=2)
    handler = CheckpointHandler(tmp_path, {"network": net, "optimizer": opt, "trainer": trainer}, "best", model_name="unet")
    handler.attach(trainer, evaluator)
    assert handler.strategy.monitor == "val_mean_dice"  # the evaluator's key metric
    trainer.run()
    entries = handler.checkpoints
    # validation at epochs 2 and 4 only: epoch 1 and 3 are "last" saves with no score
    assert [e.epoch for e in entries if "best" in e.reasons] == [2] + ([4] if entries[-1].score > entries[0].score else [])
    assert entries[-1].epoch == 4 and "final" in entries[-1].reasons
    assert entries[-1].metrics["val_mean_dice"] == pytest.approx(evaluator.state.metrics["val_mean_dice"])

    # resume into new MONAI objects from the best checkpoint
    net2 = torch.nn.Conv3d(1, 1, 3, padding=1)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.05)
    trainer2 = SupervisedTrainer(device="cpu", max_epochs=4, train_data_loader=batches, network=net2, optimizer=opt2,
                                 loss_function=DiceLoss(sigmoid=True), inferer=SimpleInferer())
    again = CheckpointHandler(tmp_path, {"network": net2, "optimizer": opt2, "trainer": trainer2}, "best", monitor="val_mean_dice", model_name="unet")
    best = again.resume("best")
    assert best.file == handler.best_checkpoint.name
    assert trainer2.state.epoch == best.epoch
    assert again.strategy.best == handler.strategy.best


def test_exception_checkpoint_then_reraise_and_auto_resume_skips_it(tmp_path):
    net, opt, trainer, _ = _plain_setup()

    @trainer.on(Events.ITERATION_COMPLETED(once=8))
    def boom(engine):
        raise RuntimeError("loss went NaN")

    handler = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt, "trainer": trainer}, "epoch")
    handler.attach(trainer)
    with pytest.raises(RuntimeError, match="loss went NaN"):
        trainer.run(DATA, max_epochs=5)
    assert [(e.epoch, e.iteration, e.reasons) for e in handler.checkpoints] == [(1, 3, ["epoch"]), (2, 6, ["epoch"]), (3, 8, ["exception"])]
    assert handler.checkpointer.resolve("auto").iteration == 6


def test_missing_monitor_is_reported_at_attach_and_at_the_first_metrics(tmp_path):
    net, opt, trainer, evaluator = _plain_setup([0.5])
    with pytest.raises(SettingsError, match="checkpoint strategy 'best' needs a metric to monitor"):
        CheckpointHandler(tmp_path, {"model": net}, "best").attach(trainer)
    handler = CheckpointHandler(tmp_path, {"model": net}, "best", monitor="val_dcie")
    handler.attach(trainer, evaluator)
    with pytest.raises(SettingsError, match=r"monitored metric 'val_dcie' is not among the metrics produced: \['val_dice'\]"):
        trainer.run(DATA, max_epochs=2)
    assert handler.checkpoints == []  # a settings error is not saved as an "exception" checkpoint

    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path / "no_eval", {"model": net}, "best", monitor="val_dice")
    handler.attach(trainer)  # no evaluator and the trainer itself computes no metrics
    with pytest.raises(SettingsError, match=r"'val_dice' is not among the metrics produced: \[\]"):
        trainer.run(DATA, max_epochs=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "bestest"}, r"unknown checkpoint strategy 'bestest'; valid strategies: \['adaptive'"),
        ({"strategy": "best", "mode": "up"}, r"mode must be one of \['max', 'min'\]"),
        ({"strategy": "interval", "strategy_params": {"every": 0}}, "every must be a whole number >= 1"),
        ({"to_save": {"model": object()}}, r"to_save\['model'\] \(object\) has no state_dict"),
        ({"to_save": {"checkpointer": torch.nn.Linear(1, 1)}}, "'checkpointer' is reserved"),
        ({"disk_budget": -5}, "disk_budget must be a number of bytes > 0"),
    ],
)
def test_bad_handler_settings(tmp_path, kwargs, message):
    settings = {"checkpoint_dir": tmp_path, "to_save": {"model": torch.nn.Linear(1, 1)}, "strategy": "epoch", **kwargs}
    with pytest.raises(ValueError, match=message):
        CheckpointHandler(**settings)


def test_save_optimizer_off_and_strict_resume(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt}, "epoch", save_optimizer=False)
    handler.attach(trainer)
    trainer.run(DATA, max_epochs=1)
    assert set(handler.store.load(handler.store.newest())["state"]) == {"model", "checkpointer", "trainer", "rng"}
    with_optimizer = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt}, "epoch")
    with pytest.raises(CheckpointError, match=r"has no state for \['optimizer'\]"):
        with_optimizer.resume("last")
    assert with_optimizer.resume("last", strict=False).epoch == 1


def test_iteration_interval_saves_within_epochs(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "interval",
                                strategy_params={"every": 2, "unit": "iteration"}, max_checkpoints=2, save_last=False, save_final=False)
    handler.attach(trainer)
    trainer.run(DATA, max_epochs=3)
    assert [e.iteration for e in handler.checkpoints] == [6, 8]


def test_time_based_clock_is_saved_and_continues(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "time_based",
                                strategy_params={"interval_seconds": 3600, "milestones": (0.5, 1.0)})
    handler.attach(trainer)
    trainer.run(DATA, max_epochs=4)
    assert [(e.epoch, e.reasons) for e in handler.checkpoints] == [(2, ["milestone"]), (4, ["final", "milestone"])]
    elapsed = handler.store.load(handler.store.newest())["state"]["checkpointer"]["elapsed"]
    assert elapsed > 0
    fresh = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "time_based",
                              strategy_params={"interval_seconds": 3600, "milestones": (0.5, 1.0)})
    fresh.resume("last")
    assert fresh.elapsed() == pytest.approx(elapsed)
    assert fresh.strategy.reached == [0.5, 1.0]


def test_failed_write_stops_the_run_and_rolls_the_decision_back(tmp_path, monkeypatch):
    net, opt, trainer, evaluator = _plain_setup([0.3])
    handler = CheckpointHandler(tmp_path, {"model": net}, "best", monitor="val_dice")
    handler.attach(trainer, evaluator)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match="model_e0001_i00000003.pt: No space left on device"):
        trainer.run(DATA, max_epochs=1)
    monkeypatch.undo()
    assert handler.strategy.best is None and handler.checkpoints == []
    assert list(tmp_path.iterdir()) == []
    # the decision is taken again at the next event, now that the disk has room
    event = CheckpointEvent(2, 6, {"val_dice": 0.3})
    entry = handler.checkpointer.step(event, lambda: {"model": net.state_dict()})
    assert entry.reasons == ["best"] and handler.strategy.best == 0.3


def test_retention_protects_newest_and_best_and_respects_disk_budget(tmp_path):
    store = CheckpointStore(tmp_path, "m", fsync=False)
    ck = Checkpointer(store, EpochStrategy(max_checkpoints=1, monitor="dice"), disk_budget=10_000)
    blob = {"w": torch.zeros(1500)}  # about 6.5 kB per file
    for epoch, dice in enumerate([0.9, 0.5, 0.6], start=1):
        ck.step(CheckpointEvent(epoch, epoch, {"dice": dice}), lambda: blob)
    # strategy keeps only epoch 3; epoch 1 is the best: kept although it costs the budget (protected)
    assert [e.epoch for e in store.entries] == [1, 3]
    assert store.total_size() > 10_000


class SlowDiskStore(CheckpointStore):
    """A real store on a slow disk: each save waits until the test lets it go on."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()

    def save(self, *args, **kwargs):
        assert self.gate.wait(30), "the test never let the save go on"
        return super().save(*args, **kwargs)


def test_background_eviction_follows_the_decision_of_its_own_save(tmp_path):
    store = SlowDiskStore(tmp_path, "m", fsync=False)
    strategy = PerformanceStrategy(max_checkpoints=None, monitor="dice", threshold=0.05)
    ck = Checkpointer(store, strategy, save_last=False, async_save=True)
    blob = {"w": torch.zeros(4)}
    ck.step(CheckpointEvent(1, 1, {"dice": 0.50}), lambda: blob)
    ck.flush()
    store.gate.clear()
    ck.step(CheckpointEvent(2, 2, {"dice": 0.52}), lambda: blob)  # in the background, held on the slow disk
    assert ck.decide(CheckpointEvent(3, 3, {"dice": 0.90})) == ["performance"]  # the next decision moves the best on
    store.gate.set()
    ck.flush()
    # epoch 2's eviction follows the band around epoch 2's best (0.52 - 0.05): epoch 1 (0.50) stays; the best of 0.90
    # belongs to a save not yet written, which may still fail
    assert [e.epoch for e in store.entries] == [1, 2]
    assert ck.history[-1]["evicted"] == []


@pytest.mark.parametrize("name", ["best", "epoch", "interval", "all", "adaptive", "performance_based", "time_based"])
def test_retention_invariants_with_one_checkpoint(tmp_path, name):
    """max_checkpoints=1, scripted scores with ties and NaN: the newest and the best always survive, the manifest
    matches the folder, and no more than the strategy's file plus the protected ones remain."""
    from pipeline.checkpoint.strategies import create_strategy

    store = CheckpointStore(tmp_path, "m", fsync=False)
    strategy = create_strategy(name, monitor="dice", max_checkpoints=1)
    ck = Checkpointer(store, strategy)
    scores = [0.3, float("nan"), 0.5, 0.5, 0.2, float("nan"), 0.6, 0.1, 0.6, 0.55]
    for epoch, dice in enumerate(scores, start=1):
        ck.step(CheckpointEvent(epoch, epoch, {"dice": dice}, elapsed=epoch * 100.0, max_epochs=len(scores)), lambda: {"e": torch.tensor(epoch)})
        entries = store.entries
        assert entries[-1].epoch == epoch  # save_last: the newest epoch is always on disk
        finite = [(s, -e) for e, s in enumerate(scores[:epoch], start=1) if s == s]
        best_epoch = -max(finite)[1]
        assert best_epoch in [e.epoch for e in entries]  # the first epoch that reached the best score
        assert {p.name for p in tmp_path.glob("*.pt")} == {e.file for e in entries}
        mine = [e for e in entries if set(e.reasons) & set(strategy.reasons) and "milestone" not in e.reasons]
        assert len(mine) <= 1 + 2  # the strategy's one, plus the newest and the best when they are also "mine"
        assert len(entries) <= 3 + sum("milestone" in e.reasons for e in entries)


def test_a_fresh_run_into_a_used_folder_errors_replaces_or_keeps(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch").attach(trainer)
    trainer.run(DATA, max_epochs=2)
    earlier = [e.file for e in CheckpointStore(tmp_path, "model").entries]
    assert len(earlier) == 2

    net, opt, trainer, _ = _plain_setup()
    CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch").attach(trainer)
    with pytest.raises(SettingsError, match=r"already holds 2 checkpoint\(s\) of 'model' from an earlier run: resume from them"):
        trainer.run(DATA, max_epochs=1)
    assert [e.file for e in CheckpointStore(tmp_path, "model").entries] == earlier

    net, opt, trainer, _ = _plain_setup()

    @trainer.on(Events.EPOCH_COMPLETED)
    def earlier_files_still_there_until_the_first_save(engine):
        assert set(earlier) <= {p.name for p in tmp_path.iterdir()}

    replacing = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch", existing="replace")
    replacing.attach(trainer)
    trainer.run(DATA, max_epochs=1)
    assert [e.file for e in replacing.checkpoints] == ["model_e0001_i00000003-1.pt"]
    assert replacing.checkpointer.history[0]["evicted"] == earlier

    net, opt, trainer, _ = _plain_setup()
    keeping = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch", existing="keep", max_checkpoints=5)
    keeping.attach(trainer)
    trainer.run(DATA, max_epochs=1)
    assert len(keeping.checkpoints) == 2
    with pytest.raises(ValueError, match=r"existing must be one of \['error', 'replace', 'keep'\]"):
        CheckpointHandler(tmp_path, {"model": net}, "epoch", existing="overwrite")


def _crash_at(trainer, iteration):
    @trainer.on(Events.ITERATION_COMPLETED(once=iteration))
    def boom(engine):
        raise RuntimeError("disk controller on fire")


@pytest.mark.parametrize("strategy, params", [("best", {"max_checkpoints": 1}), ("interval", {"strategy_params": {"every": 10}})])
def test_an_exception_checkpoint_never_costs_the_checkpoint_to_resume_from(tmp_path, strategy, params):
    net, opt, trainer, evaluator = _plain_setup([0.9, 0.5, 0.4])
    _crash_at(trainer, 8)
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, strategy, monitor="val_dice", **params)
    handler.attach(trainer, evaluator)
    with pytest.raises(RuntimeError, match="on fire"):
        trainer.run(DATA, max_epochs=5)
    assert handler.checkpointer.resolve("auto").epoch == 2  # the newest clean checkpoint survived
    assert [set(e.reasons) for e in handler.checkpoints][-1] == {"exception"}


def test_exception_saved_once_before_a_handler_that_reraises(tmp_path):
    from monai.handlers import StatsHandler

    net, opt, trainer, _ = _plain_setup()
    _crash_at(trainer, 5)
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch")
    handler.attach(trainer)
    StatsHandler(name="stats_test", iteration_log=False, epoch_log=False).attach(trainer)  # re-raises the exception
    with pytest.raises(RuntimeError, match="on fire"):
        trainer.run(DATA, max_epochs=3)
    assert [(e.iteration, e.reasons) for e in handler.checkpoints] == [(3, ["epoch"]), (5, ["exception"])]
    assert handler._clock_start is None  # the clock stopped


def test_nan_validation_metric_through_the_handler(tmp_path):
    net, opt, trainer, evaluator = _plain_setup([0.5, float("nan"), 0.7])
    handler = CheckpointHandler(tmp_path, {"model": net}, "best", monitor="val_dice", max_checkpoints=1)
    handler.attach(trainer, evaluator)
    trainer.run(DATA, max_epochs=3)
    assert [(e.epoch, e.reasons, e.score) for e in handler.checkpoints] == [(3, ["best", "final"], 0.7)]
    assert handler.checkpointer.history[1]["reasons"] == ["last"]  # the NaN epoch was only the "last" one


def test_resuming_from_an_older_checkpoint_makes_the_new_files_the_newest(tmp_path):
    net, opt, trainer, evaluator = _plain_setup([0.2, 0.8, 0.3, 0.4, 0.5])
    first = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt, "trainer": trainer}, "best", monitor="val_dice", max_checkpoints=1)
    first.attach(trainer, evaluator)
    trainer.run(DATA, max_epochs=5)

    net, opt, trainer, evaluator = _plain_setup([0.6])
    _crash_at(trainer, 11)  # during epoch 4 of the second timeline
    again = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt, "trainer": trainer}, "best", monitor="val_dice", max_checkpoints=1)
    again.attach(trainer, evaluator)
    assert again.resume("best").epoch == 2
    with pytest.raises(RuntimeError):
        trainer.run(DATA, max_epochs=5)
    newest = again.checkpointer.resolve("auto")
    assert (newest.epoch, newest.reasons) == (3, ["last"])  # the resumed run's epoch 3, not the old run's epoch 5
    assert newest.seq > max(e.seq for e in again.checkpoints if e.epoch == 5)
    assert again.best_checkpoint.name == "model_e0002_i00000006.pt"  # 0.8, still the best (epoch 3 scored 0.6)


def test_a_second_run_call_continues_the_same_training(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch", max_checkpoints=10)
    handler.attach(trainer)
    trainer.run(DATA, max_epochs=2)
    trainer.run(DATA, max_epochs=4)  # Ignite continues to epoch 4; no "earlier run" error
    assert [e.epoch for e in handler.checkpoints] == [1, 2, 3, 4]


def test_replace_keeps_the_earlier_run_when_the_new_one_crashes_before_its_first_checkpoint(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch").attach(trainer)
    trainer.run(DATA, max_epochs=2)
    net, opt, trainer, _ = _plain_setup()
    _crash_at(trainer, 2)
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "epoch", existing="replace")
    handler.attach(trainer)
    with pytest.raises(RuntimeError):
        trainer.run(DATA, max_epochs=2)
    assert [(e.epoch, e.reasons) for e in handler.checkpoints] == [(1, ["epoch"]), (2, ["epoch", "final"]), (1, ["exception"])]
    assert handler.checkpointer.resolve("auto").epoch == 2


def test_iteration_strategy_writes_once_at_an_epoch_end(tmp_path):
    net, opt, trainer, _ = _plain_setup()
    handler = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer}, "interval",
                                strategy_params={"every": 3, "unit": "iteration"}, max_checkpoints=10, save_final=False)
    handler.attach(trainer)
    trainer.run(DATA, max_epochs=2)
    # iterations 3 and 6 end epochs: one file each, written after the epoch-end handlers, for both reasons
    assert [(h["iteration"], h["reasons"]) for h in handler.checkpointer.history] == [(3, ["interval"]), (6, ["interval"])]


def test_resume_names_the_valid_choices(tmp_path):
    handler = CheckpointHandler(tmp_path, {"model": torch.nn.Linear(1, 1)}, "epoch")
    with pytest.raises(CheckpointError, match=r"resume must be one of \['auto', 'best', 'last'\] or a checkpoint file, got 'Best'"):
        handler.resume("Best")
