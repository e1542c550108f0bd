"""The training state a checkpoint holds (random generators, loader, what is found from the trainer), background
saving and resume when the trainer starts."""

from __future__ import annotations

import errno
import io
import logging
import os
import random
import threading

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from monai.handlers import LrScheduleHandler
from monai.transforms import Compose, RandGaussianNoised, RandSpatialCropd

from pipeline.checkpoint import CheckpointHandler
from pipeline.io import atomic
from pipeline.checkpoint.state.distributed import PerRank, agree
from pipeline.checkpoint.state.loader_state import LoaderState, random_states
from pipeline.checkpoint.state.rng import RNGState, load_numpy_state, numpy_state
from pipeline.checkpoint.state.discovery import discover_training_state
from pipeline.checkpoint.storage.background_writer import BackgroundWriter, snapshot
from pipeline.errors import CheckpointError, SettingsError
from pipeline.losses import create_loss_function
from pipeline.schedules import LossScheduleHandler


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)], np.random.randn(3).tolist()


def test_rng_state_round_trip_through_a_weights_only_file():
    np.random.randn()  # numpy caches the second Gaussian of a pair: that is state too
    random.gauss(0, 1)
    buffer = io.BytesIO()
    torch.save(RNGState().state_dict(), buffer)
    first = _draws()
    buffer.seek(0)
    RNGState().load_state_dict(torch.load(buffer, weights_only=True))
    assert _draws() == first


def test_numpy_random_state_of_a_transform_round_trips():
    generator = np.random.RandomState(3)
    generator.standard_normal()
    state = numpy_state(generator)
    expected = generator.standard_normal(4)
    load_numpy_state(state, generator)
    assert generator.standard_normal(4).tolist() == expected.tolist()


def _volumes(n=6):
    return [{"image": torch.rand(1, 8, 8, 8, generator=torch.Generator().manual_seed(i))} for i in range(n)]


def _loader(seed=5):
    transform = Compose([RandSpatialCropd("image", (4, 4, 4), random_size=False), RandGaussianNoised("image", prob=0.5)])
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(Dataset(_volumes(), transform), batch_size=2, shuffle=True, generator=generator)


def _epoch(loader) -> list[float]:
    return [round(b["image"].sum().item(), 6) for b in loader]


def test_loader_state_restores_order_and_augmentation():
    loader = _loader()
    _epoch(loader)
    assert len(list(random_states(loader.dataset))) >= 2  # the transforms' own generators are found
    state = LoaderState(loader).state_dict()
    expected = _epoch(loader)
    other = _loader(seed=99)  # another process, another seed: the state decides
    LoaderState(other).load_state_dict(state)
    assert _epoch(other) == expected


def test_loader_state_of_another_transform_chain_is_refused():
    state = LoaderState(_loader()).state_dict()
    plain = DataLoader(Dataset(_volumes(), None), batch_size=2, shuffle=True, generator=torch.Generator())
    with pytest.raises(CheckpointError, match=r"does not match the checkpoint: it has 1 shuffling generator\(s\) and \d+ random transform\(s\), the checkpoint 1 and \d+"):
        LoaderState(plain).load_state_dict(state)


def test_per_rank_state_from_more_processes_warns_and_takes_its_share(caplog):
    mine, other = RNGState().state_dict(), RNGState().state_dict()
    expected = torch.rand(2)
    with caplog.at_level(logging.WARNING):
        PerRank(RNGState()).load_state_dict({"ranks": [mine, other]})
    assert "saved by 2 process(es), resumed by 1" in caplog.text
    assert torch.equal(torch.rand(2), expected)
    assert agree(lambda: {"a": 1}) == {"a": 1}  # one process: no broadcast


def test_snapshot_copies_tensors_and_keeps_module_metadata():
    net = torch.nn.Linear(2, 2)
    state = {"model": net.state_dict(), "step": (1, [torch.ones(2)])}
    copy = snapshot(state)
    with torch.no_grad():
        net.weight.add_(1)
    assert not torch.equal(copy["model"]["weight"], net.weight)
    assert hasattr(copy["model"], "_metadata") and copy["step"][0] == 1


