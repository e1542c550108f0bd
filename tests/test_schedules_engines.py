"""Loss-weight schedules on real engines: a plain Ignite Engine, MONAI's SupervisedTrainer/SupervisedEvaluator, the
seed's engine-free loop, and a checkpointed run that stops and resumes."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer
from monai.handlers import ValidationHandler
from monai.inferers import SimpleInferer

from pipeline import CheckpointHandler, LossManager
from pipeline.errors import SettingsError
from pipeline.losses import CombinedLoss
from pipeline.schedules import AdaptiveSchedule, LossScheduleHandler, LossScheduler, PerformanceSchedule
from tiny_engines import dice_evaluator, validated_trainer  # tests/tiny_engines.py

VOLUMES = [torch.rand(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
BATCHES = [{"image": v, "label": (v > 0.6).float()} for v in VOLUMES]


def _network():
    torch.manual_seed(0)
    return torch.nn.Conv3d(1, 1, 3, padding=1)


def _plain_trainer(net, loss, weights_seen=None, lr=0.5):
    """A plain Engine training ``net`` with ``loss``; records the weights each iteration's forward used."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)

    def step(engine, batch):
        opt.zero_grad()
        value = loss(net(batch["image"]), batch["label"])
        value.backward()
        opt.step()
        if weights_seen is not None:
            weights_seen.append((engine.state.epoch, dict(loss.weights)))
        return value.item()

    return Engine(step), opt


def test_cosine_on_a_plain_engine_sets_the_weights_each_epoch_and_publishes_them(caplog):
    loss = CombinedLoss({"dice": {}, "cldice": {"iter_": 1}}, {"dice": 1.0, "cldice": 0.0})
    seen = []
    trainer, _ = _plain_trainer(_network(), loss, seen)
    at_start = {}  # attached before the schedule handler: it still sees the weights of the epoch starting
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: at_start.update({e.state.epoch: dict(e.state.loss_weights)}))
    published = {}
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: published.update({e.state.epoch: (e.state.loss_weights, e.state.loss_components)}))
    handler = LossScheduleHandler(loss, "cosine", {"end_weights": {"dice": 0.5, "cldice": 0.5}, "warmup_epochs": 1})
    handler.attach(trainer)
    with caplog.at_level(logging.INFO, logger="pipeline.schedules"):
        trainer.run(BATCHES, max_epochs=5)
    assert handler.schedule.epochs == 3  # the rest of the run after the warm-up: the last epoch has the end weights
    # after e completed epochs: keep = (1 + cos(pi (e - 1) / 3)) / 2 -> dice = .5 + .5 keep
    expected = [1.0, 1.0, 0.875, 0.625, 0.5]
    per_epoch = {epoch: w for epoch, w in seen}
    assert [round(per_epoch[e]["dice"], 6) for e in range(1, 6)] == expected
    assert all(w == per_epoch[e] for e, w in seen)  # the same weights for every iteration of an epoch
    assert [round(published[e][0]["dice"], 6) for e in range(1, 6)] == expected
    assert all(at_start[e] == published[e][0] for e in range(1, 6))
    # the zero-weighted clDice is not computed in epochs 1-2, then it is
    assert set(published[1][1]) == {"dice"} and set(published[3][1]) == {"dice", "cldice"}
    assert [h["weights"] for h in handler.history] == [published[e][0] for e in range(1, 6)]
    assert "loss weights for epoch 1: dice=1.0000 cldice=0.0000" in caplog.text
    assert caplog.text.count("loss weights for epoch") == 4  # logged when they change (epochs 1 and 2 are equal)


def test_adaptive_follows_the_epoch_means_of_the_terms():
    loss = LossManager.create_loss_function({"type": "combined", "dice_weight": 0.7, "bce_weight": 0.3})
    trainer, _ = _plain_trainer(_network(), loss)
    per_iteration = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: per_iteration.append((e.state.epoch, loss.last_components)))
    handler = LossScheduleHandler(loss, "adaptive", {"temperature": 2.0})
    handler.attach(trainer)
    trainer.run(BATCHES, max_epochs=4)
    means = {}
    for epoch in range(1, 5):
        rows = [c for e, c in per_iteration if e == epoch]
        means[epoch] = {t: sum(r[f"{t}_loss"] for r in rows) / len(rows) for t in ("dice", "bce")}
        assert handler.history[epoch - 1]["losses"] == pytest.approx(means[epoch], rel=1e-6)
    weights = [h["weights"] for h in handler.history]
    assert weights[0] == weights[1] == {"dice": 0.7, "bce": 0.3}
    for epoch in (3, 4):  # DWA from the two epochs before
        r = {t: means[epoch - 1][t] / means[epoch - 2][t] for t in ("dice", "bce")}
        z = {t: math.exp(r[t] / 2.0) for t in r}
        assert weights[epoch - 1] == pytest.approx({t: z[t] / sum(z.values()) for t in z}, rel=1e-6)


