"""Loss functions for vessel segmentation: MONAI's Dice/Focal/Tversky behind one logits interface, a fast clDice,
Skeleton Recall, a weighted :class:`CombinedLoss` that reports its terms, and the seed's factory and presets."""

from pipeline.losses.logits_loss import LogitsLoss
from pipeline.losses.cldice import ClDiceLoss
from pipeline.losses.combined import TOTAL_KEY, CombinedLoss, component_key
from pipeline.losses.dice import EnhancedDiceLoss
from pipeline.losses.factory import LOSS_TYPES, LossManager, create_loss_function, create_loss_scheduler
from pipeline.losses.focal import EnhancedBCELoss
from pipeline.losses.morphology import soft_dilate, soft_erode, soft_skeleton
from pipeline.losses.loss_presets import LOSS_PRESETS, get_preset_loss_config, list_loss_presets
from pipeline.losses.term_names import LOSS_TERMS, build_term
from pipeline.losses.skeleton_recall import SkeletonRecallLoss
from pipeline.losses.tversky import EnhancedTverskyLoss

__all__ = [
    "ClDiceLoss",
    "CombinedLoss",
    "EnhancedBCELoss",
    "EnhancedDiceLoss",
    "EnhancedTverskyLoss",
    "LOSS_PRESETS",
    "LOSS_TERMS",
    "LOSS_TYPES",
    "LogitsLoss",
    "LossManager",
    "SkeletonRecallLoss",
    "TOTAL_KEY",
    "build_term",
    "component_key",
    "create_loss_function",
    "create_loss_scheduler",
    "get_preset_loss_config",
    "list_loss_presets",
    "soft_dilate",
    "soft_erode",
    "soft_skeleton",
]