def test_background_writer_runs_one_write_at_a_time_and_raises_an_error_once():
    writer = BackgroundWriter()
    release, events = threading.Event(), []

    def slow():
        release.wait(5)
        events.append("first")

    writer.submit(slow)
    assert writer.busy
    threading.Timer(0.2, release.set).start()
    writer.submit(lambda: events.append("second"))  # waits for the first
    writer.wait()
    assert events == ["first", "second"]

    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.submit(lambda: events.append("never"))
    writer.wait()  # raised once only
    assert events == ["first", "second"]


class _GlobalNoise(torch.utils.data.Dataset):
    """Twelve vectors with noise from numpy's and Python's global generators (as plain datasets often do)."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.full((4,), float(index)) + torch.tensor(np.random.rand(4), dtype=torch.float32) + random.random()


def _plain(seed=0, own_generator=True, dataset=None):
    torch.manual_seed(seed)
    net = torch.nn.Linear(4, 8)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(2) if own_generator else None  # None: shuffles with torch's generator
    data = torch.randn(12, 4, generator=torch.Generator().manual_seed(1)) if dataset is None else dataset
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, generator=generator)

    def step(engine, batch):
        opt.zero_grad()
        loss = torch.nn.functional.dropout(net(batch), 0.25).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    return net, opt, Engine(step), loader


def test_async_save_writes_what_a_sync_save_writes(tmp_path):
    states = {}
    for background in (False, True):
        net, opt, trainer, loader = _plain()
        handler = CheckpointHandler(tmp_path / str(background), {"model": net, "optimizer": opt}, "epoch", max_checkpoints=1, async_save=background)
        handler.attach(trainer)
        trainer.run(loader, max_epochs=3)
        assert not handler.checkpointer.writer or not handler.checkpointer.writer.busy
        states[background] = [handler.store.load(e)["state"] for e in handler.checkpoints]
        assert [e.epoch for e in handler.checkpoints] == [3]
    for sync, background in zip(states[False], states[True]):
        assert torch.equal(sync["model"]["weight"], background["model"]["weight"])
        assert sync["rng"]["ranks"][0]["torch"].equal(background["rng"]["ranks"][0]["torch"])
        assert sync["trainer"] == background["trainer"]


def test_a_failed_background_write_is_raised_at_the_next_save_and_keeps_the_earlier_files(tmp_path, monkeypatch):
    net, opt, trainer, loader = _plain()
    handler = CheckpointHandler(tmp_path, {"model": net}, "epoch", max_checkpoints=1, async_save=True)
    handler.attach(trainer)
    trainer.run(loader, max_epochs=1)
    assert [e.epoch for e in handler.checkpoints] == [1]

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda e: monkeypatch.setattr(atomic.os, "fsync", full_disk))
    with pytest.raises(CheckpointError, match="No space left on device"):
        trainer.run(loader, max_epochs=4)
    monkeypatch.undo()
    assert trainer.state.epoch == 3  # epoch 2's write failed in the background; epoch 3's save raised the error
    assert [e.epoch for e in handler.checkpoints] == [1]  # evicted only after a durable write: nothing was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.manifest.json", "model_e0001_i00000003.pt"]


def test_resume_argument_continues_at_start_and_a_longer_run_extends_it(tmp_path):
    net, opt, trainer, loader = _plain()
    CheckpointHandler(tmp_path / "straight", {"model": net}, "epoch").attach(trainer)
    trainer.run(loader, max_epochs=4)
    straight = net.weight.detach().clone()

    net, opt, trainer, loader = _plain()
    first = CheckpointHandler(tmp_path / "split", {"model": net, "optimizer": opt}, "epoch", resume="auto")
    first.attach(trainer)
    trainer.run(loader, max_epochs=2)  # an empty folder: starts afresh
    assert first.resumed_from is None

    net, opt, trainer, loader = _plain(seed=1)  # another process: other initial weights and generators
    second = CheckpointHandler(tmp_path / "split", {"model": net, "optimizer": opt}, "epoch", resume="auto")
    second.attach(trainer)
    trainer.run(loader, max_epochs=4)  # the loader given to run() gets its state when the run starts
    assert second.resumed_from.epoch == 2 and trainer.state.epoch == 4
    assert torch.equal(net.weight, straight)


@pytest.mark.parametrize("dataset", [None, _GlobalNoise()], ids=["tensors", "numpy-and-random-noise"])
def test_a_plain_engine_resumes_exactly_from_the_middle_of_an_epoch(tmp_path, dataset):
    """The loader shuffles with torch's global generator, which dropout also draws from; the second dataset draws from
    numpy's and Python's global generators too (the batches drawn again to reach the middle of the epoch must not
    move them)."""
    every_iteration = {"strategy": "interval", "strategy_params": {"every": 1, "unit": "iteration"}}
    np.random.seed(0)
    random.seed(0)
    net, opt, trainer, loader = _plain(own_generator=False, dataset=dataset)
    trainer.run(loader, max_epochs=3)
    straight = net.weight.detach().clone()

    np.random.seed(0)
    random.seed(0)
    net, opt, trainer, loader = _plain(own_generator=False, dataset=dataset)
    CheckpointHandler(tmp_path, {"model": net, "optimizer": opt}, **every_iteration).attach(trainer)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=5), lambda e: e.terminate())  # 2nd batch of epoch 2
    trainer.run(loader, max_epochs=3)

    np.random.seed(7)
    random.seed(7)
    net, opt, trainer, loader = _plain(seed=1, own_generator=False, dataset=dataset)
    handler = CheckpointHandler(tmp_path, {"model": net, "optimizer": opt}, **every_iteration, resume="auto")
    handler.attach(trainer)
    seen = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: seen.append(e.state.iteration))
    trainer.run(loader, max_epochs=3)
    assert handler.resumed_from.iteration == 5 and seen == [6, 7, 8, 9]
    assert torch.equal(net.weight, straight)


def test_a_loader_that_cannot_resume_exactly_says_why(tmp_path, caplog):
    net, opt, trainer, loader = _plain()
    CheckpointHandler(tmp_path, {"model": net}, "epoch").attach(trainer)
    with caplog.at_level(logging.WARNING):
        trainer.run(loader, max_epochs=2, epoch_length=2)  # 3 batches per pass
    assert "an epoch is 2 iterations but the loader has 3 batches" in caplog.text


def test_async_decisions_do_not_wait_for_the_write_in_flight(tmp_path, monkeypatch):
    """A strategy deciding every iteration: the iterations after a save run while its write is still in flight."""
    released = threading.Event()
    real_fsync = atomic.os.fsync

    def slow_fsync(fd):
        released.wait(5)
        real_fsync(fd)

    net, opt, trainer, loader = _plain()
    handler = CheckpointHandler(tmp_path, {"model": net}, "interval", strategy_params={"every": 2, "unit": "iteration"},
                                max_checkpoints=1, async_save=True, save_final=False, save_last=False)
    handler.attach(trainer)
    busy_at = []

    def look(engine):
        busy_at.append((engine.state.iteration, handler.checkpointer.writer.busy))
        if engine.state.iteration == 4:
            released.set()

    trainer.add_event_handler(Events.ITERATION_STARTED, look)
    monkeypatch.setattr(atomic.os, "fsync", slow_fsync)
    trainer.run(loader, max_epochs=2)
    assert busy_at[2:4] == [(3, True), (4, True)]  # iteration 2 saved; iterations 3 and 4 did not wait for it
    assert [e.iteration for e in handler.checkpoints] == [6]


def test_a_folder_with_only_a_crashed_runs_exception_checkpoint_restarts(tmp_path):
    net, opt, trainer, loader = _plain()
    CheckpointHandler(tmp_path, {"model": net}, "epoch").attach(trainer)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda e: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        trainer.run(loader, max_epochs=2)
    net, opt, trainer, loader = _plain()
    handler = CheckpointHandler(tmp_path, {"model": net}, "epoch", resume="auto")  # existing="error" by default
    handler.attach(trainer)
    trainer.run(loader, max_epochs=1)
    assert handler.resumed_from is None
    assert [(e.epoch, e.reasons) for e in handler.checkpoints] == [(1, ["epoch", "final"])]  # the crashed one replaced


def test_what_is_found_from_a_monai_trainer(tmp_path):
    net = torch.nn.Conv3d(1, 1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = create_loss_function("default_segmentation")
    data = [{"image": torch.rand(1, 1, 4, 4, 4), "label": torch.ones(1, 1, 4, 4, 4)}]
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1)
    trainer = SupervisedTrainer("cpu", 1, data, net, opt, loss, train_handlers=[LrScheduleHandler(scheduler, print_lr=False)])
    schedule = LossScheduleHandler(loss, "cosine", {"epochs": 1})
    schedule.attach(trainer)
    stopper = EarlyStopping(3, lambda e: 0.0, trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, stopper)
    found = discover_training_state(trainer)
    assert list(found) == ["trainer", "network", "optimizer", "lr_scheduler", "loss_schedule_handler", "early_stopping", "rng"]
    assert found["lr_scheduler"] is scheduler and found["loss_schedule_handler"] is schedule and found["early_stopping"] is stopper
    handler = CheckpointHandler(tmp_path, {"model": net}, "epoch")
    handler.attach(trainer)
    assert "network" not in handler.to_save  # given as "model": saved once
    wrapped = SupervisedTrainer("cpu", 1, data, torch.nn.DataParallel(net), opt, loss)
    assert discover_training_state(wrapped)["network"] is net  # no "module." prefix: loads with or without a wrapper
    # a name already taken by to_save: the found object gets a numbered name, it is not dropped
    other = torch.optim.SGD(net.parameters(), lr=0.5)
    named = CheckpointHandler(tmp_path / "named", {"optimizer": other}, "epoch")
    named.attach(trainer)
    assert named.to_save["optimizer"] is other and named.to_save["optimizer_2"] is opt


def test_early_stopping_on_the_evaluator_is_found_and_an_iterable_loader_is_accepted(tmp_path, caplog):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([torch.ones(1, 2)] * 2)

    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(Stream(), batch_size=None)
    trainer = SupervisedTrainer("cpu", 1, loader, net, opt, lambda y, t: y.sum(), epoch_length=2,
                                prepare_batch=lambda batch, device, non_blocking: (batch, batch))
    evaluator = Engine(lambda e, b: None)
    stopper = EarlyStopping(2, lambda e: 0.0, trainer)
    evaluator.add_event_handler(Events.COMPLETED, stopper)
    handler = CheckpointHandler(tmp_path, strategy="epoch")
    handler.attach(trainer, evaluator)
    assert handler.to_save["early_stopping"] is stopper
    with caplog.at_level(logging.WARNING):
        trainer.run()
    assert "train_loader" in handler.store.load(handler.store.newest())["state"]
    assert "it has no length, so an epoch is not one pass over it" in caplog.text


def test_bad_resume_and_discovery_settings(tmp_path):
    with pytest.raises(SettingsError, match="to_save is needed when discover=False"):
        CheckpointHandler(tmp_path, None, discover=False)
    with pytest.raises(SettingsError, match=r"resume must be None, one of \['auto', 'best', 'last'\]"):
        CheckpointHandler(tmp_path, None, resume=3)
    net, opt, trainer, loader = _plain()
    handler = CheckpointHandler(tmp_path, None, "epoch", resume=tmp_path / "missing.pt")
    handler.attach(trainer)
    with pytest.raises(CheckpointError, match="missing.pt"):
        trainer.run(loader, max_epochs=1)