def _monai_engines(net, loss, val_interval=1):
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    trainer, evaluator = validated_trainer(net, BATCHES, loss, opt, max_epochs=6, val_interval=val_interval)
    return trainer, evaluator, opt


def test_performance_on_monai_trainer_follows_the_evaluators_key_metric():
    loss = LossManager.create_loss_function("vessel_cldice")
    trainer, evaluator, _ = _monai_engines(_network(), loss, val_interval=2)
    scores = {}
    evaluator.add_event_handler(Events.COMPLETED, lambda e: scores.update({trainer.state.epoch: e.state.metrics["val_mean_dice"]}))
    handler = LossScheduleHandler(loss, "performance", {"patience": 1, "threshold": 0.5, "shift": 0.2})
    handler.attach(trainer, evaluator)
    assert handler.scheduler.monitor == "val_mean_dice"
    trainer.run()
    assert sorted(scores) == [2, 4, 6]  # validated every second epoch
    # replay: the same policy fed the same scores, after the same epochs, gives the same weights
    replay = PerformanceSchedule({"dice": 0.5, "bce": 0.2, "cldice": 0.3}, patience=1, threshold=0.5, shift=0.2)
    expected = [dict(replay.weights)]
    for epoch in range(1, 6):
        if epoch in scores:
            replay.evaluation_completed(scores[epoch])
        expected.append(dict(replay.weights))
    assert [h["weights"] for h in handler.history] == expected
    assert trainer.state.loss_weights == expected[-1]
    # a 50 % better Dice never comes: the validations after epochs 4 and 6 both shift .2 to clDice
    assert handler.history[-1]["weights"]["cldice"] == pytest.approx(0.5)
    assert handler.schedule.shifts == 2 and handler.scheduler.weights["cldice"] == pytest.approx(0.7)


def test_monai_train_handlers_list_attaches_it_too():
    loss = LossManager.create_loss_function("default_segmentation")
    net = _network()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    handler = LossScheduleHandler(loss, "step", {"step_size": 1, "gamma": 0.5})
    trainer = SupervisedTrainer(device="cpu", max_epochs=3, train_data_loader=BATCHES, network=net, optimizer=opt,
                                loss_function=loss, inferer=SimpleInferer(), train_handlers=[handler])
    trainer.run()
    assert [round(h["weights"]["dice"], 6) for h in handler.history] == [0.7, 0.538462, 0.368421]  # .35/.65, .175/.475


def test_nan_validation_metric_is_ignored_with_a_warning(caplog):
    loss = LossManager.create_loss_function("default_segmentation")
    trainer, _ = _plain_trainer(_network(), loss)
    values = iter([0.5, math.nan, 0.4])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_dice=next(values)))
    handler = LossScheduleHandler(loss, "performance", {"monitor": "val_dice", "patience": 2})
    handler.attach(trainer)
    with caplog.at_level(logging.WARNING):
        trainer.run(BATCHES, max_epochs=3)
    assert "val_dice is nan after epoch 2; this validation is ignored" in caplog.text
    # one bad validation (0.4) only: a NaN counted as "not better" would have made it two and shifted weight
    assert (handler.schedule.best, handler.schedule.bad_evaluations, handler.schedule.shifts) == (0.5, 1, 0)


def test_resumed_run_continues_the_same_weight_sequence_and_model(tmp_path):
    """Train 6 epochs straight vs. 3 epochs, stop, resume from the checkpoint in new objects, 3 more epochs."""

    def run(folder, stop_after=None, resume=False):
        net = _network() if not resume else torch.nn.Conv3d(1, 1, 3, padding=1)  # fresh weights: the checkpoint restores them
        loss = LossManager.create_loss_function("vessel_cldice")
        trainer, opt = _plain_trainer(net, loss, lr=0.3)
        schedule = LossScheduleHandler(loss, "adaptive", {"temperature": 0.5})
        schedule.attach(trainer)
        to_save = {"model": net, "optimizer": opt, "trainer": trainer, "loss_schedule": schedule}
        checkpoints = CheckpointHandler(folder, to_save, "epoch", max_checkpoints=2)
        checkpoints.attach(trainer)
        if stop_after:
            trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
        if resume:
            checkpoints.resume("auto")
        trainer.run(BATCHES, max_epochs=6)
        return net, schedule

    net_a, straight = run(tmp_path / "a")
    _, first = run(tmp_path / "b", stop_after=3)
    assert len(first.history) == 3
    net_b, resumed = run(tmp_path / "b", resume=True)
    assert resumed.history == straight.history  # weights and term losses of all 6 epochs, to the last bit
    assert len({tuple(h["weights"].values()) for h in straight.history}) == 5  # the weights did move (epochs 3-6)
    assert all(torch.equal(a, b) for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values()))


