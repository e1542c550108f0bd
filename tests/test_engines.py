"""The engine factories build working MONAI engines: validation schedule, LR stepping, per-epoch log lines."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.losses import DiceFocalLoss
from monai.utils import set_determinism

from pipeline import VAL_KEY_METRIC, create_evaluator, create_trainer, create_unet, load_datalist, make_loader
from transforms import get_train_transforms, get_val_transforms


@pytest.fixture
def parts(tiny_dataset):
    set_determinism(seed=1)
    train = make_loader(
        load_datalist(tiny_dataset, "training"),
        get_train_transforms(patch_size=(32, 32, 32), num_samples=2),
        batch_size=2,
        shuffle=True,
        seed=1,
    )
    val = make_loader(load_datalist(tiny_dataset, "validation"), get_val_transforms())
    net = create_unet(channels=(4, 8), strides=(2,), num_res_units=0)
    yield train, val, net
    set_determinism(seed=None)


def test_validation_every_interval_and_after_last_epoch(parts, caplog):
    train, val, net = parts
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    evaluator = create_evaluator(net, val, "cpu", roi_size=(32, 32, 32))
    trainer = create_trainer(
        net, train, DiceFocalLoss(sigmoid=True), opt, "cpu", max_epochs=3, evaluator=evaluator, val_interval=2,
        lr_scheduler=sched, progress_bar=True,
    )
    assert isinstance(trainer, SupervisedTrainer) and isinstance(evaluator, SupervisedEvaluator)
    validated_at = []
    evaluator.add_event_handler(Events.COMPLETED, lambda e: validated_at.append(e.state.epoch))
    with caplog.at_level(logging.INFO, logger="pipeline.train"):
        trainer.run()
    assert validated_at == [2, 3]  # on the interval, and the last epoch although 3 % 2 != 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)  # stepped once per epoch
    assert 0.0 <= evaluator.state.metrics[VAL_KEY_METRIC] <= 1.0
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.train"]
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3  loss ") and VAL_KEY_METRIC not in lines[0]
    assert lines[1].startswith("epoch 2/3  loss ") and f"{VAL_KEY_METRIC} " in lines[1] and "(best " in lines[1]


def test_bad_schedule_is_refused(parts):
    train, _, net = parts
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="max_epochs must be >= 1"):
        create_trainer(net, train, DiceFocalLoss(sigmoid=True), opt, "cpu", max_epochs=0)
    with pytest.raises(ValueError, match="val_interval must be >= 1"):
        create_trainer(net, train, DiceFocalLoss(sigmoid=True), opt, "cpu", max_epochs=1, val_interval=0)


def test_unet_levels_must_match():
    with pytest.raises(ValueError, match="channels needs one entry more than strides"):
        create_unet(channels=(8, 16), strides=(2, 2))


def test_extra_metric_names_are_checked(parts):
    _, val, net = parts
    with pytest.raises(ValueError, match="metric must be one of .*'HD95_mm'.* got 'hd95'"):
        create_evaluator(net, val, "cpu", roi_size=(32, 32, 32), extra_metrics=("hd95",))


def test_an_extended_resume_keeps_the_cosine_learning_rate_annealing(parts, tmp_path):
    """Trained 2 epochs with a 2-epoch cosine, then resumed to 4: the rate must not climb back up the cosine."""
    from pipeline.checkpoint import CheckpointHandler

    train, val, net = parts
    rates = []
    for epochs, resume in ((2, None), (4, "auto")):
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0.001)
        trainer = create_trainer(net, train, DiceFocalLoss(sigmoid=True), opt, "cpu", max_epochs=epochs,
                                 lr_scheduler=sched, progress_bar=False)
        CheckpointHandler(tmp_path, strategy="epoch", resume=resume).attach(trainer)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: rates.append(opt.param_groups[0]["lr"]))
        trainer.run()
    assert len(rates) == 4 and sched.T_max == 4
    assert rates[1] == pytest.approx(0.001) and rates[2:] == pytest.approx([0.001, 0.001])  # not back up


def test_one_place_builds_engines():
    """MONAI's trainer and evaluator classes are constructed in pipeline/engines.py only, and every bundle config
    builds its trainer with pipeline.engines.create_trainer (the command line runs the bundle; the original API's
    TrainingManager validates with create_evaluator)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "pipeline"
    builders = {"SupervisedTrainer", "SupervisedEvaluator", "GanTrainer", "EnsembleEvaluator"}
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in builders:
                    found.append((path.relative_to(root).as_posix(), name))
    assert found == [("engines.py", "SupervisedEvaluator"), ("engines.py", "SupervisedTrainer")]
    configs = Path(__file__).resolve().parents[1] / "bundles"
    trainers = [p.name for p in configs.rglob("*.json") if "Trainer" in p.read_text() and "create_trainer" not in p.read_text()]
    assert trainers == []
