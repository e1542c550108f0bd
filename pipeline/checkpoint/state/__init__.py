"""What a checkpoint holds besides the objects given by name: the training state found from the trainer, the random
generators, a loader's position, and the per-process state under ``torch.distributed``."""

from pipeline.checkpoint.state.discovery import EvaluatorBest, discover_training_state, has_state, state_target, training_loader
from pipeline.checkpoint.state.distributed import PerRank, agree, is_writer, world_size
from pipeline.checkpoint.state.loader_state import LoaderState, finish_epoch_iterator
from pipeline.checkpoint.state.rng import RNGState

__all__ = [
    "EvaluatorBest",
    "LoaderState",
    "PerRank",
    "RNGState",
    "agree",
    "discover_training_state",
    "finish_epoch_iterator",
    "has_state",
    "is_writer",
    "state_target",
    "training_loader",
    "world_size",
]