def test_engine_free_seed_loop_matches_the_handler():
    """The seed's ``for epoch in range(n): ...; loss_scheduler.step(epoch, val_metrics)`` gives the handler's weights."""
    scores = [0.3, 0.5, 0.5, 0.45, 0.5]
    # vessel_topology has Skeleton Recall: the label carries skeleton channels (here the label itself stands in)
    batches = [{"image": b["image"], "label": torch.cat([b["label"], b["label"]], 1)} for b in BATCHES]

    def by_handler():
        loss = LossManager.create_loss_function("vessel_topology")
        trainer, _ = _plain_trainer(_network(), loss)
        values = iter(scores)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(dice=next(values)))
        handler = LossScheduleHandler(loss, "performance", {"monitor": "dice", "patience": 2})
        handler.attach(trainer)
        trainer.run(batches, max_epochs=5)
        return [h["weights"] for h in handler.history]

    loss = LossManager.create_loss_function("vessel_topology")
    net = _network()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    loss_scheduler = LossManager.create_loss_scheduler(loss, {"type": "performance", "params": {"patience": 2}})
    in_force, dice_terms = [], []
    for epoch in range(5):
        in_force.append(dict(loss.weights))
        for batch in batches:
            opt.zero_grad()
            loss(net(batch["image"]), batch["label"]).backward()
            opt.step()
            dice_terms.append(loss.last_components["dice_loss"])
        with torch.no_grad():  # a validation forward is not counted as training
            loss(net(batches[0]["image"]), batches[0]["label"])
        loss_scheduler.step(epoch, {"dice": scores[epoch], "loss": 0.1})
    assert loss_scheduler.monitor == "dice"  # guessed among the metrics
    assert in_force == by_handler()
    assert in_force[-1]["cldice"] > 0.2 and len(loss_scheduler.history[0]["losses"]) == 4
    # the epoch means are those of the training calls only
    assert loss_scheduler.history[0]["losses"]["dice"] == pytest.approx(sum(dice_terms[:3]) / 3, rel=1e-6)


def test_bad_wiring_is_reported_before_training():
    with pytest.raises(SettingsError, match="needs a pipeline CombinedLoss"):
        LossScheduleHandler(torch.nn.BCEWithLogitsLoss(), "cosine")
    loss = LossManager.create_loss_function("default_segmentation")
    with pytest.raises(SettingsError, match="needs a metric to follow"):
        LossScheduleHandler(loss, "performance").attach(Engine(lambda e, b: None), Engine(lambda e, b: None))
    with pytest.raises(SettingsError, match="the schedule is for terms"):
        LossScheduler(loss, AdaptiveSchedule({"dice": 1.0}))
    with pytest.raises(ValueError, match="valid types"):
        LossManager.create_loss_scheduler(loss, {"type": "linear"})
    with pytest.raises(ValueError, match="takes 'type' \\(required\\) and 'params'"):
        LossManager.create_loss_scheduler(loss, {"type": "cosine", "epochs": 3})
    # the seed's loss config with a scheduler entry is checked when the loss is built
    with pytest.raises(ValueError, match="unknown parameter\\(s\\) \\['patiense'\\]"):
        LossManager.create_loss_function({"type": "combined", "dice_weight": 0.8, "bce_weight": 0.2,
                                          "scheduler": {"type": "performance", "params": {"patiense": 3}}})
    scheduler = LossManager.create_loss_scheduler(loss, "performance")
    with pytest.raises(SettingsError, match="does not know which metric to follow"):
        scheduler.step(0, {"precision": 0.5, "recall": 0.4})
    scheduler = LossManager.create_loss_scheduler(loss, {"type": "performance", "params": {"monitor": "val_dice"}})
    with pytest.raises(SettingsError, match="follows 'val_dice', which is not among the validation metrics \\['dice'\\]"):
        scheduler.step(0, {"dice": 0.5})


