"""TimeBudget on a real MONAI trainer and evaluator, with a clock that advances one second per iteration (so the
assertions are about the handler's logic, not about how fast this machine is)."""

from __future__ import annotations

import pytest
import torch
from monai.handlers import LrScheduleHandler
from monai.losses import DiceLoss

from pipeline.errors import SettingsError
from pipeline.time_budget import TimeBudget
from tests.tiny_engines import validated_trainer


class IterationClock:
    """Reads 0, 1, 1, 2, 2, 3, ...: each batch-fetch/iteration-end pair spans exactly one second."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return float(self.calls // 2)


def _setup(max_epochs: int, val_interval: int = 1, scheduler: str | None = None):
    torch.manual_seed(0)
    batches = [{"image": torch.randn(1, 1, 8, 8, 8), "label": (torch.rand(1, 1, 8, 8, 8) > 0.5).float()} for _ in range(4)]
    network = torch.nn.Conv3d(1, 1, 3, padding=1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    lr_scheduler = None
    if scheduler == "cosine":
        lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    elif scheduler == "poly":
        lr_scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max_epochs, power=0.9)
    trainer, evaluator = validated_trainer(network, batches, DiceLoss(sigmoid=True), optimizer, max_epochs, val_interval)
    if lr_scheduler is not None:
        LrScheduleHandler(lr_scheduler, print_lr=False).attach(trainer)
    return trainer, evaluator, optimizer, lr_scheduler


def test_budget_ends_mid_epoch_and_the_last_epoch_is_validated():
    trainer, evaluator, _, _ = _setup(max_epochs=100, val_interval=3)
    budget = TimeBudget(10, clock=IterationClock(), evaluator=evaluator, fit_schedule=False)
    budget.attach(trainer)
    trainer.run()
    # 4 iterations per epoch: the 10th iteration is the 2nd of epoch 3, which ends there and is the last
    assert trainer.state.iteration == 10 and trainer.state.epoch == 3 and trainer.state.max_epochs == 3
    assert budget.exhausted and budget.spent == 10.0 and budget.state_dict()["spent"] == 10.0
    assert evaluator.state.epoch == 3  # on the interval: validated once by the trainer's handler

    trainer, evaluator, _, _ = _setup(max_epochs=100, val_interval=5)
    TimeBudget(10, clock=IterationClock(), evaluator=evaluator, fit_schedule=False).attach(trainer)
    trainer.run()
    assert trainer.state.epoch == 3 and evaluator.state.epoch == 3  # off the interval: validated by the budget


@pytest.mark.parametrize("scheduler", ["cosine", "poly"])
def test_fitted_schedule_decays_to_the_end_of_the_budget(scheduler):
    trainer, evaluator, optimizer, lr_scheduler = _setup(max_epochs=100, scheduler=scheduler)
    TimeBudget(24, clock=IterationClock(), evaluator=evaluator, lr_scheduler=lr_scheduler).attach(trainer)
    trainer.run()
    # 24 s of 4-second epochs: 6 epochs, the schedule shrunk from 100 epochs to 6, so the learning rate reached its end
    assert trainer.state.epoch == 6 and trainer.state.iteration == 24
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_a_large_budget_leaves_the_run_alone():
    trainer, evaluator, _, _ = _setup(max_epochs=3)
    budget = TimeBudget(1000, clock=IterationClock(), evaluator=evaluator)
    budget.attach(trainer)
    trainer.run()
    assert trainer.state.epoch == 3 and trainer.state.iteration == 12 and not budget.exhausted
    assert budget.remaining == 1000 - 12


def test_bad_budget_settings():
    with pytest.raises(SettingsError, match="time budget must be > 0 seconds, got 0"):
        TimeBudget(0)
    with pytest.raises(SettingsError, match=r"unknown clock 'gpu'; valid clocks: \['process', 'wall'\]"):
        TimeBudget(10, clock="gpu")
