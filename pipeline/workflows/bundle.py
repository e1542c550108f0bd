"""Training, inference and checkpoint evaluation through the coronary vessel bundle: MONAI's ``ConfigWorkflow`` runs
``train.json``, ``inference.json`` or ``train.json`` + ``evaluate.json`` with overrides, so the command line and
``python -m monai.bundle run`` are one path. The bundle's configs hold every default."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipeline.bundle import BUNDLE_NAME, bundle_path, image_files, run_overrides
from pipeline.errors import InputError

__all__ = ["TrainingResult", "evaluate_bundle", "infer_bundle", "train_bundle"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a training run produced."""

    output_dir: Path
    best_metric: float
    best_epoch: int
    best_checkpoint: Path
    final_checkpoint: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _configs(*names: str) -> list[str]:
    return [str(Path(bundle_path(BUNDLE_NAME)) / "configs" / f"{name}.json") for name in names]


def _workflow(configs: list[str], workflow_type: str, overrides: Mapping[str, Any]) -> Any:
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


def _input_error(error: BaseException | None) -> InputError | None:
    """The user-input error behind MONAI's "Failed to evaluate/instantiate" wrappers, if there is one."""
    while error is not None:
        if isinstance(error, InputError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _step(workflow: Any, step: str) -> Any:
    try:
        return getattr(workflow, step)()
    except RuntimeError as e:
        cause = _input_error(e)
        if cause is not None:
            raise cause from None
        raise


def _run(workflow: Any, before_run: Callable[[Any], None] | None = None) -> tuple[Any, float]:
    _step(workflow, "initialize")
    if before_run is not None:
        before_run(workflow)
    start = time.perf_counter()
    _step(workflow, "run")
    seconds = time.perf_counter() - start
    return _step(workflow, "finalize"), seconds


def train_bundle(
    output_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    time_budget: float | None = None,
    clock: str = "process",
    before_run: Callable[[Any], None] | None = None,
) -> TrainingResult:
    """Train with the bundle's ``train.json`` into ``output_dir``.

    ``output_dir`` then holds ``config.json`` (the config the run executed, overrides included), ``checkpoints/``
    (the checkpoint handler's files and manifest), ``model.pt`` (the best network weights), ``history.json`` /
    ``.csv``, ``training_curves.png`` and the MLflow store (``mlflow.db``, ``mlartifacts/``).

    Args:
        output_dir: the run's folder.
        overrides: bundle keys to override (``dataset_dir``, ``epochs``, ``patch_size``, ``resume``,
            ``network_def#channels``, ...).
        time_budget: seconds of training time after which training ends (:class:`~pipeline.time_budget.TimeBudget`,
            fitted to the bundle's evaluator and learning-rate schedule); ``None`` for the bundle's ``epochs`` alone.
        clock: the budget's clock, ``"process"`` (CPU time) or ``"wall"``.
        before_run: called with the set-up MONAI ``ConfigWorkflow`` before training starts, e.g. to attach Ignite
            handlers to its ``train#trainer`` or ``validate#evaluator`` (``bench/bench_fullsize.py`` times them).

    Raises:
        InputError: bad input found by the bundle at set-up (an unknown key, dataset, datalist, preset, schedule,
            strategy, patch size, resume choice, an earlier run in the folder), before anything is written.
    """
    out = Path(output_dir).absolute()
    paths = {"ckpt_dir": str(out), "checkpoint_dir": str(out / "checkpoints"), "run_name": out.name}
    train = _workflow(_configs("train"), "train", {**paths, **dict(overrides or {})})
    def prepare(workflow: Any) -> None:
        if time_budget is not None:
            _attach_time_budget(workflow, time_budget, clock)
        if before_run is not None:
            before_run(workflow)

    finished, seconds = _run(train, prepare)
    finished = finished[0]
    evaluator = train.parser.get_parsed_content("validate#evaluator")
    return TrainingResult(
        output_dir=out,
        best_metric=float(evaluator.state.best_metric),
        best_epoch=int(evaluator.state.best_metric_epoch),
        best_checkpoint=Path(finished["best_checkpoint"]),
        final_checkpoint=Path(finished["last_checkpoint"]),
        history=finished["history"],
        seconds=seconds,
    )


def _attach_time_budget(train: Any, seconds: float, clock: str) -> None:
    from pipeline.time_budget import TimeBudget

    parsed = train.parser.get_parsed_content
    TimeBudget(seconds, clock, evaluator=parsed("validate#evaluator"), lr_scheduler=parsed("lr_scheduler")).attach(
        parsed("train#trainer")
    )


def _weights(checkpoint: str | Path) -> str:
    """A run folder means its ``model.pt``; a checkpoint file or a ``checkpoints/`` folder is itself."""
    path = Path(checkpoint)
    return str(path / "model.pt") if path.is_dir() and (path / "model.pt").is_file() else str(path)


def infer_bundle(
    checkpoint: str | Path, inputs: Sequence[str], output_dir: str | Path, overrides: Mapping[str, Any] | None = None
) -> list[tuple[str, Path]]:
    """Predict NIfTI images with ``inference.json``: the network and preprocessing of the run ``checkpoint``
    belongs to (its ``config.json``), the weights of ``checkpoint`` (a run folder, ``model.pt``, a checkpoint file
    or a ``checkpoints/`` folder), each mask written on its image's grid as ``output_dir/<name>_pred.nii.gz``.

    Returns:
        ``(image, prediction)`` paths.

    Raises:
        InputError: a missing or broken input, checkpoint or run config, before anything is written.
    """
    items = image_files(list(inputs), pattern="*")
    settings = {**run_overrides(checkpoint), **dict(overrides or {})}
    settings.update(ckpt_path=_weights(checkpoint), datalist=items, output_dir=str(Path(output_dir).absolute()))
    workflow = _workflow(_configs("inference"), "infer", settings)
    _run(workflow)
    return workflow.parser.get_parsed_content("prediction_log").written


def evaluate_bundle(
    checkpoint: str | Path,
    output_dir: str | Path,
    split: str = "test",
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Score ``checkpoint`` on the datalist's ``split`` with ``train.json`` + ``evaluate.json`` (the network and
    preprocessing of its run's ``config.json``): predictions on each image's grid in ``output_dir/predictions``,
    ``cases.csv``, ``summary.json`` and ``evaluation.png`` in ``output_dir``, the per-case table printed.

    Returns:
        the evaluation tool's :class:`~pipeline.evaluation.EvaluationReport`.
    """
    settings = {**run_overrides(checkpoint), **dict(overrides or {})}
    settings.update(eval_split=split, output_dir=str(Path(output_dir).absolute()), ckpt_path=_weights(checkpoint))
    workflow = _workflow(_configs("train", "evaluate"), "eval", settings)
    _run(workflow)
    return workflow.parser.get_parsed_content("evaluator").state.report