def test_term_means_keep_their_precision_in_half_precision_training():
    loss = LossManager.create_loss_function("default_segmentation")
    scheduler = LossScheduler(loss, "adaptive")
    x = torch.randn(1, 1, 4, 4, 4, requires_grad=True)
    y = (torch.rand(1, 1, 4, 4, 4) > 0.5).float()
    values = []
    for _ in range(1500):
        loss(x.to(torch.bfloat16), y.to(torch.bfloat16))
        values.append(loss.last_components["dice_loss"])
    assert loss.last_component_tensors["dice_loss"].dtype == torch.bfloat16
    assert scheduler.meter.means()["dice"] == pytest.approx(sum(values) / len(values), rel=1e-6)


def test_trainer_metric_attached_later_is_read_once_computed(caplog):
    """Without an evaluator the metric is read after every handler of the epoch end, even one attached later."""
    loss = LossManager.create_loss_function("default_segmentation")
    trainer, _ = _plain_trainer(_network(), loss)
    handler = LossScheduleHandler(loss, "performance", {"monitor": "val_dice", "patience": 1, "threshold": 0.0})
    handler.attach(trainer)
    values = iter([0.5, 0.6, 0.6, 0.7])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_dice=next(values)))
    trainer.run(BATCHES, max_epochs=4)
    assert (handler.schedule.best, handler.schedule.shifts) == (0.7, 1)  # one plateau, at 0.6 after 0.6

    loss = LossManager.create_loss_function("default_segmentation")
    trainer, _ = _plain_trainer(_network(), loss)
    handler = LossScheduleHandler(loss, "performance", {"monitor": "val_dice"})
    handler.attach(trainer)
    with caplog.at_level(logging.WARNING):
        trainer.run(BATCHES, max_epochs=2)  # no such metric: a warning, no crash, nothing counted
    assert caplog.text.count("follows 'val_dice', which is not in the trainer's metrics") == 1
    assert handler.schedule.best is None


def test_trainer_resumed_without_the_schedule_state(tmp_path, caplog):
    """cosine/step continue at the trainer's epoch; adaptive warns that its state was not restored."""
    def run(name, stop_after=None, resume=False):
        loss = LossManager.create_loss_function("default_segmentation")
        net = _network()
        trainer, opt = _plain_trainer(net, loss, lr=0.3)
        params = {"cosine": {"epochs": 4}, "step": {"step_size": 1}}.get(name)
        schedule = LossScheduleHandler(loss, name, params)
        schedule.attach(trainer)
        # discover=False: the schedule handler is left out of the checkpoint on purpose
        checkpoints = CheckpointHandler(tmp_path / f"{name}{stop_after}{resume}", {"model": net, "trainer": trainer}, "epoch", discover=False)
        checkpoints.attach(trainer)
        if stop_after:
            trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
        if resume:
            checkpoints.resume(sorted((tmp_path / f"{name}2False").glob("*.pt"))[-1])
        trainer.run(BATCHES, max_epochs=5)
        return schedule

    for name in ("cosine", "step"):  # functions of the epoch alone
        straight = run(name)
        run(name, stop_after=2)
        resumed = run(name, resume=True)
        assert [h["weights"] for h in resumed.history] == [h["weights"] for h in straight.history][2:]
        assert len({tuple(h["weights"].values()) for h in straight.history[2:]}) > 1
    run("adaptive", stop_after=2)
    with caplog.at_level(logging.WARNING):
        run("adaptive", resume=True)
    assert "the trainer is at epoch 2 but the adaptive loss-weight schedule at epoch 0" in caplog.text


