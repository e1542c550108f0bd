"""The training-curves PNG kept current during a run: redrawn when a checkpoint is saved and when the run completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import ignite.distributed as idist
from ignite.engine import Engine, Events

from pipeline.checkpoint import CheckpointHandler, register_checkpoint_events
from pipeline.history import with_checkpoints
from pipeline.plots import plot_training_curves

__all__ = ["TrainingCurves"]


class TrainingCurves:
    """Redraw :func:`~pipeline.plots.plot_training_curves` each time the checkpoint handler saves
    (``CheckpointHandler.SAVED_CHECKPOINT``, whose save history marks the saved and best epochs on the picture) and
    when the run completes. Under ``ignite.distributed`` only process 0 draws.

    Example::

        summary = EpochSummaryLogger(evaluator)
        summary.attach(trainer)
        TrainingCurves(summary.history, "runs/x/training_curves.png").attach(trainer)

    Args:
        history: the epoch records to draw, read at each drawing (e.g. the live list
            :attr:`~pipeline.epoch_summary.EpochSummaryLogger.history`).
        path: the PNG file (written atomically).
        title: the figure's title.

    Attributes:
        saves: the checkpoint handler's save history as of its last ``SAVED_CHECKPOINT``.
        drawn: how many times the picture was drawn.
    """

    def __init__(self, history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "training") -> None:
        self.history = history
        self.path = Path(path)
        self.title = title
        self.saves: list[Mapping[str, Any]] = []
        self.drawn = 0

    def attach(self, engine: Engine) -> None:
        register_checkpoint_events(engine)
        engine.add_event_handler(CheckpointHandler.SAVED_CHECKPOINT, self._saved)
        engine.add_event_handler(Events.COMPLETED, self.draw)

    def _saved(self, engine: Engine) -> None:
        self.saves = list(engine.state.saved_checkpoint["history"])
        self.draw()

    def draw(self, engine: Engine | None = None) -> Path | None:
        """Draw the history with the checkpoint decisions known so far; returns the PNG (None on processes > 0 or
        before the first epoch)."""
        if idist.get_rank() > 0 or not self.history:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plot_training_curves(with_checkpoints(self.history, self.saves), self.path, self.title)
        self.drawn += 1
        return self.path
