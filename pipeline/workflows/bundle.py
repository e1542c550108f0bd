"""The demo through the coronary vessel bundle: MONAI's ``ConfigWorkflow`` runs ``train.json``, then
``train.json`` + ``evaluate.json`` on the held-out list, so ``make demo`` and ``python -m monai.bundle run`` are one path.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

from pipeline.bundle_support import bundle_path
from pipeline.errors import InputError
from pipeline.workflows.config import CONFIG_NAME, TrainingConfig
from pipeline.workflows.training import TrainingResult

__all__ = ["bundle_training_config", "evaluate_bundle", "train_bundle"]

logger = logging.getLogger(__name__)

BUNDLE_NAME = "coronary_vessel_seg"


def _configs(*names: str) -> list[str]:
    return [str(Path(bundle_path(BUNDLE_NAME)) / "configs" / f"{name}.json") for name in names]


def _workflow(configs: list[str], workflow_type: str, overrides: Mapping[str, Any]):
    from monai.bundle import ConfigWorkflow

    quiet = logging.getLogger("monai.bundle.workflows")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # not its notice that the caller, not the bundle's logging.conf, configures logging
    try:
        return ConfigWorkflow(
            config_file=configs,
            meta_file=str(Path(bundle_path(BUNDLE_NAME)) / "configs" / "metadata.json"),
            logging_file=False,
            workflow_type=workflow_type,
            **overrides,
        )
    finally:
        quiet.setLevel(level)


def _input_error(error: BaseException) -> InputError | None:
    """The user-input error behind MONAI's "Failed to evaluate/instantiate" wrappers, if there is one."""
    while error is not None:
        if isinstance(error, InputError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _step(workflow, step: str) -> Any:
    try:
        return getattr(workflow, step)()
    except RuntimeError as e:
        cause = _input_error(e)
        if cause is not None:
            raise cause from None
        raise


def bundle_training_config(parser, output_dir: str) -> TrainingConfig:
    """The :class:`TrainingConfig` of a bundle training (network, patch, preprocessing), saved as the run's
    ``config.json`` so ``vessel-pipeline evaluate --checkpoint`` / ``infer`` read its checkpoints too."""
    def network(key: str) -> Any:
        return parser.get_parsed_content(f"network_def#{key}")

    return TrainingConfig(
        dataset_dir=str(parser.get_parsed_content("dataset_dir")),
        output_dir=output_dir,
        epochs=int(parser.get_parsed_content("epochs")),
        val_interval=int(parser.get_parsed_content("val_interval")),
        patch_size=tuple(parser.get_parsed_content("patch_size")),
        pixdim=None if parser.get_parsed_content("pixdim") is None else tuple(parser.get_parsed_content("pixdim")),
        hu_window=tuple(parser.get_parsed_content("hu_window")),
        learning_rate=float(parser.get_parsed_content("learning_rate")),
        channels=tuple(network("channels")),
        strides=tuple(network("strides")),
        num_res_units=int(network("num_res_units")),
        dropout=float(network("dropout")),
        seed=int(parser.get_parsed_content("seed")),
        progress_bar=bool(parser.get_parsed_content("progress")),
        checkpoint_strategy=str(parser.get_parsed_content("checkpoint_strategy")),
        loss=parser.get_parsed_content("loss_preset"),
        loss_schedule=parser.get_parsed_content("loss_schedule"),
        loss_schedule_params=dict(parser.get_parsed_content("loss_schedule_params")),
    )


def _paths(output_dir: Path) -> dict[str, str]:
    return {"ckpt_dir": str(output_dir), "checkpoint_dir": str(output_dir / "checkpoints")}


def train_bundle(
    output_dir: str, overrides: Mapping[str, Any] | None = None, time_budget: float | None = None, clock: str = "process"
) -> TrainingResult:
    """Train with the bundle's ``train.json`` into ``output_dir``.

    ``output_dir`` then holds ``checkpoints/`` (the checkpoint handler's files and manifest), ``model.pt`` (the best
    network weights), ``history.json``, ``config.json``, ``training_curves.png`` and the MLflow store (``mlflow.db``,
    ``mlartifacts/``).

    Args:
        output_dir: the run's folder.
        overrides: bundle keys to override (``dataset_dir``, ``epochs``, ``patch_size``, ``network_def#channels``, ...).
        time_budget: seconds of training time after which training ends (:class:`~pipeline.time_budget.TimeBudget`,
            fitted to the bundle's evaluator and learning-rate schedule); ``None`` for the bundle's ``epochs`` alone.
        clock: the budget's clock, ``"process"`` (CPU time) or ``"wall"``.

    Raises:
        InputError: bad input found by the bundle (dataset, datalist, preset, schedule, strategy, checkpoint), before
            any training.
    """
    from pipeline.plots import plot_training_curves

    out = Path(output_dir)
    train = _workflow(_configs("train"), "train", {**_paths(out), **dict(overrides or {})})
    _step(train, "initialize")
    out.mkdir(parents=True, exist_ok=True)
    bundle_training_config(train.parser, str(out)).save(out / CONFIG_NAME)
    if time_budget is not None:
        from pipeline.time_budget import TimeBudget

        TimeBudget(
            time_budget,
            clock,
            evaluator=train.parser.get_parsed_content("validate#evaluator"),
            lr_scheduler=train.parser.get_parsed_content("lr_scheduler"),
        ).attach(train.parser.get_parsed_content("train#trainer"))
    start = time.perf_counter()
    _step(train, "run")
    seconds = time.perf_counter() - start
    finished = _step(train, "finalize")[0]
    evaluator = train.parser.get_parsed_content("validate#evaluator")
    plot_training_curves(finished["history"], out / "training_curves.png", title=f"{out.name}: bundle {BUNDLE_NAME}")
    return TrainingResult(
        output_dir=out,
        best_metric=float(evaluator.state.best_metric),
        best_epoch=int(evaluator.state.best_metric_epoch),
        best_checkpoint=Path(finished["best_checkpoint"]),
        final_checkpoint=Path(finished["last_checkpoint"]),
        history=finished["history"],
        seconds=seconds,
    )


def evaluate_bundle(run: TrainingResult, overrides: Mapping[str, Any] | None = None, split: str = "test") -> Any:
    """Score the best checkpoint of ``run`` on the datalist's ``split`` with ``train.json`` + ``evaluate.json``:
    predictions on each image's grid in ``evaluation/predictions``, ``cases.csv``, ``summary.json`` and
    ``evaluation.png`` in ``evaluation/``, the per-case table printed.

    Returns:
        the evaluation tool's :class:`~pipeline.evaluation.EvaluationReport`.
    """
    settings = {**_paths(run.output_dir), **dict(overrides or {})}
    settings.update(eval_split=split, output_dir=str(run.output_dir / "evaluation"), ckpt_path=str(run.best_checkpoint))
    evaluation = _workflow(_configs("train", "evaluate"), "eval", settings)
    _step(evaluation, "initialize")
    _step(evaluation, "run")
    return evaluation.parser.get_parsed_content("evaluator").state.report