def test_one_schedule_per_loss_and_one_attach_per_handler():
    loss = LossManager.create_loss_function("vessel_cldice")
    fade_in = {"start_weights": {"dice": 0.7, "bce": 0.3, "cldice": 0.0}, "epochs": 2}
    first = LossScheduler(loss, "cosine", fade_in)
    assert loss.weights == {"dice": 0.7, "bce": 0.3, "cldice": 0.0}
    second = LossScheduler(loss, "cosine", fade_in)  # takes over: the first stops following the loss ...
    assert first.closed and not second.closed
    with pytest.raises(RuntimeError, match="closed or replaced"):
        first.apply()
    # ... and the new one starts from the preset's weights, not from where the first left the loss
    assert second.schedule.initial == {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    assert second.step(1) == pytest.approx({"dice": 0.5, "bce": 0.2, "cldice": 0.3})
    second.close()  # gives the loss back its configured weights
    assert loss.weights == {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    LossScheduler(loss, "cosine", fade_in).step(1)  # dropped without close(): the next one still starts right
    assert LossScheduler(loss, "cosine", fade_in).schedule.initial == {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    handler = LossScheduleHandler(loss, "cosine")
    trainer, _ = _plain_trainer(_network(), loss)
    handler.attach(trainer)
    with pytest.raises(SettingsError, match="already attached"):
        handler.attach(trainer)


def test_evaluator_given_to_the_constructor_for_monai_train_handlers():
    loss = LossManager.create_loss_function("vessel_cldice")
    net = _network()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    evaluator = dice_evaluator(net, BATCHES[:1])
    handler = LossScheduleHandler(loss, "performance", {"patience": 1, "threshold": 0.5}, evaluator=evaluator)
    trainer = SupervisedTrainer(device="cpu", max_epochs=3, train_data_loader=BATCHES, network=net, optimizer=opt,
                                loss_function=loss, inferer=SimpleInferer(),
                                train_handlers=[ValidationHandler(validator=evaluator, interval=1, epoch_level=True), handler])
    trainer.run()
    assert handler.scheduler.monitor == "val_mean_dice" and handler.schedule.shifts == 2


def test_infinite_metric_is_ignored_and_loss_metrics_are_not_guessed(caplog):
    loss = LossManager.create_loss_function("default_segmentation")
    scheduler = LossManager.create_loss_scheduler(loss, {"type": "performance", "params": {"patience": 1}})
    with caplog.at_level(logging.WARNING):
        scheduler.step(0, {"dice": -math.inf})
    assert "dice is -inf after epoch 1; this validation is ignored" in caplog.text
    scheduler.step(1, {"dice": 0.5})
    scheduler.step(2, {"dice": 0.6})
    assert (scheduler.schedule.best, scheduler.schedule.shifts) == (0.6, 0)
    scheduler.close()
    scheduler = LossManager.create_loss_scheduler(loss, {"type": "performance"})
    with pytest.raises(SettingsError, match="guesses only"):
        scheduler.step(0, {"val_loss": 0.9})


def test_schedule_attached_after_the_checkpoint_handler_is_saved_after_its_update(tmp_path):
    """A performance schedule on the trainer's own metric reads it last at the epoch end, and the checkpoint handler,
    attached first, still saves after that (it re-asserts its place at every EPOCH_STARTED)."""
    loss = LossManager.create_loss_function("default_segmentation")
    net = _network()
    trainer, opt = _plain_trainer(net, loss)
    schedule = LossScheduleHandler(loss, "performance", {"monitor": "val_dice", "patience": 1, "threshold": 0.0})
    checkpoints = CheckpointHandler(tmp_path, {"model": net, "trainer": trainer, "loss_schedule": schedule}, "epoch",
                                    max_checkpoints=5)
    checkpoints.attach(trainer)
    schedule.attach(trainer)
    values = iter([0.5, 0.4, 0.6, 0.6])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_dice=next(values)))
    trainer.run(BATCHES, max_epochs=4)
    saved = [checkpoints.store.load(entry)["state"]["loss_schedule"]["schedule"] for entry in checkpoints.checkpoints]
    assert [(s["epoch"], s["best"], s["shifts"]) for s in saved] == [(1, 0.5, 0), (2, 0.5, 1), (3, 0.6, 1), (4, 0.6, 2)]


def test_run_resumed_mid_epoch_keeps_the_partial_term_sums():
    """Ignite resumes an epoch where its iteration count says; the meter keeps the sums it loaded for that epoch."""
    loss = LossManager.create_loss_function("default_segmentation")
    net = _network()
    trainer, opt = _plain_trainer(net, loss)
    handler = LossScheduleHandler(loss, "adaptive")
    handler.attach(trainer)
    calls = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: calls.append(loss.last_components["dice_loss"]))
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=4), lambda e: e.terminate())
    trainer.run(BATCHES, max_epochs=2)  # stops after iteration 4: epoch 2 has one call of three
    state, trainer_state, model = handler.state_dict(), trainer.state_dict(), net.state_dict()
    assert state["meter"]["counts"] == {"dice": 1, "bce": 1}

    loss2 = LossManager.create_loss_function("default_segmentation")
    net2 = _network()
    net2.load_state_dict(model)
    trainer2, _ = _plain_trainer(net2, loss2)
    resumed = LossScheduleHandler(loss2, "adaptive")
    resumed.attach(trainer2)
    resumed.load_state_dict(state)
    trainer2.load_state_dict(trainer_state)
    trainer2.add_event_handler(Events.ITERATION_COMPLETED, lambda e: calls.append(loss2.last_components["dice_loss"]))
    trainer2.run(BATCHES, max_epochs=2)
    assert len(calls) == 6 and [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[1]["losses"]["dice"] == pytest.approx(sum(calls[3:]) / 3, rel=1e-6)
